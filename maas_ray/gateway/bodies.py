"""The bodies the management API takes and the small answers it gives, as pydantic
models: the handlers (``admin.py``) validate with them, the OpenAPI document
(``schemas.py``) describes them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from maas_ray.wire import PRODUCTION


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=20)
    alias: str = PRODUCTION


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = PRODUCTION


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_uri: str = Field(min_length=1, max_length=2000, description="runs:/ or models:/ URI.")
    description: str | None = Field(default=None, max_length=5000)
    tags: dict[str, str] | None = None


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=36500)


class Identity(BaseModel):
    """``GET /v1/admin/whoami``: who the credential is (the console's sign-in)."""

    name: str = Field(description="'key:NAME' or 'jwt:SUBJECT'.")
    key_id: str | None = None
    scopes: list[str]
    mlflow_ui: str = Field(description="The MLflow server (its UI) the platform uses.")
