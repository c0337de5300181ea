"""The platform's processes, each part (MLflow, the Ray head) in a process session of its
own (``setsid``): start one, list a session's live processes, stop a session (SIGTERM,
then SIGKILL after a grace, children included). control/platform.py records each part's
session id under ``MAAS_HOME/run``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a session of its own, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


def alive(sid: int | None) -> bool:
    """Whether session ``sid`` (None: never started) still has a live process."""
    return bool(sid) and bool(processes(int(sid or 0)))


def processes(sid: int) -> list[psutil.Process]:
    """The live processes of session ``sid``. A zombie is not one: it has exited and
    waits only for its parent to read its status, which may be a long-lived process
    that started it (a test's, or a notebook's after ``platform.up``): waiting for it
    to go away took the whole grace period at every stop."""
    procs = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and running(proc):
                procs.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return procs


def stop(sid: int, grace_s: float) -> bool:
    """SIGTERM every process of session ``sid``, SIGKILL what is left after ``grace_s``;
    whether there was anything to stop."""
    procs = processes(sid)
    if not procs:
        return False
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            continue
    alive = wait_gone(procs, grace_s)
    # Late children (a worker forked while we waited) are swept up here too.
    for proc in alive + processes(sid):
        try:
            proc.kill()
        except psutil.Error:
            continue
    wait_gone(processes(sid), 5)
    return True


def wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process in ``procs`` has exited (a zombie has: see
    ``processes``), at most ``timeout_s``; the ones still running."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in procs if running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def running(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs: neither gone nor a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
