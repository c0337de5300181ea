"""Plain records the registry hands out (no MLflow types leak past the registry)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class VersionInfo(BaseModel):
    """One registered model version."""

    name: str
    version: str
    source: str = ""
    run_id: str | None = None
    status: str = ""
    description: str = ""
    created_ms: int = 0
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    signature: dict[str, Any] | None = None
    sha256: str | None = None
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="The metrics of the run the version came from (one model's read only).",
    )


class ModelInfo(BaseModel):
    """One registered model with its versions (newest first)."""

    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)
    latest_version: str | None = None
    versions: list[VersionInfo] = Field(default_factory=list)


class HistoryEvent(BaseModel):
    """One alias move or deploy action, kept as a registered-model tag."""

    seq: int
    time_ms: int
    actor: str
    action: str  # deploy, undeploy, promote, rollback, canary, canary-end, shadow, ...
    alias: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    detail: str = ""
