"""The SDK and CLI stay thin: no MLflow or Ray import until a command needs one."""

from __future__ import annotations

import subprocess
import sys

from maas_ray import client
from maas_ray.serving import decode


def test_client_formats_match_the_server() -> None:
    assert client.FORMATS == decode.FORMATS


def test_cli_starts_without_importing_mlflow_or_ray() -> None:
    code = (
        "import sys, maas_ray.cli.main\n"
        "print(sorted(m for m in ('mlflow', 'ray', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sdk_has_no_direct_registry_or_control_plane() -> None:
    """The SDK has no way around the management API."""
    assert not hasattr(client.MaaS, "registry")
    assert not hasattr(client.MaaS, "control")
