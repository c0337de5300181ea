"""Serve application builder for one model version (used by declarative configs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from maas_ray.serving.deployment import ModelServer
from maas_ray.serving.traffic import Batching, Canary, Shadow
from maas_ray.settings import Settings

CHALLENGER = "Challenger"  # the name control.spec gives the second deployment


class ModelAppArgs(BaseModel):
    """``args`` of ``maas_ray.serving.app:build_app`` in a Serve config."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.")
    version: str = Field(description="Registered version to serve (the primary).")
    tracking_uri: str | None = Field(default=None, description="MLflow URI; default: settings.")
    batching: Batching | None = Field(default=None, description="Dynamic batching, if any.")
    canary: Canary | None = Field(default=None, description="Canary split, if any.")
    shadow: Shadow | None = Field(default=None, description="Shadow challenger, if any.")
    inline: bool = Field(
        default=True, description="Run fast predicts on the event loop (off when autoscaling)."
    )
    mask_fields: list[str] = Field(
        default_factory=list, description="Input fields whose values errors and logs mask."
    )


def build_app(args: dict[str, Any]) -> Application:
    """Build the Serve application that serves ``args['model']`` at ``args['version']``.

    With a canary or shadow, a ``Challenger`` deployment of the other version is
    bound and handed to the primary, which stays the ingress.
    """
    parsed = ModelAppArgs.model_validate(args)
    uri = parsed.tracking_uri or Settings().mlflow_uri
    side = parsed.canary or parsed.shadow
    batching = parsed.batching.model_dump() if parsed.batching else None
    if side is None:
        # serve.deployment turns the class into a Deployment; mypy still sees the class.
        return ModelServer.bind(  # type: ignore[attr-defined]
            parsed.model,
            parsed.version,
            uri,
            batching=batching,
            inline=parsed.inline,
            mask_fields=parsed.mask_fields,
        )
    challenger = ModelServer.options(name=CHALLENGER).bind(  # type: ignore[attr-defined]
        parsed.model,
        side.version,
        uri,
        background=parsed.shadow is not None,
        batching=batching,
        inline=parsed.inline,
        mask_fields=parsed.mask_fields,
    )
    return ModelServer.bind(  # type: ignore[attr-defined]
        parsed.model,
        parsed.version,
        uri,
        challenger,
        parsed.canary.model_dump() if parsed.canary else None,
        parsed.shadow.model_dump() if parsed.shadow else None,
        batching=batching,
        inline=parsed.inline,
        mask_fields=parsed.mask_fields,
    )
