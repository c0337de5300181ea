"""A primary's link to its canary or shadow (serving/split.py), with a fake handle.

Serve's handle lookup is replaced in every test, so nothing here reaches Ray.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from maas_ray.serving import split as split_module
from maas_ray.serving.split import TrafficSplit
from maas_ray.serving.traffic import to_challenger
from maas_ray.spec import Canary, Shadow, Traffic


class _Method:
    """One handle method: ``.remote(...)`` gives an awaitable, like a Serve response."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)

        async def result() -> Any:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

        return result()


class _Handle:
    def __init__(self) -> None:
        self.answer = _Method((200, b'{"predictions": [2]}'))
        self.compare = _Method(None)
        self.stats = _Method({"answered": {}, "shadow": {"requests": 3, "dropped": 0}})


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Serve's handle lookup, faked: each call recorded, each answered by a new _Handle."""
    calls: list[dict[str, Any]] = []

    def lookup(deployment: str, app_name: str) -> _Handle:
        calls.append({"deployment": deployment, "app_name": app_name})
        return _Handle()

    monkeypatch.setattr(split_module.serve, "get_deployment_handle", lookup)
    return calls


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Serve's replicas run on asyncio


def _split(traffic: Traffic) -> TrafficSplit:
    link = TrafficSplit("m", "1")
    link.reconfigure(traffic)
    return link


def test_without_a_split_the_primary_answers_and_no_handle_is_made(
    lookups: list[dict[str, Any]],
) -> None:
    link = _split(Traffic())
    assert (link.version, link.handle) == (None, None)
    assert link.pick(None, {}) is None
    assert link.pick("2", {}) is None
    assert lookups == []


def test_a_canary_gets_its_share_and_the_versions_named_in_the_path(
    lookups: list[dict[str, Any]],
) -> None:
    link = _split(Traffic(canary=Canary(version="2", percent=100)))
    assert link.pick(None, {}) == "2"
    assert link.pick("1", {}) is None  # the primary's own version
    assert link.pick("2", {}) == "2"
    assert lookups == [{"deployment": "ModelServer", "app_name": "m~challenger"}]  # once
    link.reconfigure(Traffic(canary=Canary(version="2", percent=0)))
    assert link.pick(None, {}) is None
    assert link.pick("2", {}) == "2"  # asked for by name, at 0% too


def test_a_sticky_canary_keeps_each_caller_on_one_side(lookups: list[dict[str, Any]]) -> None:
    link = _split(Traffic(canary=Canary(version="2", percent=50, sticky_header="x-user")))
    for user in (f"user-{i}" for i in range(50)):
        expected = "2" if to_challenger(50, user) else None
        assert {link.pick(None, {"x-user": user}) for _ in range(5)} == {expected}


class _Clock:
    """Stands in for the ``time`` module inside split.py only (asyncio keeps its own)."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(split_module, "time", fake)
    return fake


def test_a_challenger_not_there_yet_is_looked_up_at_most_once_a_second(
    monkeypatch: pytest.MonkeyPatch, clock: _Clock
) -> None:
    calls: list[str] = []

    def missing(deployment: str, app_name: str) -> None:
        calls.append(app_name)
        raise KeyError(app_name)

    monkeypatch.setattr(split_module.serve, "get_deployment_handle", missing)
    link = _split(Traffic(canary=Canary(version="2", percent=100)))
    assert link.pick(None, {}) is None
    assert link.pick("2", {}) is None
    clock.now += 0.9
    assert link.pick(None, {}) is None
    assert calls == ["m~challenger"]
    clock.now += 0.2
    assert link.pick(None, {}) is None
    assert calls == ["m~challenger", "m~challenger"]


def test_ending_the_split_drops_the_handle(lookups: list[dict[str, Any]], clock: _Clock) -> None:
    link = _split(Traffic(shadow=Shadow(version="2")))
    first = link.handle
    assert first is not None
    link.reconfigure(Traffic())
    assert link.handle is None
    link.reconfigure(Traffic(canary=Canary(version="3", percent=10)))
    assert link.version == "3"
    assert link.handle is None  # the once-a-second limit holds across reconfigures
    clock.now += 1.0
    assert link.handle is not None
    assert link.handle is not first
    assert len(lookups) == 2


@pytest.mark.anyio
async def test_forward_answers_none_when_the_challenger_fails(
    lookups: list[dict[str, Any]],
) -> None:
    link = _split(Traffic(canary=Canary(version="2", percent=100)))
    assert await link.forward(b"{}", "application/json") == (200, b'{"predictions": [2]}')
    handle: Any = link.handle
    handle.answer.answer = RuntimeError("going away")
    assert await link.forward(b"{}", None) == (None, b"")


async def _flushed(handle: _Handle, batches: int) -> None:
    async def wait() -> None:
        while len(handle.compare.calls) < batches:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout=5)


@pytest.mark.anyio
async def test_mirrored_requests_reach_the_shadow_in_one_batch(
    lookups: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split_module, "MIRROR_QUEUE_MAX", 2)
    link = _split(Traffic(shadow=Shadow(version="2")))
    for i in range(3):
        link.mirror(str(i).encode(), "application/json", b"out", str(i))
    assert link.agreement["dropped"] == 1  # past the queue's limit
    handle: Any = link.handle
    await _flushed(handle, 1)
    assert handle.compare.calls == [
        ([(b"0", "application/json", b"out", "0"), (b"1", "application/json", b"out", "1")],)
    ]
    link.mirror(b"3", None, b"out", "3")  # the flusher ended with its queue: a new one sends it
    await _flushed(handle, 2)
    assert handle.compare.calls[1] == ([(b"3", None, b"out", "3")],)


@pytest.mark.anyio
async def test_a_shadow_at_zero_percent_gets_nothing(lookups: list[dict[str, Any]]) -> None:
    link = _split(Traffic(shadow=Shadow(version="2", percent=0)))
    link.mirror(b"{}", None, b"out", "x")
    await asyncio.sleep(split_module.MIRROR_EVERY_S * 2)
    handle: Any = link.handle
    assert handle.compare.calls == []


def test_the_shadow_counts_agreement_per_request_and_row() -> None:
    link = TrafficSplit("m", "2")
    answer = orjson.dumps({"predictions": ["a", "b"]})
    link.record(200, answer, orjson.dumps({"predictions": ["a", "x"]}))
    link.record(422, answer, b'{"error": "bad"}')
    link.answered["2"] += 1
    assert link.stats() == {
        "answered": {"2": 1},
        "shadow": {"requests": 2, "rows": 2, "agree": 1, "errors": 1, "dropped": 0},
    }


@pytest.mark.anyio
async def test_the_report_has_the_split_and_the_shadows_agreement(
    lookups: list[dict[str, Any]],
) -> None:
    link = _split(Traffic(shadow=Shadow(version="2", percent=30)))
    link.answered["1"] += 4
    link.agreement["dropped"] = 5  # counted on the primary, where the queue is
    assert await link.report() == {
        "model": "m",
        "primary": "1",
        "canary": None,
        "shadow": {"version": "2", "percent": 30.0},
        "answered": {"1": 4},
        "agreement": {"requests": 3, "dropped": 5},
    }
    plain = await _split(Traffic()).report()
    assert "agreement" not in plain
    assert plain["shadow"] is None
