"""Canary choice, shadow agreement and rollback replay: pure logic."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from maas_ray.control.applications import applications
from maas_ray.control.history import rollback_target
from maas_ray.registry import HistoryEvent
from maas_ray.serving.traffic import agreement, to_challenger
from maas_ray.spec import Canary, DeploymentSpec, Shadow


def test_random_split_is_near_the_percent() -> None:
    random.seed(7)
    hits = sum(to_challenger(30) for _ in range(20_000))
    assert 0.28 < hits / 20_000 < 0.32


@pytest.mark.parametrize(("percent", "expected"), [(0, False), (100, True)])
def test_edges_are_exact(percent: float, expected: bool) -> None:
    assert all(to_challenger(percent, key) is expected for key in (None, "a", "b"))


def test_sticky_key_always_gets_the_same_side_and_keys_split_near_the_percent() -> None:
    keys = [f"user-{i}" for i in range(5000)]
    first = [to_challenger(25, k) for k in keys]
    assert first == [to_challenger(25, k) for k in keys]
    assert 0.22 < sum(first) / len(keys) < 0.28


def test_agreement_counts_rows_and_tolerates_float_noise() -> None:
    assert agreement(["a", "b", "c"], ["a", "x", "c"]) == (2, 3)
    assert agreement([1.0, [0.5, 2.0]], [1.0000001, [0.5, 2.0]]) == (2, 2)
    assert agreement([1.0], [1.1]) == (0, 1)
    assert agreement([{"p": 0.3}], [{"p": 0.3}]) == (1, 1)
    assert agreement(["a"], ["a", "b"]) == (0, 2)
    assert agreement([True], [1]) == (0, 1)


def _event(action: str, frm: str | None, to: str, alias: str = "production") -> HistoryEvent:
    return HistoryEvent(
        seq=0, time_ms=0, actor="t", action=action, alias=alias, from_version=frm, to_version=to
    )


def test_rollback_replays_promotes_and_rollbacks_as_a_stack() -> None:
    events = [
        _event("promote", None, "1"),
        _event("promote", "1", "2"),
        _event("promote", "2", "3"),
    ]
    assert rollback_target(events, "production") == "2"
    events.append(_event("rollback", "3", "2"))
    assert rollback_target(events, "production") == "1"
    events.append(_event("rollback", "2", "1"))
    assert rollback_target(events, "production") is None
    assert rollback_target([_event("promote", "1", "2", "staging")], "production") is None
    # Promoting the version already there is not a step to go back to.
    assert rollback_target([_event("promote", "2", "2")], "production") is None


def test_spec_with_a_canary_adds_a_challenger_application_and_a_split() -> None:
    spec = DeploymentSpec(model="m", alias="production", canary=Canary(version="2", percent=10))
    primary, side = applications(spec, "1", "http://x")
    assert (side["name"], side["route_prefix"], side["args"]["version"]) == (
        "m~challenger",
        None,
        "2",
    )
    # The split reaches the primary's replicas as user_config, never as an argument:
    # changing it reconfigures them instead of starting new ones.
    split = {"canary": {"version": "2", "percent": 10.0}, "shadow": None}
    assert primary["deployments"][0]["user_config"] == split
    plain = applications(DeploymentSpec(model="m", version="1"), "1", "http://x")
    assert [a["name"] for a in plain] == ["m"]
    assert primary["args"] == plain[0]["args"]
    assert plain[0]["deployments"][0]["user_config"] == {"canary": None, "shadow": None}
    shadow = DeploymentSpec(model="m", version="1", shadow={"version": "2"})
    assert applications(shadow, "1", "http://x")[1]["args"]["background"] is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"canary": {"version": "2", "percent": 101}},
        {"canary": {"version": "2", "percent": -1}},
        {"shadow": {"version": "2", "percent": 150}},
        {"canary": {"version": "2", "percent": 5}, "shadow": {"version": "3"}},
        {"canary": {"version": "2", "percent": 5, "sticky_header": "bad header!"}},
    ],
)
def test_bad_traffic_specs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DeploymentSpec(model="m", **kwargs)  # type: ignore[arg-type]


def test_shadow_defaults_to_everything() -> None:
    assert Shadow(version="2").percent == 100


def test_a_challenger_gets_traffic_only_once_it_runs_and_none_before_it_stops() -> None:
    from maas_ray.control import rollout

    plain = DeploymentSpec(model="m", alias="production")
    canary = plain.model_copy(update={"canary": Canary(version="2", percent=20)})
    before = canary.model_dump(exclude_none=True)
    # start: the challenger first runs at 0%
    (warm,) = rollout.steps(canary, plain.model_dump(exclude_none=True))
    assert warm["canary"] == {"version": "2", "percent": 0}
    # end: the primary stops sending to it first
    (quiet,) = rollout.steps(plain, before)
    assert quiet["canary"] == {"version": "2", "percent": 0}
    # a new share of the same version: one reconfigure, no step
    assert (
        rollout.steps(plain.model_copy(update={"canary": Canary(version="2", percent=50)}), before)
        == []
    )
    # another version: quiet the old one, then warm the new one
    other = plain.model_copy(update={"canary": Canary(version="3", percent=20)})
    steps = rollout.steps(other, before)
    assert [s["canary"] for s in steps] == [
        {"version": "2", "percent": 0},
        {"version": "3", "percent": 0},
    ]
