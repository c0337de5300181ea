"""maas_ray: Model-as-a-Service on an MLflow registry and Ray Serve."""

from __future__ import annotations

from maas_ray import _quiet  # noqa: F401 - before anything imports MLflow
from maas_ray.async_client import AsyncMaaS
from maas_ray.client import MaaS
from maas_ray.control.status import ModelStatus
from maas_ray.errors import MaasError
from maas_ray.registry.models import ModelInfo, VersionInfo
from maas_ray.settings import Settings
from maas_ray.spec import DeploymentSpec

__all__ = [
    "AsyncMaaS",
    "DeploymentSpec",
    "MaaS",
    "MaasError",
    "ModelInfo",
    "ModelStatus",
    "Settings",
    "VersionInfo",
]
__version__ = "0.1.0"
