"""Imported by every Ray worker process at start (``RAY_preload_python_modules``).

A replica's worker spends most of its start importing what model loading needs
(MLflow, skops, which walks all of scikit-learn). Doing it in a background
thread from the moment the worker process starts overlaps that with Serve
building the application, instead of after it; the worker is ready at once,
so workers that never load a model lose nothing but a few idle seconds of CPU.
"""

from __future__ import annotations

import importlib
import threading

MODULES = ("mlflow.pyfunc", "skops.io", "maas_ray.serving.deployment")


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing extra must not kill a worker
            continue


threading.Thread(target=_import_all, name="maas-warm-imports", daemon=True).start()
