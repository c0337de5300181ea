"""What every benchmark shares: its own short-lived platform, a progress display, percentiles."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from maas_ray import Settings
from maas_ray.control import platform


def bench_settings(name: str, offset: int, **extra: object) -> Settings:
    """Settings of a temporary platform on ports apart from the defaults and the tests.

    ``offset`` keeps two benchmarks apart; Ray's workers get 30000-31999.
    """
    ports = {
        "mlflow_port": 25700 + offset,
        "serve_port": 28700 + offset,
        "grpc_port": 28780 + offset,  # serving.py's baselines take serve_port + 50, + 51
        "dashboard_port": 28900 + offset,
        "ray_port": 26900 + offset,
        "ray_client_port": 21700 + offset,
        "ray_agent_port": 24400 + offset,
        "ray_agent_grpc_port": 24401 + offset,  # offsets are multiples of 100
        "ray_runtime_env_port": 24402 + offset,
        "ray_metrics_port": 24403 + offset,
        "ray_node_manager_port": 24404 + offset,
        "ray_object_manager_port": 24405 + offset,
    }
    return Settings(
        home=Path(tempfile.mkdtemp(prefix=f"maas-bench-{name}-")),
        ray_num_cpus=4,
        ray_worker_ports="30000-31999",
        ingress_http_ports="32000-32499",
        ingress_grpc_ports="32500-32999",
        ingress_fallback_port=22600 + offset,
        ingress_metrics_port=20600 + offset,
        ingress_stats_port=21100 + offset,
        **ports,
        **extra,  # type: ignore[arg-type]
    )


def authorization(settings: Settings) -> str:
    """The Authorization header value with the platform's admin key."""
    return f"Bearer {settings.admin_key_file.read_text().strip()}"


@contextmanager
def running(settings: Settings, console: Console) -> Iterator[Progress]:
    """Start the platform, yield a progress display, stop the platform by process id."""
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("starting the platform", total=None)
            platform.up(settings, lambda t: bar.update(task, description=f"platform: {t}"))
            bar.update(task, total=1, completed=1, description="platform up")
            yield bar
    finally:
        platform.down(settings)


def percentiles_ms(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds of durations in seconds."""
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.95))]
