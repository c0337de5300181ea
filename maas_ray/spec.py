"""The specs: what a user asks for, validated once.

The ground floor: the registry stores a ``DeploymentSpec`` as a tag, the control
plane turns it into Serve applications, the replica gets its ``Batching`` and
``Traffic``, and the SDK and CLI send it; all of them import it from here. A
``TrainingSpec`` is what ``maas train`` (SDK, CLI, management API, job) fits.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Names of the Serve applications and deployments the platform runs.
GATEWAY_APP = "maas-gateway"
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


# A model name as the registry takes it (see registry/_names.py): also the
# training spec's ``name``.
_NAME = r"^[^\W_][\w.-]{0,99}$"
# ``module.sub:callable`` that returns an unfitted scikit-learn estimator.
_FACTORY = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
# An estimator object the SDK pickled into the training's run.
_STAGED = r"^runs:/[0-9a-f]{32}/[\w./-]+\.pkl$"
# ``module.Class`` of a scikit-learn estimator, in an estimator spec.
_CLASS = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")


class TrainingSpec(BaseModel):
    """What ``maas train`` fits and registers: data, label, pipeline, split.

    .. code-block:: yaml

        kind: MaasTraining
        name: sentiment
        data: examples/sentiment/data.csv        # CSV or Parquet
        label: label
        pipeline:                                # or "package.module:factory"
          - sklearn.feature_extraction.text.TfidfVectorizer: {analyzer: char_wb}
          - sklearn.naive_bayes.MultinomialNB: {alpha: 1.0}

    ``pipeline`` is an importable factory (``module:callable`` returning an unfitted
    estimator) or estimator steps, each ``{"module.Class": {params}}``, chained with
    scikit-learn's ``make_pipeline``; list values of params become tuples
    (``ngram_range: [1, 3]``). ``data`` is a path the job can read, or an MLflow
    artifact URI (``runs:/...``) where the SDK staged it.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["MaasTraining"] = Field(
        default="MaasTraining", description="Marks a maas_ray training file."
    )
    name: str = Field(description="Registered model to add a version to.")
    data: str = Field(min_length=1, max_length=4096, description="CSV/Parquet path or URI.")
    label: str = Field(default="target", min_length=1, max_length=200)
    pipeline: str | list[dict[str, dict[str, object]]] = Field(
        description="'module:factory', or estimator steps [{'module.Class': {params}}]."
    )
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Held-out share.")
    seed: int = Field(default=0, ge=0, description="Seed of the split (and the estimator).")
    num_cpus: float = Field(default=1.0, gt=0, le=256, description="CPUs the fit task takes.")
    array_input: bool = Field(
        default=False,
        description="Fit on, and serve, a 2-D array without column names (what a version "
        "registered from a NumPy array takes), not named columns.",
    )
    promote_if_better: str | None = Field(
        default=None,
        description="Promote to @production only if this held-out metric beats the "
        "production version's on the same rows.",
    )
    description: str | None = Field(default=None, max_length=5000)
    tags: dict[str, str] = Field(default_factory=dict)
    data_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Set by the SDK when it staged the data: checked against what is read.",
    )
    run_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="MLflow run to log into (where the SDK staged the inputs); None: a new one.",
    )

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not re.match(_NAME, name):
            raise ValueError(
                "use letters, digits, '-', '_' or '.', starting with a letter or digit"
            )
        return name

    @model_validator(mode="after")
    def _checked(self) -> TrainingSpec:
        if isinstance(self.pipeline, str):
            if not re.match(_FACTORY, self.pipeline) and not re.match(_STAGED, self.pipeline):
                raise ValueError(
                    f"got pipeline '{self.pipeline}': give 'module:factory' or estimator steps"
                )
        else:
            if not self.pipeline:
                raise ValueError("pipeline: give at least one estimator step")
            for step in self.pipeline:
                if len(step) != 1 or not re.match(_CLASS, next(iter(step))):
                    raise ValueError(
                        f"pipeline step {step}: give one {{'module.Class': {{params}}}} per step"
                    )
        metric = self.promote_if_better
        if metric is not None and metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            known = ", ".join(CLASSIFICATION_METRICS + REGRESSION_METRICS)
            raise ValueError(f"promote_if_better: got '{metric}', one of {known}")
        return self


class FinetuneSpec(BaseModel):
    """What ``maas finetune`` trains further with Ray Train: a registered PyTorch
    version, new rows, and the run's shape (workers, epochs, learning rate).

    ``from_version`` None: the version ``@production`` points at. ``data``: CSV or
    Parquet with a ``label`` column; the other columns are the features, in the
    order of the model's signature (by name where the signature names columns).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["MaasFinetune"] = Field(
        default="MaasFinetune", description="Marks a maas_ray fine-tune document."
    )
    name: str = Field(description="Registered model whose version is trained further.")
    from_version: str | None = Field(
        default=None, pattern=r"^[1-9][0-9]{0,9}$", description="Parent; None: @production."
    )
    data: str = Field(min_length=1, max_length=4096, description="CSV/Parquet path or URI.")
    label: str = Field(default="target", min_length=1, max_length=200)
    workers: int = Field(default=1, ge=1, le=256, description="Ray Train workers (DDP).")
    num_gpus_per_worker: float = Field(
        default=0, ge=0, le=8, description="GPUs each worker takes; >0 trains with NCCL."
    )
    cpus_per_worker: float = Field(
        default=1.0, gt=0, le=64, description="CPUs each worker declares."
    )
    epochs: int = Field(default=2, ge=1, le=10000)
    lr: float = Field(default=1e-3, gt=0, le=10, description="Adam's learning rate.")
    batch_size: int = Field(default=32, ge=1, le=65536, description="Rows per step per worker.")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Held-out share.")
    seed: int = Field(default=0, ge=0)
    max_failures: int = Field(
        default=1, ge=1, le=100, description="Worker failures the run recovers from."
    )
    promote_if_better: str | None = Field(
        default=None,
        description="Promote to @production only if this held-out metric beats the "
        "production version's on the same rows.",
    )
    description: str | None = Field(default=None, max_length=5000)
    tags: dict[str, str] = Field(default_factory=dict)
    data_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @field_validator("name")
    @classmethod
    def _named(cls, name: str | None) -> str | None:
        return None if name is None else TrainingSpec._named(name)

    @field_validator("promote_if_better")
    @classmethod
    def _metric(cls, metric: str | None) -> str | None:
        if metric is not None and metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            known = ", ".join(CLASSIFICATION_METRICS + REGRESSION_METRICS)
            raise ValueError(f"got '{metric}', one of {known}")
        return metric


class FinetuneBody(FinetuneSpec):
    """``POST /v1/admin/models/{name}/finetune``'s body: the spec, its name from the path."""

    name: str | None = Field(  # type: ignore[assignment]
        default=None, description="Taken from the path; if given, it must match."
    )

    def spec(self, name: str) -> FinetuneSpec:
        """The spec for the model of the path (a different name in the body is a 400)."""
        if self.name is not None and self.name != name:
            raise ValueError(f"name: the body names '{self.name}', the path '{name}'")
        return FinetuneSpec.model_validate({**self.model_dump(exclude={"name"}), "name": name})


# A hyperparameter's declared space: values to try each (a grid), or a range to sample.
DISTRIBUTIONS = ("uniform", "loguniform", "randint")


class TuningSpec(TrainingSpec):
    """What ``maas tune`` searches: a ``MaasTraining`` document plus a small space.

    .. code-block:: yaml

        kind: MaasTuning
        name: sentiment
        data: data.csv
        label: label
        pipeline:
          - sklearn.feature_extraction.text.TfidfVectorizer: {analyzer: char_wb}
          - sklearn.naive_bayes.MultinomialNB: {}
        search:                                  # scikit-learn's get_params() names
          multinomialnb__alpha: {loguniform: [0.01, 1.0]}
          tfidfvectorizer__ngram_range: [[1, 2], [1, 3]]
        metric: f1
        trials: 4

    A list is a grid (every value is tried, times ``trials``); ``{uniform|loguniform|
    randint: [low, high]}`` is sampled once per trial.
    """

    kind: Literal["MaasTuning"] = Field(  # type: ignore[assignment]
        default="MaasTuning", description="Marks a maas_ray tuning file."
    )
    search: dict[str, list[object] | dict[str, list[float]]] = Field(
        min_length=1,
        max_length=20,
        description="Estimator parameter -> values (a grid) or {distribution: [low, high]}.",
    )
    metric: str = Field(default="accuracy", description="The held-out metric to optimise.")
    trials: int = Field(default=1, ge=1, le=200, description="Samples of the space.")

    @model_validator(mode="after")
    def _space(self) -> TuningSpec:
        if self.metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            known = ", ".join(CLASSIFICATION_METRICS + REGRESSION_METRICS)
            raise ValueError(f"metric: got '{self.metric}', one of {known}")
        for param, space in self.search.items():
            if isinstance(space, list):
                if not space:
                    raise ValueError(f"search.{param}: give at least one value")
                continue
            if len(space) != 1 or next(iter(space)) not in DISTRIBUTIONS:
                raise ValueError(
                    f"search.{param}: give a list of values or one of "
                    f"{', '.join(DISTRIBUTIONS)}: [low, high]"
                )
            kind, bounds = next(iter(space.items()))
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise ValueError(f"search.{param}.{kind}: give [low, high] with low < high")
            if kind == "loguniform" and bounds[0] <= 0:
                raise ValueError(f"search.{param}.loguniform: low must be above 0")
        trials = self.trials
        grid = 1
        for space in self.search.values():
            grid *= len(space) if isinstance(space, list) else 1
        if grid * trials > 200:
            raise ValueError(f"search: {grid * trials} trials; keep it to 200 at most")
        return self
