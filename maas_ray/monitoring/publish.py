"""Each serving version's figures, published: MLflow metrics and Prometheus gauges.

Every ``MAAS_MONITOR_METRICS_S`` a thread of the management application computes
every monitored model's figures and logs them as metrics of each version's
monitoring run (``ARM/NAME``: the last interval's traffic and latency, the
window's quality and each feature's PSI), at step ``floor(time / interval)``, so
the MLflow UI charts them; and sets the ``maas_quality``, ``maas_drift_psi`` and
``maas_alert`` gauges that ``GET /metrics`` exports.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from maas_ray.monitoring import quality
from maas_ray.monitoring.models import Drift, Figures
from maas_ray.monitoring.records import table
from maas_ray.monitoring.store import version_stream
from maas_ray.settings import Settings
from maas_ray.spec import QualityCheck

if TYPE_CHECKING:
    from maas_ray.monitoring.api import Monitor

logger = logging.getLogger(__name__)
WATCH_S = 3.0  # how often a running retrain job is looked at


class Publisher:
    """The management replica's publishing thread and its gauges."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self._thread: threading.Thread | None = None
        self._prom: dict[str, Any] | None = None  # Prometheus gauges, made in the replica
        self.every_s = Settings().monitor_metrics_s
        self._pending: set[str] = set()  # models to publish before the next interval
        self._watched: set[str] = set()  # models whose retrain job runs: polled
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def start(self, every_s: float) -> None:
        """Publish every served model's figures every ``every_s``, in a thread."""
        self.every_s = every_s
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="maas-monitor-metrics", daemon=True
            )
            self._thread.start()

    def soon(self, model: str) -> None:
        """Publish ``model`` now, not at the next interval (its labels just changed)."""
        with self._lock:
            self._pending.add(model)
        self._wake.set()

    def watch(self, model: str) -> None:
        """Look at ``model``'s retrain again in ``WATCH_S`` (its job runs)."""
        with self._lock:
            self._watched.add(model)

    def _loop(self) -> None:
        next_tick = _boundary(self.every_s)
        while True:
            wait_s = next_tick - time.time()
            if self._watched:
                wait_s = min(wait_s, WATCH_S)
            self._wake.wait(max(0.0, wait_s))
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, set()
                watched, self._watched = self._watched, set()
            try:
                for model in watched - pending:
                    self.monitor.retrainer.step(model, self.monitor.registry.get_spec(model))
            except Exception:
                logger.warning("could not move a retrain on", exc_info=True)
            try:
                if time.time() >= next_tick:
                    next_tick = _boundary(self.every_s)
                    self.log_metrics()
                elif pending:
                    specs = self.monitor.registry.list_specs()
                    for model in pending:
                        self.publish(model, specs.get(model))
            except Exception:
                logger.warning("could not publish monitoring figures", exc_info=True)

    def log_metrics(self, now: float | None = None) -> int:
        """Publish every model that has a deployment spec (is served); returns metrics."""
        return sum(
            self.publish(model, spec, now)
            for model, spec in self.monitor.registry.list_specs().items()
        )

    def publish(
        self, model: str, spec: dict[str, Any] | None = None, now: float | None = None
    ) -> int:
        """One model's last interval (traffic, latency) and window (quality, drift).

        As metrics ``ARM/NAME`` (``production/f1``, ``canary/p95_ms``) of each version's
        monitoring run at step ``floor(now / interval)``, and as the gauges; returns
        how many metrics were logged.
        """
        from mlflow.entities import Metric

        every_s = self.every_s
        now = time.time() if now is None else now
        streams = self.monitor.store.streams(model)
        if not streams:
            return 0  # never logged anything: nothing to publish
        report = self.monitor.report(model, Settings().monitor_window_s, spec=spec)
        try:
            self.monitor.retrainer.step(model, spec, report)
        except Exception:
            logger.warning("could not move %s's retrain on", model, exc_info=True)
        last = self._recent(model, streams, now - every_s)
        check = (spec or {}).get("quality")
        logged = 0
        for entry in report.versions:
            run_ids = streams.get(version_stream(entry.version))
            if not run_ids:
                continue
            values = _metric_values(
                entry.window, last.get((entry.version, entry.arm)), every_s, entry.drift
            )
            if not values:
                continue
            self._gauges(model, entry, values, None if check is None else QualityCheck(**check))
            stamp = int(now * 1000)
            step = int(now // every_s)
            metrics = [Metric(f"{entry.arm}/{k}", v, stamp, step) for k, v in values.items()]
            self.monitor.store.client.log_batch(run_ids[0], metrics=metrics)
            logged += len(metrics)
        return logged

    def _gauges(
        self, model: str, entry: Any, values: dict[str, float], check: QualityCheck | None
    ) -> None:
        """The same figures as Prometheus gauges (``GET /metrics``), in this replica."""
        if self._prom is None:
            from ray.serve import metrics

            keys = ("model", "version", "arm")
            self._prom = {
                "quality": metrics.Gauge(
                    "maas_quality",
                    description="A version's labelled quality over the monitoring window.",
                    tag_keys=(*keys, "metric"),  # type: ignore[arg-type]
                ),
                "psi": metrics.Gauge(
                    "maas_drift_psi",
                    description="PSI of a feature's live inputs against the reference.",
                    tag_keys=(*keys, "feature"),  # type: ignore[arg-type]
                ),
                "alert": metrics.Gauge(
                    "maas_alert",
                    description="1 while a version is degraded (quality check) or drifting.",
                    tag_keys=(*keys, "kind"),  # type: ignore[arg-type]
                ),
            }
        tags = {"model": model, "version": entry.version, "arm": entry.arm}
        for name in ("accuracy", "precision", "recall", "f1", "mae", "rmse"):
            if name in values:
                self._prom["quality"].set(values[name], tags={**tags, "metric": name})
        drifting = 0.0
        if entry.drift is not None:
            for f in entry.drift.features:
                self._prom["psi"].set(f.psi, tags={**tags, "feature": f.feature})
            drifting = float(entry.drift.status == "drifting")
        self._prom["alert"].set(drifting, tags={**tags, "kind": "drifting"})
        degraded = check is not None and quality.verdict(check, entry.window).startswith("degraded")
        self._prom["alert"].set(float(degraded), tags={**tags, "kind": "degraded"})

    def _recent(
        self, model: str, streams: dict[str, list[str]], since: float
    ) -> dict[tuple[str, str], Figures]:
        """(version, arm) -> figures of answers since ``since`` (the last interval)."""
        versioned = {k: v for k, v in streams.items() if k.startswith("version:")}
        ops = self.monitor.store.read(model, "ops", versioned)
        out: dict[tuple[str, str], Figures] = {}
        for stream, data in ops.items():
            version = stream.removeprefix("version:")
            for entry in quality.report(version, table("predictions", []), data, {}, since):
                out[(version, entry.arm)] = entry.window
        return out


def _boundary(every_s: float) -> float:
    """The next multiple of ``every_s`` in Unix time (intervals line up across restarts)."""
    now = time.time()
    return now - now % every_s + every_s


def _metric_values(
    window: Figures, recent: Figures | None, every_s: float, found: Drift | None = None
) -> dict[str, float]:
    """The metrics of one version and arm: the last interval's traffic, the window's quality."""
    values: dict[str, float | None] = {}
    if recent is not None and recent.requests:
        values.update(
            requests_per_s=recent.requests / every_s,
            error_rate=recent.error_rate,
            p50_ms=recent.p50_ms,
            p95_ms=recent.p95_ms,
            p99_ms=recent.p99_ms,
            batch_size=recent.batch_size,
        )
    if window.labelled:
        values.update(
            labelled=float(window.labelled),
            accuracy=window.accuracy,
            precision=window.precision,
            recall=window.recall,
            f1=window.f1,
            mae=window.mae,
            rmse=window.rmse,
        )
    if found is not None:
        for f in found.features:
            values[f"psi/{f.feature}"] = f.psi
    return {k: float(v) for k, v in values.items() if v is not None}
