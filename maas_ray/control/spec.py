"""Deployment specs: what a user asks for, stored in the registry, turned into Serve config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_APP_IMPORT = "maas_ray.serving.app:build_app"
GATEWAY_APP_IMPORT = "maas_ray.serving.gateway:build_gateway"
GATEWAY_APP = "maas-gateway"
MODEL_DEPLOYMENT = "ModelServer"


def model_route(name: str) -> str:
    """The route prefix of a model's Serve application."""
    return f"/v1/models/{name}"


class DeploymentSpec(BaseModel):
    """How one model is served: which version, how many replicas, what resources."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.")
    version: str | None = Field(default=None, description="Version to serve.")
    alias: str | None = Field(default=None, description="Alias to follow instead of a version.")
    num_replicas: int | None = Field(default=None, ge=1, le=64, description="Fixed replicas.")
    min_replicas: int | None = Field(default=None, ge=0, le=64, description="Autoscaling floor.")
    max_replicas: int | None = Field(default=None, ge=1, le=64, description="Autoscaling ceiling.")
    num_cpus: float = Field(default=0.5, ge=0, le=256, description="CPUs per replica.")
    num_gpus: float = Field(
        default=0.0, ge=0, le=16, description="GPUs per replica (fractional ok)."
    )
    max_ongoing_requests: int = Field(default=64, ge=1, le=10_000, description="Per replica.")
    target_ongoing_requests: float = Field(
        default=4.0, gt=0, description="Autoscaling target of in-flight requests per replica."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSpec:
        if self.version is not None and self.alias is not None:
            raise ValueError("give either a version or an alias, not both")
        autoscale = (self.min_replicas, self.max_replicas)
        if any(v is not None for v in autoscale):
            if self.num_replicas is not None:
                raise ValueError("give either num_replicas or min/max replicas, not both")
            if None in autoscale:
                raise ValueError("autoscaling needs both min_replicas and max_replicas")
            lo, hi = self.min_replicas or 0, self.max_replicas or 0
            if lo > hi:
                raise ValueError(
                    f"got min_replicas={self.min_replicas} > max_replicas={self.max_replicas}"
                )
        return self

    @property
    def autoscaling(self) -> bool:
        """True when the replica count follows load."""
        return self.min_replicas is not None

    def replicas_text(self) -> str:
        """``"2"`` or ``"1-3"`` for tables."""
        if self.autoscaling:
            return f"{self.min_replicas}-{self.max_replicas}"
        return str(self.num_replicas or 1)

    def to_application(self, version: str, tracking_uri: str) -> dict[str, Any]:
        """The Serve application config (ServeApplicationSchema) for this spec."""
        deployment: dict[str, Any] = {
            "name": MODEL_DEPLOYMENT,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
        }
        if self.autoscaling:
            deployment["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "initial_replicas": max(self.min_replicas or 0, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            deployment["num_replicas"] = self.num_replicas or 1
        return {
            "name": self.model,
            "route_prefix": model_route(self.model),
            "import_path": MODEL_APP_IMPORT,
            "args": {"model": self.model, "version": version, "tracking_uri": tracking_uri},
            "deployments": [deployment],
        }


def gateway_application(tracking_uri: str) -> dict[str, Any]:
    """The catch-all application at ``/`` (health routes, JSON 404s)."""
    return {
        "name": GATEWAY_APP,
        "route_prefix": "/",
        "import_path": GATEWAY_APP_IMPORT,
        "args": {"tracking_uri": tracking_uri},
    }


def serve_config(
    applications: list[dict[str, Any]], host: str, port: int, tracking_uri: str
) -> dict[str, Any]:
    """A whole ServeDeploySchema document: the gateway plus the given applications."""
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": host, "port": port},
        # Access logs cost ~25% of throughput on the hot path (see DESIGN.md).
        "logging_config": {"enable_access_log": False},
        "applications": [gateway_application(tracking_uri), *applications],
    }
