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
import threading

MODULES = ("mlflow.pyfunc", "skops.io", "maas_ray.serving.deployment")
SWITCH = "MAAS_WARM_IMPORTS"  # "0" in a job's runtime environment (jobs/submit.py)


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing extra must not kill a worker
            continue


if os.environ.get(SWITCH, "1") != "0":
    threading.Thread(target=_import_all, name="maas-warm-imports", daemon=True).start()
