"""Imported by every Ray worker process at start (``RAY_preload_python_modules``).

A replica's worker spends most of its start importing what model loading needs
(MLflow, skops, which walks all of scikit-learn). Doing it in a background
thread from the moment the worker process starts overlaps that with Serve
building the application, instead of after it; the worker is ready at once,
so workers that never load a model lose nothing but a few idle seconds of CPU.

Workers started for a training job (its runtime environment sets
``MAAS_WARM_IMPORTS=0``, see jobs/submit.py) never host a replica: Ray Train
and Ray Data start about ten of them per run, and on a small machine their
imports would take CPU from the replicas answering beside them. Nor do the
workers Serve starts for itself (its controller, its proxies, the HAProxy
manager; ~2.3 CPU-seconds each here): a worker's process title says what it
hosts, so the imports wait for it (``FATE_S``) and go on only for a replica, or
for a worker still idle then (the reserve, serving/reserve.py, whose next work is
most likely a replica). One of Serve's actors placed on a worker that had
already waited idle that long (one Ray prestarted) has imported them anyway:
seen for the proxy, not for the controller or the HAProxy manager.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time

from maas_ray.serving import builds

# Neither Ray Serve's modules nor the platform's serving ones: the worker's main thread
# may be importing them at the same moment (a controller, a build task, a replica), and
# two threads importing one circle of modules can see it half initialized. It killed a
# Serve controller once; and a build task that found `maas_ray.serving.deployment` half
# imported by this thread ("cannot import name 'ModelServer'") left the worker, which
# later builds reuse (serving/builds.py), failing every deploy after it. MLflow's,
# scikit-learn's and SQLAlchemy's modules import nothing of Serve's or ours.
# skops.io through registry/skops_io.py: without PyTorch. SQLAlchemy: what a replica's
# key check reads the security database with (security/db.py; ~0.25 s to import).
MODULES = ("mlflow.pyfunc", "maas_ray.registry.skops_io", "sqlalchemy.dialects.sqlite")
SWITCH = "MAAS_WARM_IMPORTS"  # "0" in a job's runtime environment (jobs/submit.py)
# Serve's build task (ray/serve/_private/application_state.py): a worker running it
# builds (and, for the platform's own applications, may be kept for the next build:
# serving/builds.py); the build imports what it needs itself.
BUILD_TASK = builds.TASK


def building() -> bool:
    """Whether this worker's main thread runs Serve's build task now."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code.co_name == BUILD_TASK:
            return True
        frame = frame.f_back
    return False


# Ray's process titles (ray._raylet.setproctitle): an idle worker's, and what a Serve
# replica's holds (its actor class, or its actor name while a call runs).
IDLE_TITLE = "ray::IDLE"
REPLICA_MARKS = ("ServeReplica", "SERVE_REPLICA")
# How long a new worker's imports wait to see what it hosts: a worker started for an
# actor or task runs it within milliseconds of registering with its raylet.
FATE_S = 0.5


def _title() -> str | None:
    """This process's title if it is a Ray worker (else None: nothing set it)."""
    raylet = sys.modules.get("ray._raylet")
    title = getattr(raylet, "getproctitle", None)
    return str(title()) if title is not None else None


def wanted(title: str | None) -> bool:
    """Whether a process of this title may still host a replica: an idle worker, a
    replica, or no Ray worker at all (a plain interpreter importing this module)."""
    if title is None or not title.startswith("ray::"):
        return True
    return title == IDLE_TITLE or any(mark in title for mark in REPLICA_MARKS)


def _fate(timeout_s: float = FATE_S) -> None:
    """Wait until the worker leaves idle, at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while _title() == IDLE_TITLE and time.monotonic() < deadline:
        time.sleep(0.02)


def _import_all() -> None:
    _fate()
    for name in MODULES:
        if building() or not wanted(_title()):
            return  # CPU taken from the build or the actor, for imports it never uses
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing extra must not kill a worker
            continue


if os.environ.get(SWITCH, "1") != "0":
    threading.Thread(target=_import_all, name="maas-warm-imports", daemon=True).start()
