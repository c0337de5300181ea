"""The feedback and monitoring routes' work, done by the management application.

The routes live under a model's prefix, so a model's replica (or the gateway, for
a shared or undeployed model) receives them, checks the caller's scopes, and
hands them here through a Serve handle: reading and joining the log is the
management application's work, never a serving replica's.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from maas_ray.errors import (
    BadRequest,
    InvalidInput,
    InvalidJSON,
    MaasError,
    PlatformUnavailable,
    first_error,
)
from maas_ray.monitoring import drift, quality
from maas_ray.monitoring.models import (
    MAX_FEEDBACK,
    Drift,
    FeedbackAnswer,
    FeedbackItem,
    MonitoringReport,
)
from maas_ray.monitoring.records import table
from maas_ray.monitoring.retrain import Retrainer
from maas_ray.monitoring.store import (
    LABELS_STREAM,
    MonitorStore,
)
from maas_ray.registry import Registry
from maas_ray.settings import Settings
from maas_ray.spec import DriftCheck, QualityCheck
from maas_ray.training.result import RUN_ID_TAG

logger = logging.getLogger(__name__)
UNKNOWN_SHOWN = 20
MAX_WINDOW_S = 365 * 24 * 3600.0
MAX_BUCKETS = 500
QUALITY_TTL_S = 5.0
REFERENCE_BLOB = "reference.json"
DRIFT_MAX_REQUESTS = 2000
TRAINING_ROWS = 10_000  # a training set larger than this is sampled for the reference


class Monitor:
    """Feedback in, figures out, for every model of one platform."""

    current: Monitor | None = None  # the management replica's, for maas status's rows

    def __init__(self, registry: Registry, tracking_uri: str) -> None:
        self.registry = registry
        self.tracking_uri = tracking_uri
        self._store: MonitorStore | None = None
        self._publisher: Any = None  # publish.Publisher, once started
        self._reports: dict[str, tuple[float, MonitoringReport]] = {}
        self._signatures: dict[tuple[str, str], list[str]] = {}
        self.retrainer = Retrainer(self)
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
        if self._publisher is not None:
            self._publisher.soon(model)  # quality changed: into MLflow and the gauges now
        unknown = sorted({i.request_id for i in items} - known)
        return FeedbackAnswer(
            model=model,
            accepted=sum(i.request_id in known for i in items),
            unknown_request_id=sum(i.request_id not in known for i in items),
            unknown=unknown[:UNKNOWN_SHOWN],
        )

    def report(
        self,
        model: str,
        window_s: float,
        buckets: int = 0,
        spec: dict[str, Any] | None = None,
    ) -> MonitoringReport:
        """Every version and arm of ``model``, the same window for all (in ``buckets``);
        ``spec``: the model's stored deployment spec, if the caller has it already."""
        now = time.time()
        since = now - window_s
        streams = self.store.streams(model)
        label_runs = {LABELS_STREAM: streams.get(LABELS_STREAM, [])}
        labels = quality.latest_labels(self.store.read(model, "labels", label_runs)[LABELS_STREAM])
        versioned = {k: v for k, v in streams.items() if k.startswith("version:")}
        predictions = self.store.read(model, "predictions", versioned)
        ops = self.store.read(model, "ops", versioned)
        stored = spec if spec is not None else self.registry.get_spec(model) or {}
        check = DriftCheck.model_validate(stored.get("drift") or {})
        out = []
        for stream in sorted(versioned, key=_version_order, reverse=True):
            version = stream.removeprefix("version:")
            logged = predictions.get(stream, table("predictions", []))
            entries = quality.report(
                version, logged, ops.get(stream, table("ops", [])), labels, since, buckets, now
            )
            ref = self._reference(model, stream, versioned[stream], logged)
            names = self._names(model, version)
            for entry in entries:
                entry.drift = _drift(ref, logged, entry.arm, since, check, names)
            out.extend(entries)
        return MonitoringReport(
            model=model,
            window_s=window_s,
            since=since,
            bucket_s=window_s / buckets if buckets else None,
            generated_at=now,
            versions=out,
        )

    def _reference(
        self, model: str, stream: str, run_ids: list[str], logged: pa.Table
    ) -> dict[str, Any] | None:
        """The version's reference statistics: stored, else built (and stored) from the
        data the platform trained it on, else from its first logged inputs once there
        are ``REFERENCE_ROWS`` rows of them (None until then)."""
        stored = self.store.read_blob(run_ids, REFERENCE_BLOB)
        if stored is not None:
            ref: dict[str, Any] = orjson.loads(stored)
            return ref
        version = stream.removeprefix("version:")
        trained = self._training_frame(model, version)
        if trained is not None:
            ref = drift.reference(trained)
            ref["until"] = 0.0
            ref["source"] = "training data"
            self.store.write_blob(model, stream, REFERENCE_BLOB, orjson.dumps(ref))
            return ref
        names = self._names(model, version)
        ok = logged.filter(pc.equal(logged.column("status"), 200))
        ok = ok.take(pc.sort_indices(ok, sort_keys=[("time", "ascending")]))
        frames, rows, until = [], 0, 0.0
        for text, ctype, at in zip(
            ok.column("inputs").to_pylist(),
            ok.column("content_type").to_pylist(),
            ok.column("time").to_pylist(),
            strict=True,
        ):
            frame = drift.named(drift.frame_of([text], [ctype]), names)
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
        ref["source"] = "first logged inputs"
        self.store.write_blob(model, stream, REFERENCE_BLOB, orjson.dumps(ref))
        return ref

    def _names(self, model: str, version: str) -> list[str]:
        """The version's signature's input names (cached: versions never change)."""
        if (model, version) not in self._signatures:
            info = self.registry.get_version(model, version)
            self._signatures[(model, version)] = drift.input_names(info.signature)
        return self._signatures[(model, version)]

    def _training_frame(self, model: str, version: str) -> pd.DataFrame | None:
        """The features the platform trained ``version`` on (None: not trained here)."""
        from maas_ray.training.data import parse

        run_id = self.registry.get_version(model, version).tags.get(RUN_ID_TAG)
        if not run_id:
            return None
        client = self.store.client
        label = client.get_run(run_id).data.params.get("label")
        staged = [f for f in client.list_artifacts(run_id, "input") if "/data." in f.path]
        if not staged:
            return None
        with tempfile.TemporaryDirectory(prefix="maas-monitor-") as tmp:
            local = Path(client.download_artifacts(run_id, staged[0].path, tmp))
            frame = parse(local.read_bytes(), local.suffix.lower(), staged[0].path)
        frame = frame.drop(columns=[label], errors="ignore") if label else frame
        if len(frame) > TRAINING_ROWS:
            frame = frame.sample(TRAINING_ROWS, random_state=0)
        return frame

    def start_metrics(self, every_s: float) -> None:
        """Publish every version's figures every ``every_s`` (``publish.py``), in a thread."""
        from maas_ray.monitoring.publish import Publisher

        if self._publisher is None:
            publisher = Publisher(self)
            publisher.start(every_s)
            self._publisher = publisher
            self.retrainer.watch = publisher.watch

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


def _drift(
    ref: dict[str, Any] | None,
    logged: pa.Table,
    arm: str,
    since: float,
    check: DriftCheck,
    names: list[str],
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
    return drift.compare(ref, drift.named(frame, names), check.psi_max, check.min_rows)


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
            field, text = first_error(exc, depth=1)
            raise InvalidInput(f"{where}.{field}: {text}") from exc
    return items
