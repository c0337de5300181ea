"""A replica's prediction log: sampled, buffered, written off the request path.

``record`` is called once per predict answer and only appends to memory: every
answer is counted (requests, errors, a bounded sample of latencies), and the
sampled ones are kept whole. Every ``MAAS_MONITOR_FLUSH_S`` a task of the
replica hands the buffer to a thread that masks the inputs and writes them as
sealed Parquet files (``store.py``). If the write fails (MLflow down), the
records stay buffered and the next interval tries again; past
``MAAS_MONITOR_BUFFER`` records the oldest are dropped and counted. A replica
that dies loses what it had not written: at most one interval, at most the
buffer.

Sampling goes by a hash of the request id, so a primary and its shadow log the
same requests when their shares are equal.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from maas_ray.security.log_masking import mask_fields_in_text, mask_value
from maas_ray.security.masking import mask_text
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)
CLOSE_S = 5.0  # how long a stopping replica waits for its buffer to be written
MAX_INPUT_CHARS = 64 * 1024  # longer inputs are cut (the log is for looking, not replay)
LATENCIES_KEPT = 256  # latency sample per version, arm and interval


def sampled(request_id: str, percent: float) -> bool:
    """Whether ``request_id`` falls in a ``percent`` sample (same answer everywhere)."""
    if percent >= 100:
        return True
    return zlib.crc32(request_id.encode()) % 10_000 < percent * 100


@dataclass
class _Counts:
    requests: int = 0
    errors: int = 0
    seen: int = 0  # latencies offered to the reservoir
    latencies: list[float] = field(default_factory=list)
    batches: int = 0  # model calls of a batching replica
    batched: int = 0  # requests in them

    def add(self, status: int, latency_ms: float) -> None:
        self.requests += 1
        self.errors += status >= 400
        self.seen += 1
        if len(self.latencies) < LATENCIES_KEPT:
            self.latencies.append(latency_ms)
        else:  # reservoir sampling: every answer equally likely to be kept
            slot = random.randrange(self.seen)
            if slot < LATENCIES_KEPT:
                self.latencies[slot] = latency_ms


Raw = tuple[str, float, str, str, int, float, str | None, bytes, bytes]
"""(request id, time, version, arm, status, latency ms, content type, body, answer)."""


class PredictionLog:
    """What one replica answered, on its way to the monitoring store."""

    def __init__(
        self,
        model: str,
        tracking_uri: str,
        *,
        percent: float | None = None,
        mask_fields: list[str] | None = None,
        settings: Settings | None = None,
    ) -> None:
        """A log for ``model``.

        Args:
            model: the registered model.
            tracking_uri: the MLflow server that stores the files.
            percent: the spec's share of predictions logged (None: the setting, or
                100 while challenged, see ``challenged``).
            mask_fields: input fields whose values are masked (besides personal data).
            settings: the platform's settings.
        """
        settings = settings or Settings()
        self.model = model
        self.tracking_uri = tracking_uri
        self.spec_percent = percent
        self.default_percent = settings.monitor_percent
        self.percent = self.default_percent if percent is None else percent
        self.mask_fields = list(mask_fields or [])
        self.flush_s = settings.monitor_flush_s
        self.max_buffer = settings.monitor_buffer
        self.settings = settings
        self.dropped = 0
        self.written = 0
        self._records: list[Raw] = []
        self._counts: dict[tuple[str, str], _Counts] = {}
        self._task: asyncio.Task[None] | None = None
        self._store: Any = None  # MonitorStore, made in the writer thread
        self._failing = False

    def challenged(self, yes: bool) -> None:
        """A canary or shadow started (100% logged) or ended (the default share)."""
        if self.spec_percent is None:
            self.percent = 100.0 if yes else self.default_percent

    def batch(self, version: str, arm: str, size: int) -> None:
        """Count one model call of ``size`` joined requests (a batching replica)."""
        counts = self._counts.get((version, arm))
        if counts is None:
            counts = self._counts[(version, arm)] = _Counts()
        counts.batches += 1
        counts.batched += size

    def record(
        self,
        request_id: str,
        version: str,
        arm: str,
        status: int,
        latency_s: float,
        body: bytes,
        content_type: str | None,
        answer: bytes,
    ) -> None:
        """Count one predict answer, and keep it whole if it is in the sample."""
        latency_ms = latency_s * 1000.0
        counts = self._counts.get((version, arm))
        if counts is None:
            counts = self._counts[(version, arm)] = _Counts()
        counts.add(status, latency_ms)
        if sampled(request_id, self.percent):
            self._records.append(
                (
                    request_id,
                    time.time(),
                    version,
                    arm,
                    status,
                    latency_ms,
                    content_type,
                    body,
                    answer,
                )
            )
            if len(self._records) > self.max_buffer:
                del self._records[0]
                self.dropped += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._records or self._counts:
            await asyncio.sleep(self.flush_s)
            records, self._records = self._records, []
            counts, self._counts = self._counts, {}
            try:
                await loop.run_in_executor(None, self._write, records, counts)
            except Exception as exc:
                if isinstance(exc, RuntimeError) and "after shutdown" in str(exc):
                    # The replica is stopping (its executor is gone): nothing more to do.
                    logger.info("replica stopping: %d log records not written", len(records))
                    return
                if not self._failing:
                    logger.warning(
                        "monitoring store unreachable; %d records kept for the next try",
                        len(records),
                        exc_info=True,
                    )
                self._failing = True
                self._requeue(records, counts)
            else:
                if self._failing:
                    logger.info("monitoring store reachable again")
                self._failing = False

    def _requeue(self, records: list[Raw], counts: dict[tuple[str, str], _Counts]) -> None:
        """Put back what a failed write held, ahead of what came since (bounded)."""
        merged = records + self._records
        excess = len(merged) - self.max_buffer
        if excess > 0:
            self.dropped += excess
            merged = merged[excess:]
        self._records = merged
        for key, old in counts.items():
            new = self._counts.get(key)
            if new is None:
                self._counts[key] = old
            else:
                new.requests += old.requests
                new.errors += old.errors
                new.latencies = (new.latencies + old.latencies)[:LATENCIES_KEPT]
                new.batches += old.batches
                new.batched += old.batched

    async def flush(self) -> None:
        """Write what is buffered now (tests, and a replica shutting down)."""
        records, self._records = self._records, []
        counts, self._counts = self._counts, {}
        if records or counts:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._write, records, counts)
            except Exception:
                self._requeue(records, counts)
                raise

    def close(self, timeout_s: float = CLOSE_S) -> None:
        """Write what is buffered, waiting at most ``timeout_s`` (a replica stopping:
        Serve then ends the process, so the write runs in a thread of its own and what
        it has not written in time is lost and said so)."""
        records, self._records = self._records, []
        counts, self._counts = self._counts, {}
        if not records and not counts:
            return
        n = len(records)

        def write() -> None:
            try:
                self._write(records, counts)
            except Exception:
                logger.warning("replica stopping: %d log records not written", n, exc_info=True)

        writer = threading.Thread(target=write, name="maas-log-close", daemon=True)
        writer.start()
        writer.join(timeout_s)
        if writer.is_alive():
            logger.warning("replica stopping: %d log records not written in %gs", n, timeout_s)

    # -- the writer thread ----------------------------------------------------------
    def _write(self, records: list[Raw], counts: dict[tuple[str, str], _Counts]) -> None:
        from maas_ray.monitoring.records import table
        from maas_ray.monitoring.store import MonitorStore, version_stream

        if self._store is None:
            self._store = MonitorStore(self.tracking_uri, self.settings)
        now = time.time()
        by_version: dict[str, list[dict[str, Any]]] = {}
        for rid, at, version, arm, status, latency_ms, ctype, body, answer in records:
            by_version.setdefault(version, []).append(
                {
                    "request_id": rid,
                    "time": at,
                    "version": version,
                    "arm": arm,
                    "status": status,
                    "latency_ms": latency_ms,
                    "content_type": ctype,
                    "inputs": self._masked(body),
                    "outputs": mask_text(answer.decode("utf-8", "replace")),
                }
            )
        ops: dict[str, list[dict[str, Any]]] = {}
        for (version, arm), c in counts.items():
            ops.setdefault(version, []).append(
                {
                    "time": now,
                    "version": version,
                    "arm": arm,
                    "requests": c.requests,
                    "errors": c.errors,
                    "latency_ms": c.latencies,
                    "batches": c.batches,
                    "batched": c.batched,
                }
            )
        # ops first: a retry after a failed predictions write may count twice, never lose.
        for version, rows in ops.items():
            self._store.write(self.model, version_stream(version), "ops", table("ops", rows))
        counts.clear()
        for version, rows in by_version.items():
            self._store.write(
                self.model, version_stream(version), "predictions", table("predictions", rows)
            )
            self.written += len(rows)
        records.clear()

    def _masked(self, body: bytes) -> str:
        """The request body as text, personal data and the spec's fields masked."""
        text = body[: MAX_INPUT_CHARS * 4].decode("utf-8", "replace")[:MAX_INPUT_CHARS]
        parsed: Any = None
        if text[:1] in "{[" and len(text) < MAX_INPUT_CHARS:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
        if parsed is not None:
            text = orjson.dumps(mask_value(parsed, self.mask_fields)).decode()
        if self.mask_fields:
            return mask_fields_in_text(text, parsed, self.mask_fields)
        return mask_text(text)
