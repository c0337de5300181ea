"""What the feedback and monitoring routes take and answer (pydantic, so typed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Scalar = str | int | float | bool
Arm = Literal["production", "canary", "shadow"]
MAX_FEEDBACK = 10_000  # labels per request


class FeedbackItem(BaseModel):
    """The ground truth of one earlier prediction, joined to it by its request id."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="The x-request-id of the predict answer.",
    )
    label: Scalar | list[Scalar] = Field(
        description="The true label (or value) of the request's one row, or one per row."
    )


class FeedbackBody(RootModel[FeedbackItem | list[FeedbackItem]]):
    """One label, or a list of them."""

    def items(self) -> list[FeedbackItem]:
        """The labels, always as a list."""
        root = self.root
        return root if isinstance(root, list) else [root]


class FeedbackAnswer(BaseModel):
    """What became of a feedback request (202: stored, joined when the figures are read)."""

    model: str
    accepted: int = Field(description="Labels stored whose request id is in the log.")
    unknown_request_id: int = Field(
        description="Labels stored whose request id is not in the log (yet): not sampled, "
        "or still in a replica's buffer; joined if its prediction is logged later."
    )
    unknown: list[str] = Field(description="Up to 20 of the unknown request ids.")


class ClassFigures(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class Confusion(BaseModel):
    labels: list[str] = Field(description="Row (true) and column (predicted) order.")
    matrix: list[list[int]]


class Figures(BaseModel):
    """A version's figures over one span (the window, or all time); null: no data."""

    requests: int = Field(description="Predict answers (every one, not only the logged).")
    errors: int = Field(description="Answers with a 4xx or 5xx status.")
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    batch_size: float | None = Field(
        default=None, description="Mean requests per model call (batching replicas)."
    )
    logged: int = Field(description="Predictions in the log (the sample).")
    labelled: int = Field(description="Logged prediction rows with a label.")
    labelled_share: float | None = Field(description="labelled / logged rows.")
    task: Literal["classification", "regression"] | None = None
    accuracy: float | None = None
    precision: float | None = Field(default=None, description="Macro average.")
    recall: float | None = Field(default=None, description="Macro average.")
    f1: float | None = Field(default=None, description="Macro average.")
    per_class: dict[str, ClassFigures] | None = None
    confusion: Confusion | None = None
    mae: float | None = None
    rmse: float | None = None


class FeatureDrift(BaseModel):
    """One input feature's live distribution against the version's reference."""

    feature: str
    kind: Literal["numeric", "categorical", "text"]
    psi: float = Field(description="Population stability index (text: of length, tokens).")
    unseen_tokens: float | None = Field(
        default=None, description="Text: share of live tokens the reference never saw."
    )
    drifted: bool = False


class Drift(BaseModel):
    """A version's live inputs in the window against its reference statistics."""

    status: Literal["ok", "drifting", "not enough data", "no reference"]
    reference: Literal["training data", "first logged inputs"] | None = Field(
        default=None, description="Where the reference statistics came from."
    )
    reference_rows: int = 0
    live_rows: int = 0
    features: list[FeatureDrift] = Field(default_factory=list)


class Point(BaseModel):
    """One bucket of a series: what happened between ``start`` and the next bucket."""

    start: float = Field(description="Unix time the bucket starts.")
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    labelled: int
    accuracy: float | None = None
    f1: float | None = None
    mae: float | None = None
    rmse: float | None = None


class VersionFigures(BaseModel):
    """One version in one arm: its window next to all time (and the window in buckets)."""

    version: str
    arm: Arm
    window: Figures
    all_time: Figures
    drift: Drift | None = Field(
        default=None, description="Inputs in the window against the version's reference."
    )
    series: list[Point] = Field(
        default_factory=list, description="The window in ?buckets=N equal buckets, oldest first."
    )


class MonitoringReport(BaseModel):
    """``GET /v1/models/{name}/monitoring``: every version and arm on the same window."""

    model: str
    window_s: float
    since: float = Field(description="Start of the window (Unix time).")
    bucket_s: float | None = Field(default=None, description="Length of a series bucket.")
    generated_at: float
    versions: list[VersionFigures]


RetrainPhase = Literal["training", "canary", "promoted", "kept", "failed", "ended"]


class RetrainBody(BaseModel):
    """``maas retrain NAME``: what differs from the deployment spec's ``retrain`` policy
    (or from the policy's defaults when the spec has none)."""

    model_config = ConfigDict(extra="forbid")

    min_labels: int | None = Field(default=None, ge=10, le=10_000_000)
    canary_percent: float | None = Field(default=None, gt=0, lt=100)
    window_s: float | None = Field(default=None, gt=0, le=365 * 24 * 3600)
    epochs: int | None = Field(default=None, ge=1, le=1000)


class RetrainState(BaseModel):
    """A model's last retrain: where it is, and what it decided."""

    model: str
    state: RetrainPhase = Field(
        description="training (the job runs), canary (the result answers its share until "
        "enough labels compare it), then promoted / kept (decided), failed, or ended (a "
        "person promoted or ended the canary first)."
    )
    reason: str = Field(description="Why it started: the degraded check, or by hand.")
    actor: str = Field(description="Who started it (maas-monitor when it started by itself).")
    from_version: str = Field(description="The production version it retrains.")
    kind: Literal["train", "finetune"] = Field(
        description="train: the version's scikit-learn estimator, cloned and fit again; "
        "finetune: the PyTorch version trained further."
    )
    rows: int = Field(description="Labelled predictions it trains on.")
    window_s: float = Field(description="How far back they were taken.")
    metric: str = Field(description="What production and the canary are compared on.")
    min_labels: int
    canary_percent: float
    job_id: str | None = None
    run_id: str | None = None
    version: str | None = Field(default=None, description="The retrained version.")
    started_at: float
    canary_since: float | None = None
    ended_at: float | None = None
    message: str | None = Field(default=None, description="The last thing that happened.")

    @property
    def active(self) -> bool:
        return self.state in ("training", "canary")
