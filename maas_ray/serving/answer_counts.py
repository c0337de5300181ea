"""How many answers a replica gave, by model version and HTTP status: the
``maas_requests`` counter Serve exports with its metrics (Prometheus).

Counted in memory and handed to the metric once a second: one metrics call per request
cost ~30% of throughput; one per second and (version, status) costs nothing measurable.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from ray.serve import metrics

EVERY_S = 1.0


class AnswerCounts:
    """The answers of one replica of ``model``, flushed every ``EVERY_S`` while any come."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._metric = metrics.Counter(
            "maas_requests",
            description="Requests answered by a model version, by HTTP status.",
            # Ray annotates tag_keys as Tuple[str] (one element); any length works.
            tag_keys=("model", "version", "status"),  # type: ignore[arg-type]
        )
        self._counts: Counter[tuple[str, str]] = Counter()  # (version, status) since flush
        self._task: asyncio.Task[None] | None = None

    def add(self, version: str, status: int) -> None:
        """Count one answer (on the replica's event loop)."""
        self._counts[(version, str(status))] += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._counts:
            await asyncio.sleep(EVERY_S)
            counts, self._counts = self._counts, Counter()
            for (version, status), n in counts.items():
                tags = {"model": self.model, "version": version, "status": status}
                self._metric.inc(n, tags=tags)
