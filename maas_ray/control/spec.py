"""Deployment specs: what a user asks for, stored in the registry, turned into Serve config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from maas_ray.serving.traffic import CHALLENGER_SUFFIX, Batching, Canary, Shadow, challenger_app

MODEL_APP_IMPORT = "maas_ray.serving.app:build_app"
GATEWAY_APP_IMPORT = "maas_ray.serving.gateway:build_gateway"
GATEWAY_APP = "maas-gateway"
SHARED_APP = "maas-shared"
SHARED_DEPLOYMENT = "SharedPool"
SHARED_APP_IMPORT = "maas_ray.serving.shared:build_pool"
MODEL_DEPLOYMENT = "ModelServer"
# Serve's max_surge_percent, of the target count rounded up: 1% is one surge replica
# for up to 100 replicas. A replaced deployment (new version, new resources) starts
# each replacement beside the old replica and stops that one only once the new one
# runs, so the old version answers throughout, and keeps answering if the new one
# fails. Serve's default (0) stops the old replica first. The surge replica needs
# room: control/capacity.py counts it before the change is made.
SURGE_PERCENT = 1


def model_route(name: str) -> str:
    """The route prefix of a model's Serve application."""
    return f"/v1/models/{name}"


def model_of(app: str) -> str:
    """The model an application serves (its own, or the one it challenges)."""
    return app.removesuffix(CHALLENGER_SUFFIX)


def is_challenger(app: str) -> bool:
    """True for the application of a canary or shadow."""
    return app.endswith(CHALLENGER_SUFFIX)


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
    upscale_delay_s: float = Field(
        default=10.0, ge=0, le=3600, description="Load above target this long adds replicas."
    )
    downscale_delay_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Load below target this long removes replicas (Serve's default: 600).",
    )
    mode: Literal["dedicated", "shared"] = Field(
        default="dedicated",
        description="dedicated: its own Serve application; shared: the multiplexed pool "
        "that serves many small models from one set of replicas (LRU per replica).",
    )
    batching: Batching | None = Field(
        default=None, description="Join concurrent requests into one model call."
    )
    canary: Canary | None = Field(default=None, description="A canary split, if any.")
    shadow: Shadow | None = Field(default=None, description="A shadow challenger, if any.")
    mask_fields: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Input fields (columns, JSON keys) whose values error messages and logs "
        "mask, besides the emails, phone, card and ID numbers masked everywhere.",
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
        if self.canary is not None and self.shadow is not None:
            raise ValueError("give either a canary or a shadow, not both")
        if self.mode == "shared":
            sized = ("num_replicas", "min_replicas", "max_replicas", "canary", "shadow", "batching")
            given = [f for f in sized if getattr(self, f) is not None]
            if given or self.num_gpus:
                drop = ", ".join(given) or "num_gpus"
                raise ValueError(
                    f"mode shared runs on the shared pool's replicas: drop {drop} "
                    "(size the pool with the MAAS_SHARED_* settings)"
                )
        return self

    @property
    def challenger(self) -> Canary | Shadow | None:
        """The canary or shadow of this spec, if any."""
        return self.canary or self.shadow

    @property
    def autoscaling(self) -> bool:
        """True when the replica count follows load."""
        return self.min_replicas is not None

    def replicas_text(self) -> str:
        """``"2"`` or ``"1-3"`` for tables."""
        if self.autoscaling:
            return f"{self.min_replicas}-{self.max_replicas}"
        return str(self.num_replicas or 1)

    def to_applications(
        self, version: str, tracking_uri: str, *, surge: bool = True, challenger: bool = True
    ) -> list[dict[str, Any]]:
        """The primary's application and, with a canary or shadow, the challenger's.

        ``challenger=False`` leaves the challenger out (a restore with no room for it).
        """
        apps = [self.to_application(version, tracking_uri, surge=surge, challenger=challenger)]
        side = self.challenger
        if side is not None and challenger:
            app = self.to_application(side.version, tracking_uri, surge=surge, challenger=False)
            app["name"] = challenger_app(self.model)
            app["route_prefix"] = None  # reached through the primary only
            if self.shadow is not None:
                app["args"]["background"] = True
            apps.append(app)
        return apps

    def to_application(
        self, version: str, tracking_uri: str, *, surge: bool = True, challenger: bool = True
    ) -> dict[str, Any]:
        """The Serve application config (ServeApplicationSchema) of the primary.

        ``version`` is the primary version (the alias resolved). The canary split or
        shadow share goes to the primary's replicas as ``user_config``, so changing or
        ending it reconfigures them in place; the challenger itself is an application
        of its own (``to_applications``). ``challenger=False`` leaves the split out.
        ``surge``: replacements start beside the old replicas, one at a time (see
        SURGE_PERCENT).
        """
        traffic: dict[str, Any] = {"canary": None, "shadow": None}
        if challenger and self.canary is not None:
            traffic["canary"] = self.canary.model_dump(exclude_none=True)
        if challenger and self.shadow is not None:
            traffic["shadow"] = self.shadow.model_dump()
        deployment: dict[str, Any] = {
            "name": MODEL_DEPLOYMENT,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "max_surge_percent": SURGE_PERCENT if surge else 0,
            "user_config": traffic,
        }
        if self.autoscaling:
            deployment["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "initial_replicas": max(self.min_replicas or 0, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": self.upscale_delay_s,
                "downscale_delay_s": self.downscale_delay_s,
                # Replicas report load every 2 s over the last 10 s (Serve: 10 s and
                # 30 s), so a load step is seen within seconds, not half a minute.
                "metrics_interval_s": 2.0,
                "look_back_period_s": 10.0,
            }
        else:
            deployment["num_replicas"] = self.num_replicas or 1
        args: dict[str, Any] = {"model": self.model, "version": version}
        args["tracking_uri"] = tracking_uri
        if self.autoscaling:
            args["inline"] = False  # see ModelServer: keeps queueing visible to Serve
        if self.batching is not None:
            args["batching"] = self.batching.model_dump()
        if self.mask_fields:
            args["mask_fields"] = self.mask_fields
        return {
            "name": self.model,
            "route_prefix": model_route(self.model),
            "import_path": MODEL_APP_IMPORT,
            "args": args,
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


def shared_application(
    tracking_uri: str, replicas: int, num_cpus: float, max_ongoing_requests: int = 64
) -> dict[str, Any]:
    """The multiplexed pool that serves every ``mode: shared`` model (no HTTP route:
    the gateway forwards ``/v1/models/{name}/...`` of shared models to it)."""
    return {
        "name": SHARED_APP,
        "route_prefix": None,
        "import_path": SHARED_APP_IMPORT,
        "args": {"tracking_uri": tracking_uri},
        "deployments": [
            {
                "name": SHARED_DEPLOYMENT,
                "num_replicas": replicas,
                "max_ongoing_requests": max_ongoing_requests,
                "ray_actor_options": {"num_cpus": num_cpus},
                "max_surge_percent": SURGE_PERCENT,
            }
        ],
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


class DeploymentFile(BaseModel):
    """A file for ``maas apply``: the deployment specs of several models.

    .. code-block:: yaml

        kind: MaasDeployments
        models:
          - {model: sentiment, alias: production, min_replicas: 1, max_replicas: 2}
          - {model: tabular, alias: production, canary: {version: "2", percent: 10}}
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["MaasDeployments"] = Field(description="Marks a maas_ray apply file.")
    models: list[DeploymentSpec] = Field(min_length=1, description="One spec per model.")

    @model_validator(mode="after")
    def _declarative(self) -> DeploymentFile:
        names = [m.model for m in self.models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"models listed twice: {', '.join(twice)}")
        loose = [m.model for m in self.models if m.version is None and m.alias is None]
        if loose:
            raise ValueError(
                f"give a version or an alias for {', '.join(loose)}: a file pins what it serves"
            )
        return self
