"""Status rows of deployed models: what `maas status` prints (plain records)."""

from __future__ import annotations

from pydantic import BaseModel


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
