"""Imported by every Ray worker process at start (``RAY_preload_python_modules``).

A replica's worker spends most of its start importing what model loading needs
(MLflow, skops, which walks all of scikit-learn). Doing it in a background
thread from the moment the worker process starts overlaps that with Serve
building the application, instead of after it; the worker is ready at once,
so workers that never load a model lose nothing but a few idle seconds of CPU.

Workers started for a training job (its runtime environment sets
``MAAS_WARM_IMPORTS=0``, see jobs/submit.py) never host a replica: Ray Train
and Ray Data start about ten of them per run, and on a small machine their
imports would take CPU from the replicas answering beside them.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

from maas_ray.serving import builds

# Neither Ray Serve's modules nor the platform's serving ones: the worker's main thread
# may be importing them at the same moment (a controller, a build task, a replica), and
# two threads importing one circle of modules can see it half initialized. It killed a
# Serve controller once; and a build task that found `maas_ray.serving.deployment` half
# imported by this thread ("cannot import name 'ModelServer'") left the worker, which
# later builds reuse (serving/builds.py), failing every deploy after it. MLflow's and
# scikit-learn's modules import nothing of Serve's or ours.
# skops.io through registry/skops_io.py: without PyTorch.
MODULES = ("mlflow.pyfunc", "maas_ray.registry.skops_io")
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


def _import_all() -> None:
    for name in MODULES:
        if building():
            return  # the rest would be CPU taken from the build, for a worker that builds
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing extra must not kill a worker
            continue


if os.environ.get(SWITCH, "1") != "0":
    threading.Thread(target=_import_all, name="maas-warm-imports", daemon=True).start()
