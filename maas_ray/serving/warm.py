"""Imported by every Ray worker process at start (``RAY_preload_python_modules``).

A replica's worker spends much of its start importing what model loading needs
(MLflow, and what the replica's module imports). Doing it in a background thread from the
moment the worker process starts overlaps that with the rest of the worker's
start, instead of after it.

Only what every replica and Serve's application build need: skops (scikit-learn's
safe format) stays out. Importing it walks all of scikit-learn, about 3 s of CPU,
and every worker would pay it, Serve's build task for each deploy included, while
only a replica that loads a scikit-learn model uses it (it imports it then). On
`make up`'s 2 cores, leaving it out took a restoring `maas up` from 78.5 s (151 s
of CPU) to 60 s (115 s), and a deploy, canary or promote about 0.5 s less.

Workers started for a training job (its runtime environment sets
``MAAS_WARM_IMPORTS=0``, see jobs/submit.py) never host a replica: Ray Train
and Ray Data start about ten of them per run, and on a small machine their
imports would take CPU from the replicas answering beside them.
"""

from __future__ import annotations

import importlib
import os
import threading

# Never a module that applies ``@serve.deployment`` when imported (serving/deployment.py,
# serving/shared.py, gateway/): Serve builds a deployment's config with a process-wide
# cloudpickle registration it undoes after, so two threads doing it at once (this one,
# and the replica's own start unpickling its class) fail the replica: "is not
# registered for pickle by value". These take what serving/deployment.py imports.
MODULES = (
    "mlflow.pyfunc",
    "ray.serve",
    "maas_ray.registry",
    "maas_ray.security.auth",
    "maas_ray.monitoring.log",
    "maas_ray.serving.runtime",
    "maas_ray.serving.split",
)
SWITCH = "MAAS_WARM_IMPORTS"  # "0" in a job's runtime environment (jobs/submit.py)


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing extra must not kill a worker
            continue


if os.environ.get(SWITCH, "1") != "0":
    threading.Thread(target=_import_all, name="maas-warm-imports", daemon=True).start()
