"""Integration tier: one real MLflow server and one real Ray cluster per session.

The platform is started with the same code as `maas up`, on ports of its own and
a temporary MAAS_HOME, and stopped by process session at the end; the teardown
fails the run if any process it started is still alive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from maas_ray import MaaS, Settings
from maas_ray.control import platform

ROOT = Path(__file__).resolve().parents[2]
PORTS = {
    "mlflow_port": 15500,
    "serve_port": 18500,
    "dashboard_port": 18765,
    "ray_port": 16879,
    "ray_client_port": 11501,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Four logical CPUs and one logical GPU on a 2-core machine: enough to place
    # several replicas and to check fractional GPU placement without a GPU.
    return Settings(
        home=tmp_path_factory.mktemp("maas-home"),
        ray_num_cpus=4,
        ray_num_gpus=1,
        deploy_timeout_s=180,
        **PORTS,
    )


@pytest.fixture(scope="session")
def env(settings: Settings) -> dict[str, str]:
    """Environment for `maas` subprocesses that talk to the session platform."""
    extra = {f"MAAS_{k.upper()}": str(v) for k, v in PORTS.items()}
    return {**os.environ, **extra, "MAAS_HOME": str(settings.home)}


@pytest.fixture(scope="session")
def live(settings: Settings) -> Iterator[Settings]:
    """The running platform (MLflow server, Ray head, Serve)."""
    platform.up(settings)
    sessions = [v["sid"] for v in platform._load_state(settings).values() if "sid" in v]
    try:
        yield settings
    finally:
        platform.down(settings)
        left = [p for sid in sessions for p in platform._session_processes(sid)]
        strays = [
            p
            for p in psutil.process_iter(["cmdline"])
            if any(str(settings.home) in part for part in (p.info["cmdline"] or []))
        ]
        assert not left, f"processes left in the platform's sessions after down: {left}"
        assert not strays, f"processes naming MAAS_HOME left after down: {strays}"


@pytest.fixture(scope="session")
def client(live: Settings) -> Iterator[MaaS]:
    sdk = MaaS(live)
    yield sdk
    sdk.close()


@pytest.fixture(scope="session")
def seeded(client: MaaS) -> dict[str, dict[str, object]]:
    """The three example models registered, deployed and answering (what `make up` does)."""
    from examples.seed import seed

    return {row["model"]: row for row in seed(client)}


def maas(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `maas` command as a user would."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "maas"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"maas {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
