"""The specs: what a user asks for, validated once.

The ground floor: the registry stores a ``DeploymentSpec`` as a tag, the control
plane turns it into Serve applications, the replica gets its ``Batching`` and
``Traffic``, and the SDK and CLI send it; all of them import it from here. The
training specs live beside it, in ``training_spec.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Names of the Serve applications and deployments the platform runs.
GATEWAY_APP = "maas-gateway"
GATEWAY_DEPLOYMENT = "Gateway"
ADMIN_APP = "maas-admin"
SHARED_APP = "maas-shared"
SHARED_DEPLOYMENT = "SharedPool"
MODEL_DEPLOYMENT = "ModelServer"


class Canary(BaseModel):
    """Send ``percent`` of a model's traffic to ``version``; the rest to the primary."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="Challenger version.")
    percent: float = Field(ge=0, le=100, description="Share of requests it answers, 0-100.")
    sticky_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="Request header whose value pins a caller to one version.",
    )


class Shadow(BaseModel):
    """Mirror ``percent`` of requests to ``version``; callers only see the primary."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="Challenger version.")
    percent: float = Field(default=100, ge=0, le=100, description="Share mirrored, 0-100.")


class Batching(BaseModel):
    """Dynamic batching of concurrent requests into one model call."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        ge=1, le=1024, description="Most requests per model call; 1 turns batching off."
    )
    batch_wait_timeout_s: float = Field(
        default=0.005, ge=0, le=1, description="Longest wait for a batch to fill."
    )


LOWER_IS_BETTER = frozenset({"mae", "rmse"})  # metrics where less is better


class QualityCheck(BaseModel):
    """When a served version counts as degraded, from the labels sent as feedback."""

    model_config = ConfigDict(extra="forbid")

    metric: Literal["accuracy", "precision", "recall", "f1", "mae", "rmse"] = Field(
        default="f1", description="Figure of the sliding window to check (macro averages)."
    )
    min: float | None = Field(default=None, description="Lowest good value (accuracy...f1).")
    max: float | None = Field(default=None, ge=0, description="Highest good value (mae, rmse).")
    min_labels: int = Field(
        default=50, ge=1, le=10_000_000, description="Labelled predictions needed to judge."
    )

    @model_validator(mode="after")
    def _bound(self) -> QualityCheck:
        if self.metric in LOWER_IS_BETTER:
            if self.max is None or self.min is not None:
                raise ValueError(f"{self.metric}: give max (lower is better), not min")
        elif self.min is None or self.max is not None or not 0 <= self.min <= 1:
            raise ValueError(f"{self.metric}: give min, between 0 and 1")
        return self


class DriftCheck(BaseModel):
    """When a served version's inputs count as drifted from its reference."""

    model_config = ConfigDict(extra="forbid")

    psi_max: float = Field(
        default=0.2, gt=0, le=100, description="A feature drifts at this PSI or more."
    )
    min_rows: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        description="Live rows needed in the window to judge (fewer: PSI is mostly noise).",
    )


class RetrainPolicy(BaseModel):
    """Close the loop: retrain a degraded version on its labelled predictions, canary the
    result, promote it only if it beats production on the labels that follow."""

    model_config = ConfigDict(extra="forbid")

    when: Literal["degraded", "manual"] = Field(
        default="degraded",
        description="degraded: start by itself when the quality check says so; manual: "
        "only `maas retrain NAME` starts one (the rest of the loop runs the same).",
    )
    min_labels: int = Field(
        default=200,
        ge=10,
        le=10_000_000,
        description="Labelled predictions of the window needed to retrain on; the canary "
        "then needs as many labelled answers (and production as many, over the same "
        "time) before the two are compared.",
    )
    canary_percent: float = Field(
        default=10, gt=0, lt=100, description="Share of requests the retrained version answers."
    )
    window_s: float | None = Field(
        default=None,
        gt=0,
        le=365 * 24 * 3600,
        description="How far back labelled predictions are taken (default: the monitoring "
        "window, MAAS_MONITOR_WINDOW_S).",
    )
    cooldown_s: float = Field(
        default=3600,
        ge=0,
        le=365 * 24 * 3600,
        description="After a retrain ends, how long a degraded version waits before the next.",
    )
    epochs: int = Field(default=2, ge=1, le=1000, description="Fine-tune epochs (PyTorch).")


class Traffic(BaseModel):
    """A primary's traffic settings (its deployment's user_config): at most one side."""

    model_config = ConfigDict(extra="forbid")

    canary: Canary | None = None
    shadow: Shadow | None = None


# A canary or shadow runs as a Serve application of its own, next to its primary's,
# so starting or ending one never restarts the primary: the split reaches the
# primary's replicas as user_config (a reconfigure). '~' cannot occur in a model
# name, so the name never clashes with a model's application.
CHALLENGER_SUFFIX = "~challenger"


def challenger_app(model: str) -> str:
    """The name of the Serve application that runs ``model``'s canary or shadow."""
    return model + CHALLENGER_SUFFIX


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
    max_queued_requests: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Requests a replica holds waiting beyond max_ongoing_requests; more are "
        "answered 503 with Retry-After at once (overload); default: MAAS_MAX_QUEUED_REQUESTS.",
    )
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

    quality: QualityCheck | None = Field(
        default=None,
        description="Flag the version degraded when this figure of the labels crosses its "
        "bound (maas status: ok / degraded / not enough labels).",
    )
    drift: DriftCheck | None = Field(
        default=None,
        description="Drift thresholds (default: PSI 0.2 over at least 200 rows); a drifted "
        "version shows 'drifting' in maas status.",
    )
    retrain: RetrainPolicy | None = Field(
        default=None,
        description="Retrain the version on its labelled predictions when it degrades, "
        "canary the result, promote it if it beats production (maas retrain by hand).",
    )
    predict_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Longest a predict may take before it is answered 504 predict_timeout, "
        "for every predict (set here, none runs on the replica's event loop); default: "
        "MAAS_PREDICT_TIMEOUT_S (30), for predicts that run off it.",
    )
    log_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Share of predictions recorded in the prediction log, 0-100 (monitoring "
        "and feedback join only logged ones); default: MAAS_MONITOR_PERCENT (10), 100 while "
        "a canary or shadow runs.",
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
        if self.retrain is not None and self.retrain.when == "degraded" and self.quality is None:
            raise ValueError("retrain when degraded needs a quality check (quality: metric, min)")
        if self.mode == "shared":
            sized = (
                "num_replicas",
                "min_replicas",
                "max_replicas",
                "canary",
                "shadow",
                "batching",
                "log_percent",  # the pool logs at MAAS_MONITOR_PERCENT
                "retrain",  # its result runs as a canary: dedicated replicas
            )
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
    def side(self) -> Literal["canary", "shadow"] | None:
        """Which kind of challenger this spec runs, if any."""
        if self.canary is not None:
            return "canary"
        return "shadow" if self.shadow is not None else None

    @property
    def autoscaling(self) -> bool:
        """True when the replica count follows load."""
        return self.min_replicas is not None

    def replicas_text(self) -> str:
        """``"2"`` or ``"1-3"`` for tables."""
        if self.autoscaling:
            return f"{self.min_replicas}-{self.max_replicas}"
        return str(self.num_replicas or 1)


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
