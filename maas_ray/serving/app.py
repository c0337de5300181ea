"""Serve application builder for one model version (used by declarative configs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from maas_ray.serving.deployment import ModelServer
from maas_ray.settings import Settings


class ModelAppArgs(BaseModel):
    """``args`` of ``maas_ray.serving.app:build_app`` in a Serve config."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.")
    version: str = Field(description="Registered version to serve.")
    tracking_uri: str | None = Field(default=None, description="MLflow URI; default: settings.")


def build_app(args: dict[str, Any]) -> Application:
    """Build the Serve application that serves ``args['model']`` at ``args['version']``."""
    parsed = ModelAppArgs.model_validate(args)
    # serve.deployment turns the class into a Deployment; mypy still sees the class.
    return ModelServer.bind(  # type: ignore[attr-defined]
        parsed.model, str(parsed.version), parsed.tracking_uri or Settings().mlflow_uri
    )
