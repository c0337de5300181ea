"""Status rows of deployed models and of the cluster's nodes: what `maas status` prints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from maas_ray.spec import Canary, Shadow


class ShadowAgreement(BaseModel):
    """How a shadow's answers compared with the primary's (its replicas' view)."""

    requests: int = 0
    rows: int = 0
    agree: int = 0
    errors: int = 0
    dropped: int = Field(default=0, description="Mirrors dropped: the queue was full.")


class TrafficReport(BaseModel):
    """The traffic route's answer: the split, and what one primary replica answered."""

    model: str
    primary: str
    canary: Canary | None = None
    shadow: Shadow | None = None
    answered: dict[str, int] = Field(
        default_factory=dict, description="Requests answered by this replica, per version."
    )
    agreement: ShadowAgreement | None = Field(default=None, description="Only while a shadow runs.")


class VersionRole(BaseModel):
    """The canary or shadow version next to the primary."""

    version: str
    role: str  # canary or shadow
    replicas_running: int
    replicas_target: int


class ModelStatus(BaseModel):
    """One row of ``maas status``."""

    model: str
    version: str | None
    alias: str | None
    replicas_running: int
    replicas_target: int
    replicas_spec: str
    num_cpus: float
    num_gpus: float
    health: str
    route: str
    message: str = ""
    traffic: str = "-"
    challenger: VersionRole | None = None
    pending: str = Field(
        default="",
        description="Why replicas are not running yet, e.g. 'waiting for 0.5 CPU, 0 free of 2.0'.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What may not work as asked, e.g. an autoscaling maximum beyond capacity.",
    )
    quality: str = Field(
        default="-",
        description="The serving version's labelled quality over the monitoring window: "
        "'ok', 'degraded' or 'not enough labels' against the spec's quality check, with "
        "the figure; without a check, the figure alone; '-' with no labels.",
    )


class NodeResources(BaseModel):
    """One node of the Ray cluster: logical resources used of total, and host memory."""

    node_id: str
    address: str
    is_head: bool
    alive: bool = True
    cpu_used: float
    cpu_total: float
    gpu_used: float
    gpu_total: float
    memory_used_bytes: int = Field(description="Host memory in use (RAM), bytes.")
    memory_total_bytes: int = Field(description="Host memory, bytes.")


class Operation(BaseModel):
    """A long management action (deploy, canary, apply, ...) the API runs in the background.

    ``POST`` answers it with 202 at once; ``GET /v1/admin/operations/{id}`` tells how it
    goes. ``result`` is what the call answers once done; ``error`` the JSON error
    (``error``, ``code``, ``status``) it failed with.
    """

    id: str
    action: str
    target: str
    actor: str
    state: Literal["queued", "running", "succeeded", "failed"] = "queued"
    steps: list[str] = Field(default_factory=list, description="What it did so far, in order.")
    result: Any = None
    error: dict[str, Any] | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")
