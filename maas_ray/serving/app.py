"""Serve application builder for one model version (used by declarative configs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from maas_ray.serving.deployment import ModelServer
from maas_ray.settings import Settings
from maas_ray.spec import Batching


class ModelAppArgs(BaseModel):
    """``args`` of ``maas_ray.serving.app:build_app`` in a Serve config."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.")
    version: str = Field(description="Registered version to serve (the primary).")
    tracking_uri: str | None = Field(default=None, description="MLflow URI; default: settings.")
    batching: Batching | None = Field(default=None, description="Dynamic batching, if any.")
    background: bool = Field(
        default=False, description="A shadow: run at a lower CPU priority than the primary."
    )
    inline: bool = Field(
        default=True, description="Run fast predicts on the event loop (off when autoscaling)."
    )
    arm: Literal["production", "canary", "shadow"] = Field(
        default="production", description="Which arm the prediction log records it as."
    )
    log_percent: float | None = Field(
        default=None, ge=0, le=100, description="Share of predictions logged (None: default)."
    )
    mask_fields: list[str] = Field(
        default_factory=list, description="Input fields whose values errors and logs mask."
    )
    predict_timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Predict time limit (None: the setting)."
    )


def build_app(args: dict[str, Any]) -> Application:
    """Build the Serve application that serves ``args['model']`` at ``args['version']``.

    A canary or shadow is an application of the same shape (see
    ``traffic.challenger_app``); the primary reaches it through a handle.
    """
    parsed = ModelAppArgs.model_validate(args)
    # serve.deployment turns the class into a Deployment; mypy still sees the class.
    return ModelServer.bind(  # type: ignore[attr-defined]
        parsed.model,
        parsed.version,
        parsed.tracking_uri or Settings().mlflow_uri,
        background=parsed.background,
        batching=parsed.batching.model_dump() if parsed.batching else None,
        inline=parsed.inline,
        mask_fields=parsed.mask_fields,
        arm=parsed.arm,
        log_percent=parsed.log_percent,
        predict_timeout_s=parsed.predict_timeout_s,
    )
