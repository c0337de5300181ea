"""MLflow SIGKILLed on the session platform: serving goes on (dedicated replicas and the
shared pool alike, and a dedicated replica SIGKILLed meanwhile comes back from this
machine's verified copy of its version), what the platform cannot know without the
registry is a fast JSON 503 `registry_unavailable`, the CLI and the management API say
the registry is down, registry writes are refused plainly and succeed once `maas up`
has restarted MLflow, the prediction log catches up, and nothing acknowledged is lost.
Runs late in the session (tests/reliability), and puts MLflow back."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from typing import Any

import httpx
import psutil
import pytest
from sklearn.dummy import DummyClassifier

from maas_ray import MaaS, Settings
from maas_ray.control import platform, sessions
from maas_ray.errors import MaasError, RegistryUnavailable
from maas_ray.registry._reach import ANSWERING_ENV
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import FIGURES, auth, maas, post
from tests.integration.test_monitoring import _ids

pytestmark = pytest.mark.slow
ROW = {"inputs": [[0.0]]}


def _kill_mlflow(live: Settings) -> None:
    """SIGKILL every process of MLflow's session (no chance to finish a write)."""
    sid = int(platform._load_state(live)["mlflow"]["sid"])
    procs = sessions.processes(sid)
    assert procs
    for proc in procs:
        proc.kill()
    _, alive = psutil.wait_procs(procs, timeout=10)  # reaps the ones this process started
    assert not alive, f"MLflow outlived SIGKILL: {alive}"


def _replicas(live: Settings, app: str) -> list[dict[str, Any]]:
    apps = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=30
    ).json()["applications"]
    return [r for d in apps[app]["deployments"].values() for r in d["replicas"]]


def _timed_post(live: Settings, path: str, body: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    resp = post(live, path, body)
    return resp, time.perf_counter() - started


def _acknowledged(client: MaaS) -> dict[str, list[str]]:
    return {m.name: sorted(v.version for v in client.versions(m.name)) for m in client.models()}


def test_with_mlflow_killed_serving_goes_on_and_the_rest_says_the_registry_is_down(
    seeded: dict[str, Any],
    live: Settings,
    client: MaaS,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This process registers as the platform's answering processes call MLflow: an
    # upload cut off midway is given up within seconds, not after MLflow's default
    # backoff (~2 min). Set here, not left to an earlier test's Registry(answering=True).
    for name, value in ANSWERING_ENV.items():
        monkeypatch.setenv(name, value)
    model = DummyClassifier(strategy="constant", constant="pooled").fit([[0.0]], ["pooled"])
    client.register("outage-pool", model, input_example=[[0.0]])
    client.promote("outage-pool", "1")
    pooled = {"model": "outage-pool", "alias": "production", "mode": "shared"}
    client.apply({"kind": "MaasDeployments", "models": [pooled]})
    assert post(live, "/v1/models/outage-pool/predict", ROW).status_code == 200
    before = _acknowledged(client)
    ids = _ids(20, in_sample=True)
    figures: dict[str, float] = {}
    # A registration under way when MLflow dies is refused, or was acknowledged before.
    outcome: dict[str, Any] = {}

    def register() -> None:
        try:
            outcome["version"] = client.register("outage-late", model, input_example=[[0.0]])
        except MaasError as exc:
            outcome["error"] = exc

    writer = threading.Thread(target=register, daemon=True)
    writer.start()
    time.sleep(0.3)
    _kill_mlflow(live)
    killed = time.monotonic()
    try:
        writer.join(timeout=120)
        assert not writer.is_alive()
        if "error" in outcome:  # from the SDK's own upload, or the platform's answer
            error = outcome["error"]
            assert getattr(error, "remote_code", error.code) == "registry_unavailable", error
        # A replica that dies meanwhile comes back: its replacement loads the copy this
        # machine verified when the version was first loaded (registry/cache.py).
        dead = _replicas(live, "tabular")
        assert [r["state"] for r in dead] == ["RUNNING"], dead
        os.kill(int(dead[0]["pid"]), signal.SIGKILL)
        started = time.monotonic()
        while not any(
            r["state"] == "RUNNING" and r["replica_id"] != dead[0]["replica_id"]
            for r in _replicas(live, "tabular")
        ):
            assert time.monotonic() - started < 60, _replicas(live, "tabular")
            time.sleep(0.25)
        figures["replaced"] = time.monotonic() - started
        for rid in ids:  # a dedicated model: its replica needs no registry
            headers = {**auth(live), "x-request-id": rid}
            resp = post(
                live, "/v1/models/tabular/predict", {"inputs": [[0.0] * 30]}, headers=headers
            )
            assert resp.status_code == 200, resp.text
        time.sleep(2.5)  # past the gateway's map refresh: the pool answers from the last one
        resp, figures["shared"] = _timed_post(live, "/v1/models/outage-pool/predict", ROW)
        assert (resp.status_code, resp.json()) == (200, {"predictions": ["pooled"]}), resp.text
        resp, figures["unknown"] = _timed_post(live, "/v1/models/nosuch/predict", ROW)
        assert (resp.status_code, resp.json()["code"]) == (503, "registry_unavailable"), resp.text
        assert "maas up" in resp.json()["error"]
        assert figures["unknown"] < 1.0, figures
        resp, figures["deploy"] = _timed_post(live, "/v1/admin/models/tabular/deploy", {})
        assert (resp.status_code, resp.json()["code"]) == (503, "registry_unavailable"), resp.text
        assert figures["deploy"] < 2.0, figures
        for args in (("status",), ("deploy", "tabular"), ("promote", "tabular", "1")):
            proc = maas(env, *args, check=False)
            assert proc.returncode == 1, (args, proc.stdout)
            assert "model registry" in proc.stderr, (args, proc.stderr)
            assert "does not answer" in proc.stderr, (args, proc.stderr)
            assert "internal error" not in proc.stderr
        started = time.perf_counter()
        with pytest.raises(RegistryUnavailable):
            client.register("outage-new", model, input_example=[[0.0]])
        figures["register"] = time.perf_counter() - started
        time.sleep(live.monitor_flush_s + 2)  # a log write fails; the records stay buffered
        figures["down_s"] = time.monotonic() - killed
    finally:
        platform.up(live)  # restarts MLflow, as `maas up` does
    after = _acknowledged(client)
    for name, versions in before.items():
        assert set(versions) <= set(after[name]), name  # nothing acknowledged is lost
    if "version" in outcome:
        assert outcome["version"].version in after["outage-late"]
    with sqlite3.connect(live.home / "mlflow.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert client.register("outage-new", model, input_example=[[0.0]]).version
    deadline = time.monotonic() + 60
    while True:  # the buffered prediction log reached MLflow
        answer = client.feedback("tabular", [{"request_id": rid, "label": 0} for rid in ids])
        if answer.accepted == len(ids):
            break
        assert time.monotonic() < deadline, answer
        time.sleep(2)
    client.undeploy("outage-pool")
    FIGURES.append(
        "MLflow SIGKILLed for {down_s:.0f} s: a SIGKILLed replica replaced in {replaced:.1f} s "
        "from this machine's verified copy; dedicated and shared-pool predicts 200 "
        "(shared {shared:.3f} s); unknown model 503 in {unknown:.3f} s; deploy 503 in "
        "{deploy:.2f} s; SDK register refused in {register:.2f} s; the log caught up".format(
            **figures
        )
    )
