"""A replica's answer counts reach the ``maas_requests`` metric once per interval, by
model, version and status, not once per request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maas_ray.serving import answer_counts
from maas_ray.serving.answer_counts import AnswerCounts


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, str]]] = []

    def inc(self, n: int, tags: dict[str, str]) -> None:
        self.calls.append((n, tags))


def test_answers_are_counted_together_and_handed_on_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(answer_counts, "EVERY_S", 0.05)
    counts = AnswerCounts("iris")
    metric = counts._metric = Recorded()  # type: ignore[assignment]

    async def go() -> list[Any]:
        for version, status in [("1", 200), ("1", 200), ("2", 503), ("1", 200)]:
            counts.add(version, status)
        assert metric.calls == []  # nothing per request
        await asyncio.sleep(0.2)
        first = list(metric.calls)
        counts.add("2", 200)  # a later answer starts the next flush
        await asyncio.sleep(0.2)
        return [first, metric.calls[len(first) :]]

    first, later = asyncio.run(go())
    assert sorted((n, t["version"], t["status"]) for n, t in first) == [
        (1, "2", "503"),
        (3, "1", "200"),
    ]
    assert all(t["model"] == "iris" for _, t in first)
    assert later == [(1, {"model": "iris", "version": "2", "status": "200"})]
