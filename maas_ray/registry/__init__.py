"""Registered models, versions, digests and deployment specs (MLflow Model Registry)."""

from maas_ray.registry._registry import DigestMismatch, Registry
from maas_ray.registry.digest import artifact_digest
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo

__all__ = [
    "DigestMismatch",
    "HistoryEvent",
    "ModelInfo",
    "Registry",
    "VersionInfo",
    "artifact_digest",
]
