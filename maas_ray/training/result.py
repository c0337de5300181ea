"""What a training answers and what a job looks like: the SDK's, the CLI's and the
management API's shapes (pydantic only, light enough for the CLI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# Tags of a training's MLflow run (and of the version it registers, where marked).
RUN_ID_TAG = "maas.run_id"  # on the version
DATA_TAG = "maas.data_sha256"  # on the version and the run
PARENT_TAG = "maas.parent_version"  # on the version (fine-tunes)
STAGE_TAG = "maas.stage"  # on the run: where the training is
VERSION_TAG = "maas.version"  # on the run: the version it registered
PROMOTED_TAG = "maas.promoted"  # on the run: "true"/"false" and why
TASK_TAG = "maas.task"  # on the run: classification / regression / sequence
EXPERIMENT = "maas-training"

JobStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]


class TrainResult(BaseModel):
    """A finished training: the version it registered, its run, its held-out scores."""

    model: str
    version: str
    run_id: str
    task: Literal["classification", "regression", "sequence"]
    metrics: dict[str, float]
    data_sha256: str
    n_train: int
    n_test: int
    promoted: bool = False
    promotion: str | None = Field(
        default=None, description="Why it was or was not promoted (promote_if_better)."
    )
    production: dict[str, Any] | None = Field(
        default=None, description="The production version and its scores on the same rows."
    )
    parent: dict[str, Any] | None = Field(
        default=None, description="A fine-tune's parent version and its scores on the same rows."
    )
    figures: dict[str, float] = Field(
        default_factory=dict,
        description="How the training ran: seconds, samples/s, workers (fine-tunes).",
    )

    def __str__(self) -> str:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items())
        return f"{self.model} version {self.version} (run {self.run_id}): {scores}"


class JobInfo(BaseModel):
    """A Ray job of the platform (a training) or any job on its cluster."""

    id: str
    status: JobStatus
    kind: str | None = Field(default=None, description="train / finetune; None: not ours.")
    model: str | None = None
    run_id: str | None = None
    stage: str | None = Field(default=None, description="Where a training is now.")
    stages: list[str] = Field(
        default_factory=list, description="Every stage so far, oldest first (one per epoch)."
    )
    entrypoint: str
    message: str | None = None
    submitted_by: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    result: TrainResult | None = None

    @property
    def done(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "STOPPED")
