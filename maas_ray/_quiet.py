"""Imported first by ``maas_ray``: MLflow's usage telemetry off unless the user set it.

MLflow 3 fetches its telemetry configuration from the internet in a thread at import;
where that fails (this platform runs on loopback and private networks) the thread
unsets an environment variable, and a request iterating ``os.environ`` at that moment
(``requests`` reads proxy variables) failed with ``KeyError`` (seen registering a model).
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
