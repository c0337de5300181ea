"""`maas up` / `maas down`: real processes on loopback, idempotent, reachable by other drivers."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import psutil

from maas_ray import Settings
from maas_ray.control import platform, sessions
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import ROOT, auth, maas


def _listeners(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def test_http_services_listen_on_loopback_only(live: Settings) -> None:
    for port in (live.mlflow_port, live.serve_port, live.dashboard_port):
        assert _listeners(port) == {"127.0.0.1"}, f"port {port}: {_listeners(port)}"
    # Ray 2.60's own gRPC servers (GCS, raylet, workers) listen on every interface
    # whatever --node-ip-address says; the head advertises and is reached on loopback.
    assert _listeners(live.ray_port)
    with socket.create_connection(("127.0.0.1", live.ray_port), timeout=5):
        pass


def test_haproxy_is_the_http_ingress(live: Settings) -> None:
    """The Serve port is HAProxy's (MAAS_INGRESS=haproxy), started by Ray in our session."""
    owners = {
        psutil.Process(c.pid).name()
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == live.serve_port and c.pid
    }
    assert owners == {"haproxy"}, owners
    # The replicas answer on their own ports, from the configured range.
    low, high = (int(p) for p in live.ingress_http_ports.split("-"))
    assert any(
        low <= c.laddr.port <= high
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    )


def test_every_part_answers(live: Settings) -> None:
    assert httpx.get(f"{live.mlflow_uri}/health", timeout=10).status_code == 200
    assert (
        httpx.get(
            f"{live.dashboard_url}/api/version", headers=dashboard_headers(live), timeout=10
        ).status_code
        == 200
    )
    for path in ("/healthz", "/v2/health/live", "/v2/health/ready"):
        assert httpx.get(f"{live.serve_url}{path}", timeout=10).status_code == 200
    # MLflow keeps the registry in MAAS_HOME/mlflow.db: a SQLite file with its tables.
    store = Path(live.home) / "mlflow.db"
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"registered_models", "model_versions", "registered_model_aliases"} <= tables


def test_second_up_reports_running_and_changes_nothing(live: Settings, env: dict[str, str]) -> None:
    before = platform._load_state(live)
    pids = {p.pid for v in before.values() if "sid" in v for p in sessions.processes(v["sid"])}
    proc = maas(env, "up")
    assert proc.stdout.count("already running") == 3, proc.stdout
    assert "started" not in proc.stdout.replace("already running", "")
    assert platform._load_state(live) == before
    still = {p.pid for v in before.values() if "sid" in v for p in sessions.processes(v["sid"])}
    assert pids <= still | {p for p in pids if not psutil.pid_exists(p)}


def test_unknown_route_is_json_404(live: Settings) -> None:
    resp = httpx.get(f"{live.serve_url}/no/such/route", headers=auth(live), timeout=10)
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found"


def test_ray_job_submit_attaches_and_sees_serve(seeded: dict[str, object], live: Settings) -> None:
    """Another process attaches to the head: a Ray job calls a model through a Serve handle."""
    script = (
        "import json, ray\n"
        "from ray import serve\n"
        # The GCS address, not 'auto': 'auto' picks the Ray cluster started last on the
        # machine, which is `make up`'s when the tests run beside it.
        f"ray.init(address='{live.ray_address}')\n"
        "h = serve.get_app_handle('sentiment')\n"
        "out = h.predict.remote({'inputs': ['this book is terrible']}).result()\n"
        "print('RESULT', json.dumps({'cpus': ray.cluster_resources().get('CPU'), **out}))\n"
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ray"),
            "job",
            "submit",
            "--address",
            live.dashboard_url,
            "--",
            "python",  # as README writes it: the head's `python` is the platform's own
            "-c",
            script,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["cpus"] == live.ray_num_cpus
    assert result["predictions"] == ["negative"]
    assert result["version"] == seeded["sentiment"]["version"]


def test_application_builds_reuse_a_worker(seeded: dict[str, object], live: Settings) -> None:
    """Serve builds each application in a task whose worker Ray exits after one call;
    the platform's builds (serving/builds.py) share warm workers: Serve names each
    build's log after the worker's process id."""
    logs = live.ray_temp_dir / "session_latest" / "logs" / "serve"
    built = [p.stem.rsplit("_", 1) for p in logs.glob("controller_build_*.log")]
    apps = {app for app, _ in built}
    per_worker = Counter(pid for _, pid in built)
    # the gateway, the management API, the shared pool and the seeded examples at least
    assert len(apps) >= 3 + len(seeded), sorted(apps)
    # with Ray's max_calls=1 each build has a process of its own
    assert len(per_worker) < len(built), per_worker
    # each build imports the platform's serving modules itself (serving/warm.py leaves
    # them to the main thread), so builds close together spread over a few workers
    assert max(per_worker.values()) >= 2, per_worker
