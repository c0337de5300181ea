"""Desired state -> running state: specs, the Serve REST API, the local platform."""

from maas_ray.control.deployer import ControlPlane, ModelStatus
from maas_ray.control.spec import DeploymentSpec

__all__ = ["ControlPlane", "DeploymentSpec", "ModelStatus"]
