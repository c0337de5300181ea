"""The feedback and monitoring routes' work, done by the management application.

The routes live under a model's prefix, so a model's replica (or the gateway, for
a shared or undeployed model) receives them, checks the caller's scopes, and
hands them here through a Serve handle: reading and joining the log is the
management application's work, never a serving replica's.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import orjson
from pydantic import ValidationError

from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, MaasError, PlatformUnavailable
from maas_ray.monitoring import quality
from maas_ray.monitoring.models import (
    MAX_FEEDBACK,
    FeedbackAnswer,
    FeedbackItem,
    MonitoringReport,
)
from maas_ray.monitoring.records import table
from maas_ray.monitoring.store import LABELS_STREAM, MonitorStore
from maas_ray.registry import Registry
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)
UNKNOWN_SHOWN = 20
MAX_WINDOW_S = 365 * 24 * 3600.0


class Monitor:
    """Feedback in, figures out, for every model of one platform."""

    def __init__(self, registry: Registry, tracking_uri: str) -> None:
        self.registry = registry
        self.tracking_uri = tracking_uri
        self._store: MonitorStore | None = None

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
            return 200, self.report(model, window(query)).model_dump()
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

    def report(self, model: str, window_s: float) -> MonitoringReport:
        """Every version and arm of ``model``, the same window for all."""
        now = time.time()
        since = now - window_s
        streams = self.store.streams(model)
        label_runs = {LABELS_STREAM: streams.get(LABELS_STREAM, [])}
        labels = quality.latest_labels(self.store.read(model, "labels", label_runs)[LABELS_STREAM])
        versioned = {k: v for k, v in streams.items() if k.startswith("version:")}
        predictions = self.store.read(model, "predictions", versioned)
        ops = self.store.read(model, "ops", versioned)
        out = []
        for stream in sorted(versioned, key=_version_order, reverse=True):
            version = stream.removeprefix("version:")
            out.extend(
                quality.report(
                    version,
                    predictions.get(stream, table("predictions", [])),
                    ops.get(stream, table("ops", [])),
                    labels,
                    since,
                )
            )
        return MonitoringReport(
            model=model, window_s=window_s, since=since, generated_at=now, versions=out
        )


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
