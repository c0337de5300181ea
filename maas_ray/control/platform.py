"""The local platform: an MLflow server, a Ray head and Ray Serve, up and down.

Every process is started in a new session (``setsid``) and its session id is
recorded under ``MAAS_HOME/run``; ``down`` stops exactly those sessions, which
also catches what they spawned (Ray workers, uvicorn workers, HAProxy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from maas_ray import routes
from maas_ray.control import sessions
from maas_ray.control.deployer import ControlPlane
from maas_ray.control.nodes import haproxy_dir, node_env
from maas_ray.control.restore import restore
from maas_ray.control.workers import top_up
from maas_ray.errors import PlatformUnavailable
from maas_ray.security.auth import AUTH_OFF_WARNING
from maas_ray.security.db import import_files
from maas_ray.security.keys import KeyStore, ensure_admin_key
from maas_ray.security.ray_token import (
    RAY_AUTH_OFF_WARNING,
    dashboard_headers,
    ensure_token,
    export,
)
from maas_ray.settings import Settings
from maas_ray.spec import ADMIN_APP

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
COMPONENTS = ("mlflow", "ray")
HEALTH = routes.url("healthz")  # the Serve port answers this once the gateway runs


class ComponentState(BaseModel):
    """What ``maas up`` reports about one part of the platform."""

    name: str
    url: str
    started: bool  # False: it was already running
    notes: list[str] = []  # what a restore left out, and why


def _bin(name: str) -> str:
    # Console scripts of the same environment as this interpreter.
    return str(Path(sys.executable).parent / name)


def _state_file(settings: Settings) -> Path:
    return settings.run_dir / "processes.json"


def _load_state(settings: Settings) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_state_file(settings).read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_state(settings: Settings, state: dict[str, Any]) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    _state_file(settings).write_text(json.dumps(state, indent=2))


def _answers(url: str, timeout_s: float = 2.0, headers: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s, headers=headers).status_code < 500
    except httpx.HTTPError:
        return False


def _ray_answers(settings: Settings) -> bool:
    # The dashboard asks for the token on every route but its health checks.
    return _answers(f"{settings.dashboard_url}/api/version", headers=dashboard_headers(settings))


def _wait(
    url: str,
    what: str,
    settings: Settings,
    proc: subprocess.Popen[bytes] | None,
    log: Path | None,
    progress: Progress | None,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + settings.startup_timeout_s
    while not _answers(url, headers=headers):
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise PlatformUnavailable(f"{what} exited with code {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise PlatformUnavailable(
                f"{what} did not answer at {url} within "
                f"{settings.startup_timeout_s:.0f}s; see {log}"
            )
        if progress:
            progress(f"waiting for {what}")
        time.sleep(0.5)


def up(settings: Settings, progress: Progress | None = None) -> list[ComponentState]:
    """Start whatever part of the platform is not running; idempotent.

    With auth on, the first run also creates the admin API key (see ensure_admin_key).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    keys, records = import_files(settings.security_db_url, settings.security_dir)
    if keys or records:
        logger.info("moved %d keys and %d audit records into the security database", keys, records)
    if settings.auth == "on":
        store = KeyStore(settings.security_db_url)
        if ensure_admin_key(store, settings.admin_key_file):
            logger.info("created the admin API key in %s", settings.admin_key_file)
    else:
        logger.warning(AUTH_OFF_WARNING)
    if settings.ray_auth == "on":
        if ensure_token(settings):
            logger.info("created the Ray cluster's token in %s", settings.ray_token_file)
    else:
        logger.warning(RAY_AUTH_OFF_WARNING)
    # This process talks to Ray too (restore reads the cluster's free resources).
    export(settings)
    # MLflow and the Ray head start side by side (neither needs the other; on 2 cores
    # about 9 s sooner than one after the other); both are recorded before the wait,
    # so `maas down` finds whichever started should the other fail.
    state = _load_state(settings)
    try:
        pending = [_start_mlflow(settings, state), _start_ray(settings, state)]
    finally:
        _save_state(settings, state)
    report = [finish(progress) for finish in pending]
    report.append(_up_serve(settings, progress))
    return report


def up_mlflow(settings: Settings, progress: Progress | None = None) -> ComponentState:
    """Start only the MLflow server of ``up`` (idempotent); ``down`` stops it."""
    state = _load_state(settings)
    try:
        finish = _start_mlflow(settings, state)
    finally:
        _save_state(settings, state)
    return finish(progress)


# What starting a part returns: the wait until it answers, and its line of the report.
Finish = Callable[[Progress | None], ComponentState]


def _ready(state: ComponentState) -> Finish:
    return lambda progress: state


def _start_mlflow(settings: Settings, state: dict[str, Any]) -> Finish:
    url = settings.mlflow_uri
    if _answers(f"{url}/health"):
        return _ready(ComponentState(name="mlflow", url=url, started=False))
    artifacts = settings.mlflow_artifacts
    if artifacts is None:
        (settings.home / "artifacts").mkdir(parents=True, exist_ok=True)
        artifacts = str(settings.home / "artifacts")
    store = settings.mlflow_store
    # Both by environment, not argument: a store URL's password stays out of `ps`.
    env = os.environ | {
        "MLFLOW_BACKEND_STORE_URI": store.get_secret_value()
        if store is not None
        else f"sqlite:///{settings.home / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": artifacts,
        # MLflow's job runner (GenAI judges, trace roll-ups) serves nothing of ours and
        # would start eight more Python processes (~2 GB) beside the server.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    log = settings.run_dir / "mlflow.log"
    proc = sessions.spawn(
        [
            _bin("mlflow"),
            "server",
            "--host",
            settings.host,
            "--port",
            str(settings.mlflow_port),
            "--workers",
            "1",
        ],
        log,
        env,
    )
    state["mlflow"] = {"sid": proc.pid, "log": str(log)}

    def finish(progress: Progress | None) -> ComponentState:
        _wait(f"{url}/health", "MLflow server", settings, proc, log, progress)
        logger.info("MLflow server up at %s", url)
        return ComponentState(name="mlflow", url=url, started=True)

    return finish


def _start_ray(settings: Settings, state: dict[str, Any]) -> Finish:
    url = settings.dashboard_url
    if sessions.alive(state.get("ray", {}).get("sid")) and _ray_answers(settings):
        return _ready(ComponentState(name="ray", url=url, started=False))
    log = settings.run_dir / "ray.log"
    cmd = [
        _bin("ray"),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        "--temp-dir",
        str(settings.ray_temp_dir),
        "--node-ip-address",
        settings.host,
        "--port",
        str(settings.ray_port),
        "--ray-client-server-port",
        str(settings.ray_client_port),
        "--dashboard-host",
        settings.host,
        "--dashboard-port",
        str(settings.dashboard_port),
        "--include-dashboard",
        "true",
        "--dashboard-agent-listen-port",
        str(settings.ray_agent_port),
        # Fixed, not Ray's random picks, so README can name every port the head opens.
        "--dashboard-agent-grpc-port",
        str(settings.ray_agent_grpc_port),
        "--runtime-env-agent-port",
        str(settings.ray_runtime_env_port),
        "--metrics-export-port",
        str(settings.ray_metrics_port),
        "--node-manager-port",
        str(settings.ray_node_manager_port),
        "--object-manager-port",
        str(settings.ray_object_manager_port),
        "--min-worker-port",
        settings.ray_worker_ports.split("-")[0],
        "--max-worker-port",
        settings.ray_worker_ports.split("-")[1],
    ]
    cmd += ["--num-cpus", str(settings.logical_cpus)]
    if settings.ray_num_gpus is not None:
        cmd += ["--num-gpus", str(settings.ray_num_gpus)]
    env = node_env(settings)
    proc = sessions.spawn(cmd, log, env)
    state["ray"] = {"sid": proc.pid, "log": str(log)}
    headers = dashboard_headers(settings)

    def finish(progress: Progress | None) -> ComponentState:
        _wait(f"{url}/api/version", "Ray head", settings, proc, log, progress, headers)
        logger.info("Ray head up, dashboard at %s", url)
        return ComponentState(name="ray", url=url, started=True)

    return finish


def _up_serve(settings: Settings, progress: Progress | None) -> ComponentState:
    url = settings.serve_url
    control = ControlPlane(settings)
    if _answers(url + HEALTH) and ADMIN_APP in control.serve.applications():
        return ComponentState(name="serve", url=url, started=False)
    # The gateway, the management API and every stored deployment that fits:
    # primaries before canaries and shadows; what has no room (or fails to start) is
    # named, the rest serves.
    notes = restore(control, progress)
    _wait(url + HEALTH, "Ray Serve", settings, None, None, progress)
    _wait_admin(control, settings, progress)
    _reserve_workers(settings)
    return ComponentState(name="serve", url=url, started=True, notes=notes)


def _reserve_workers(settings: Settings) -> None:
    """Idle workers on the head for the first replicas deployed (serving/reserve.py)."""
    metadata = tuple(dashboard_headers(settings).items())  # Ray's token, if on
    try:
        top_up(
            f"{settings.host}:{settings.ray_node_manager_port}", settings.worker_reserve, metadata
        )
    except Exception:  # noqa: BLE001 - the first deploys only start slower
        logger.warning("no idle workers reserved on the head", exc_info=True)


def _wait_admin(control: ControlPlane, settings: Settings, progress: Progress | None) -> None:
    """Until the management API (the CLI's and the SDK's door) runs."""
    deadline = time.monotonic() + settings.startup_timeout_s
    while (control.serve.applications().get(ADMIN_APP) or {}).get("status") != "RUNNING":
        if time.monotonic() > deadline:
            raise PlatformUnavailable(
                f"the management API ({ADMIN_APP}) did not start within "
                f"{settings.startup_timeout_s:.0f}s; see `ray status` and the Serve logs"
            )
        if progress:
            progress(f"waiting for {ADMIN_APP}")
        time.sleep(0.5)


# How long each part gets to exit after SIGTERM before it is killed. Ray keeps no
# state of ours (the registry is MLflow's): its GCS and `ray start --block` sit out
# any grace (15 s measured), so they get a short one. MLflow finishes its writes.
GRACE_S = {"mlflow": 15.0, "ray": 3.0}


def down(settings: Settings) -> list[str]:
    """Stop every process session ``up`` started; return what was stopped."""
    state = _load_state(settings)
    stopped = []
    for name in reversed(COMPONENTS):
        sid = state.get(name, {}).get("sid")
        if sid and sessions.stop(int(sid), GRACE_S[name]):
            stopped.append(name)
        state.pop(name, None)
    _save_state(settings, state)
    # What Serve's HAProxy left on the head (config, sockets): stale once Ray stopped.
    shutil.rmtree(haproxy_dir(settings), ignore_errors=True)
    return stopped


def running(settings: Settings) -> dict[str, bool]:
    """Which parts of the platform answer now."""
    return {
        "mlflow": _answers(f"{settings.mlflow_uri}/health"),
        "ray": _ray_answers(settings),
        "serve": _answers(settings.serve_url + HEALTH),
    }
