"""A replica whose health check fails is replaced: Serve asks every model replica,
every 2 s, to predict the input example its version was registered with; the test's
model fails that (and only that) once a file names its process. The replacement runs
within 15 s, and clients using the SDK's retries see no failed request."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import mlflow.pyfunc
import numpy as np
import pytest

from maas_ray import MaaS, Settings
from maas_ray.errors import MaasError
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import FIGURES

pytestmark = pytest.mark.slow
EXAMPLE = np.array([[-1.0]])  # what the health check sends; clients send 1.0


class Sickly(mlflow.pyfunc.PythonModel):
    """Answers each row's sum; fails on a negative input once MAAS_HOME/sick/<its pid>
    exists (as a replica whose GPU or memory went bad would fail its check)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        values = np.asarray(model_input, dtype=float)
        sick = Path(os.environ.get("MAAS_HOME", "/nonexistent")) / "sick" / str(os.getpid())
        if (values < 0).any() and sick.exists():
            raise RuntimeError("this replica went bad")
        return values.sum(axis=1)


def _replicas(live: Settings) -> list[dict[str, Any]]:
    apps = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=30
    ).json()["applications"]
    return list(apps["sickly"]["deployments"]["ModelServer"]["replicas"])


class SdkLoad:
    """Two threads predicting through the SDK (its retries on), counting failures."""

    def __init__(self, live: Settings) -> None:
        self.live, self.ok, self.failed = live, 0, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(2)]

    def _run(self) -> None:
        sdk = MaaS(self.live)
        try:
            while not self._stop.is_set():
                try:
                    assert sdk.predict("sickly", [[1.0]]) == [1.0]
                    self.ok += 1
                except (MaasError, AssertionError) as exc:
                    self.failed.append(repr(exc))
                self._stop.wait(0.02)
        finally:
            sdk.close()

    def __enter__(self) -> SdkLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_a_replica_failing_its_health_check_is_replaced_and_no_request_fails(
    live: Settings, client: MaaS
) -> None:
    version = client.register("sickly", Sickly(), input_example=EXAMPLE).version
    client.deploy("sickly", version, num_replicas=2, num_cpus=0.25)
    try:
        before = {r["replica_id"]: r for r in _replicas(live)}
        victim = next(iter(before.values()))
        with SdkLoad(live) as load:
            time.sleep(1)
            marker = live.home / "sick" / str(victim["pid"])
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
            started = time.monotonic()
            while True:
                now = {r["replica_id"]: r["state"] for r in _replicas(live)}
                fresh = [i for i, s in now.items() if i not in before and s == "RUNNING"]
                if victim["replica_id"] not in now and fresh:
                    break
                assert time.monotonic() - started < 60, now
                time.sleep(0.25)
            took = time.monotonic() - started
            time.sleep(1)
        assert load.failed == [], load.failed[:5]
        assert load.ok > 0
        assert took < 15, took
        FIGURES.append(
            f"unhealthy replica replaced {took:.1f} s after its check began to fail; "
            f"{load.ok} SDK predicts meanwhile, 0 failed"
        )
    finally:
        client.undeploy("sickly")
