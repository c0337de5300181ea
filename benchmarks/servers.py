"""The baselines, started as real processes on 127.0.0.1 and stopped by process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready within {timeout_s:.0f}s: {log.read_text()[-2000:]}")


@contextmanager
def _process(
    cmd: list[str], env: dict[str, str], ready_url: str, log: Path, timeout_s: float = 120
) -> Iterator[None]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: uvicorn workers die with it
        )
    try:
        _wait_ready(ready_url, proc, log, timeout_s)
        yield
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def _invocations(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """A scoring server answering ``/ping`` on ``port``; yields its ``/invocations`` URL."""
    base = f"http://127.0.0.1:{port}"
    with _process(cmd, env, f"{base}/ping", log):
        yield f"{base}/invocations"


@contextmanager
def mlflow_serve(model_uri: str, tracking_uri: str, port: int, log: Path) -> Iterator[str]:
    """``mlflow models serve`` (1 worker, this environment); yields its predict URL."""
    cmd = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    with _invocations(cmd, {"MLFLOW_TRACKING_URI": tracking_uri}, port, log) as url:
        yield url


@contextmanager
def bare_starlette(model_uri: str, tracking_uri: str, port: int, log: Path) -> Iterator[str]:
    """``benchmarks/bare_app.py`` under uvicorn (1 worker); yields its predict URL."""
    cmd = [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        "benchmarks.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "BARE_MODEL_URI": model_uri}
    with _invocations(cmd, env, port, log) as url:
        yield url
