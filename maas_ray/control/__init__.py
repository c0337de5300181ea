"""Desired state -> running state: specs, the Serve REST API, the local platform.

``ControlPlane`` (which needs MLflow) loads on first use; specs and status rows
are plain records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maas_ray.control.status import ModelStatus
from maas_ray.spec import DeploymentSpec

if TYPE_CHECKING:
    from maas_ray.control.deployer import ControlPlane

__all__ = ["ControlPlane", "DeploymentSpec", "ModelStatus"]


def __getattr__(name: str) -> Any:
    if name == "ControlPlane":
        from maas_ray.control.deployer import ControlPlane

        return ControlPlane
    raise AttributeError(f"module 'maas_ray.control' has no attribute {name!r}")
