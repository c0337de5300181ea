"""Registered models, versions, digests and deployment specs (MLflow Model Registry).

The MLflow-backed parts load on first use, so that clients which only need the
plain records (the CLI, the SDK) do not pay for importing MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo

if TYPE_CHECKING:
    from maas_ray.registry._registry import Registry
    from maas_ray.registry.digest import artifact_digest

__all__ = [
    "HistoryEvent",
    "ModelInfo",
    "Registry",
    "VersionInfo",
    "artifact_digest",
]


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from maas_ray.registry import _registry

        return getattr(_registry, name)
    if name == "artifact_digest":
        from maas_ray.registry.digest import artifact_digest

        return artifact_digest
    raise AttributeError(f"module 'maas_ray.registry' has no attribute {name!r}")
