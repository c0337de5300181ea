"""The feedback and monitoring routes' work, done by the management application.

The routes live under a model's prefix, so a model's replica (or the gateway, for
a shared or undeployed model) receives them, checks the caller's scopes, and
hands them here through a Serve handle: reading and joining the log is the
management application's work, never a serving replica's.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, MaasError, PlatformUnavailable
from maas_ray.monitoring import drift, quality
from maas_ray.monitoring.models import (
    MAX_FEEDBACK,
    Drift,
    FeedbackAnswer,
    FeedbackItem,
    Figures,
    MonitoringReport,
)
from maas_ray.monitoring.records import table
from maas_ray.monitoring.store import (
    EXPERIMENT_PREFIX,
    LABELS_STREAM,
    MonitorStore,
    version_stream,
)
from maas_ray.registry import Registry
from maas_ray.settings import Settings
from maas_ray.spec import DriftCheck, QualityCheck

logger = logging.getLogger(__name__)
UNKNOWN_SHOWN = 20
MAX_WINDOW_S = 365 * 24 * 3600.0
MAX_BUCKETS = 500
QUALITY_TTL_S = 5.0
REFERENCE_BLOB = "reference.json"
DRIFT_MAX_REQUESTS = 2000  # logged requests of the window parsed to judge drift


class Monitor:
    """Feedback in, figures out, for every model of one platform."""

    current: Monitor | None = None  # the management replica's, for maas status's rows

    def __init__(self, registry: Registry, tracking_uri: str) -> None:
        self.registry = registry
        self.tracking_uri = tracking_uri
        self._store: MonitorStore | None = None
        self._metrics: threading.Thread | None = None
        self._reports: dict[str, tuple[float, MonitoringReport]] = {}
        self._prom: dict[str, Any] | None = None  # Prometheus gauges, made in the replica
        Monitor.current = self

    @property
    def store(self) -> MonitorStore:
        if self._store is None:
            self._store = MonitorStore(self.tracking_uri)
        return self._store

    def handle(
        self, route: str, model: str, body: bytes, query: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """Answer ``route`` (feedback or monitoring) for ``model``; raises MaasError."""
        self.registry.get_model(model)  # 404 for a model never registered
        try:
            if route == "feedback":
                return 202, self.feedback(model, parse_feedback(body)).model_dump()
            return 200, self.report(model, window(query), buckets(query)).model_dump()
        except MaasError:
            raise
        except Exception as exc:
            logger.warning("monitoring store failed for %s", model, exc_info=True)
            raise PlatformUnavailable(
                f"the monitoring store (MLflow at {self.tracking_uri}) did not answer: "
                f"{type(exc).__name__}; retry shortly"
            ) from exc

    def feedback(self, model: str, items: list[FeedbackItem]) -> FeedbackAnswer:
        """Store the labels; count those whose request id is in the log."""
        known: set[str] = set()
        for predictions in self.store.read(model, "predictions").values():
            known.update(predictions.column("request_id").to_pylist())
        now = time.time()
        rows = [
            {"request_id": i.request_id, "time": now, "label": orjson.dumps(i.label).decode()}
            for i in items
        ]
        self.store.write(model, LABELS_STREAM, "labels", table("labels", rows))
        unknown = sorted({i.request_id for i in items} - known)
        return FeedbackAnswer(
            model=model,
            accepted=sum(i.request_id in known for i in items),
            unknown_request_id=sum(i.request_id not in known for i in items),
            unknown=unknown[:UNKNOWN_SHOWN],
        )

    def report(self, model: str, window_s: float, buckets: int = 0) -> MonitoringReport:
        """Every version and arm of ``model``, the same window for all (in ``buckets``)."""
        now = time.time()
        since = now - window_s
        streams = self.store.streams(model)
        label_runs = {LABELS_STREAM: streams.get(LABELS_STREAM, [])}
        labels = quality.latest_labels(self.store.read(model, "labels", label_runs)[LABELS_STREAM])
        versioned = {k: v for k, v in streams.items() if k.startswith("version:")}
        predictions = self.store.read(model, "predictions", versioned)
        ops = self.store.read(model, "ops", versioned)
        check = self._drift_check(model)
        out = []
        for stream in sorted(versioned, key=_version_order, reverse=True):
            version = stream.removeprefix("version:")
            logged = predictions.get(stream, table("predictions", []))
            entries = quality.report(
                version, logged, ops.get(stream, table("ops", [])), labels, since, buckets, now
            )
            ref = self._reference(model, stream, versioned[stream], logged)
            for entry in entries:
                entry.drift = _drift(ref, logged, entry.arm, since, check)
            out.extend(entries)
        return MonitoringReport(
            model=model,
            window_s=window_s,
            since=since,
            bucket_s=window_s / buckets if buckets else None,
            generated_at=now,
            versions=out,
        )

    def _drift_check(self, model: str) -> DriftCheck:
        spec = self.registry.get_spec(model) or {}
        return DriftCheck.model_validate(spec.get("drift") or {})

    def _reference(
        self, model: str, stream: str, run_ids: list[str], logged: pa.Table
    ) -> dict[str, Any] | None:
        """The version's reference statistics: stored, else built from its first logged
        inputs once there are ``REFERENCE_ROWS`` rows of them (None until then)."""
        stored = self.store.read_blob(run_ids, REFERENCE_BLOB)
        if stored is not None:
            ref: dict[str, Any] = orjson.loads(stored)
            return ref
        ok = logged.filter(pc.equal(logged.column("status"), 200))
        ok = ok.take(pc.sort_indices(ok, sort_keys=[("time", "ascending")]))
        frames, rows, until = [], 0, 0.0
        for text, ctype, at in zip(
            ok.column("inputs").to_pylist(),
            ok.column("content_type").to_pylist(),
            ok.column("time").to_pylist(),
            strict=True,
        ):
            frame = drift.frame_of([text], [ctype])
            if frame.empty:
                continue
            frames.append(frame)
            rows, until = rows + len(frame), at
            if rows >= drift.REFERENCE_ROWS:
                break
        if rows < drift.REFERENCE_ROWS:
            return None
        ref = drift.reference(pd.concat(frames, ignore_index=True))
        ref["until"] = until
        self.store.write_blob(model, stream, REFERENCE_BLOB, orjson.dumps(ref))
        return ref

    # -- maas status's quality column ----------------------------------------------------
    def quality(self, model: str, version: str | None, check: QualityCheck | None) -> str:
        """The status cell of ``model``'s serving ``version`` (reports kept QUALITY_TTL_S)."""
        if version is None:
            return "-"
        now = time.monotonic()
        cached = self._reports.get(model)
        if cached is None or now - cached[0] > QUALITY_TTL_S:
            cached = (now, self.report(model, Settings().monitor_window_s))
            self._reports[model] = cached
        for entry in cached[1].versions:
            if (entry.version, entry.arm) == (version, "production"):
                cell = quality.verdict(check, entry.window)
                if entry.drift is not None and entry.drift.status == "drifting":
                    if not cell.startswith("degraded"):
                        names = ", ".join(f.feature for f in entry.drift.features if f.drifted)
                        cell = f"drifting ({names[:60]})" + ("" if cell == "-" else f"; {cell}")
                return cell
        return quality.verdict(check, quality.EMPTY) if check is not None else "-"

    # -- MLflow metrics ------------------------------------------------------------------
    def start_metrics(self, every_s: float) -> None:
        """Log every version's figures as MLflow metrics every ``every_s``, in a thread."""
        if self._metrics is None:
            self._metrics = threading.Thread(
                target=self._metrics_loop,
                args=(every_s,),
                name="maas-monitor-metrics",
                daemon=True,
            )
            self._metrics.start()

    def _metrics_loop(self, every_s: float) -> None:
        while True:
            time.sleep(every_s - time.time() % every_s)  # on the interval's boundary
            try:
                self.log_metrics(every_s)
            except Exception:
                logger.warning("could not log monitoring metrics", exc_info=True)

    def log_metrics(self, every_s: float, now: float | None = None) -> int:
        """Each version's last interval (traffic, latency) and window (quality) as metrics.

        Keys are ``ARM/NAME`` (``production/f1``, ``canary/p95_ms``) of the version's
        monitoring run, at step ``floor(now / every_s)``; returns how many were logged.
        """
        from mlflow.entities import Metric

        now = time.time() if now is None else now
        step = int(now // every_s)
        logged = 0
        for model in self.models():
            report = self.report(model, Settings().monitor_window_s)
            streams = self.store.streams(model)
            last = self._recent(model, streams, now - every_s)
            for entry in report.versions:
                run_ids = streams.get(version_stream(entry.version))
                if not run_ids:
                    continue
                recent = last.get((entry.version, entry.arm))
                values = _metric_values(entry.window, recent, every_s, entry.drift)
                if not values:
                    continue
                self._gauges(model, entry, values)
                stamp = int(now * 1000)
                metrics = [Metric(f"{entry.arm}/{k}", v, stamp, step) for k, v in values.items()]
                self.store.client.log_batch(run_ids[0], metrics=metrics)
                logged += len(metrics)
        return logged

    def _gauges(self, model: str, entry: Any, values: dict[str, float]) -> None:
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
        check = self._quality_check(model)
        degraded = check is not None and quality.verdict(check, entry.window).startswith("degraded")
        self._prom["alert"].set(float(degraded), tags={**tags, "kind": "degraded"})

    def _quality_check(self, model: str) -> QualityCheck | None:
        spec = self.registry.get_spec(model) or {}
        check = spec.get("quality")
        return None if check is None else QualityCheck.model_validate(check)

    def models(self) -> list[str]:
        """Every model with a monitoring experiment."""
        found = self.store.client.search_experiments(
            filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'", max_results=1000
        )
        return [e.name.removeprefix(EXPERIMENT_PREFIX) for e in found]

    def _recent(
        self, model: str, streams: dict[str, list[str]], since: float
    ) -> dict[tuple[str, str], Figures]:
        """(version, arm) -> figures of answers since ``since`` (the last interval)."""
        versioned = {k: v for k, v in streams.items() if k.startswith("version:")}
        ops = self.store.read(model, "ops", versioned)
        out: dict[tuple[str, str], Figures] = {}
        for stream, data in ops.items():
            version = stream.removeprefix("version:")
            for entry in quality.report(version, table("predictions", []), data, {}, since):
                out[(version, entry.arm)] = entry.window
        return out


def _drift(
    ref: dict[str, Any] | None, logged: pa.Table, arm: str, since: float, check: DriftCheck
) -> Drift:
    """One arm's inputs in the window (after the reference's) against the reference."""
    if ref is None:
        return Drift(status="no reference")
    times = logged.column("time")
    mask = pc.and_(
        pc.and_(pc.equal(logged.column("arm"), arm), pc.equal(logged.column("status"), 200)),
        pc.and_(pc.greater_equal(times, since), pc.greater(times, ref.get("until", 0.0))),
    )
    live = logged.filter(mask)
    if live.num_rows > DRIFT_MAX_REQUESTS:  # the newest are enough to judge, and bounded
        order = pc.sort_indices(live, sort_keys=[("time", "descending")])
        live = live.take(order[:DRIFT_MAX_REQUESTS])
    frame = drift.frame_of(
        live.column("inputs").to_pylist(), live.column("content_type").to_pylist()
    )
    return drift.compare(ref, frame, check.psi_max, check.min_rows)


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


def _version_order(stream: str) -> int:
    tail = stream.removeprefix("version:")
    return int(tail) if tail.isdigit() else -1


def window(query: dict[str, str]) -> float:
    """``?window_s=`` (seconds, > 0), else the setting."""
    raw = query.get("window_s")
    if raw is None:
        return Settings().monitor_window_s
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"window_s: got '{raw[:40]}', not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_WINDOW_S:
        raise InvalidInput(f"window_s: got {raw[:40]}, use more than 0 and at most a year")
    return value


def buckets(query: dict[str, str]) -> int:
    """``?buckets=`` (0-500): the window as that many points; 0, no series."""
    raw = query.get("buckets", "0")
    if not raw.isdigit() or int(raw) > MAX_BUCKETS:
        raise InvalidInput(f"buckets: got '{raw[:40]}', use a whole number 0-{MAX_BUCKETS}")
    return int(raw)


def parse_feedback(body: bytes) -> list[FeedbackItem]:
    """A feedback body (one label or a list) as items; a 4xx for anything else."""
    if not body:
        raise BadRequest('send {"request_id": "...", "label": ...} or a JSON list of them')
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"malformed JSON: {exc}") from exc
    raw = data if isinstance(data, list) else [data]
    if not raw:
        raise BadRequest("got an empty list: send at least one label")
    if len(raw) > MAX_FEEDBACK:
        raise BadRequest(f"got {len(raw)} labels: send at most {MAX_FEEDBACK} per request")
    items = []
    for index, entry in enumerate(raw):
        where = f"[{index}]" if isinstance(data, list) else "body"
        if not isinstance(entry, dict):
            raise InvalidInput(f"{where}: got a JSON {type(entry).__name__}, not an object")
        try:
            items.append(FeedbackItem.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"][:1]) or "body"
            raise InvalidInput(f"{where}.{field}: {first['msg']}") from exc
    return items
