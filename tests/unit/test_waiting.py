"""Waiting for Serve: a switch of version ends only when the old replicas are gone
(Serve shows the new config with the old status for a moment after a PUT)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from maas_ray.control import waiting


def _app(
    version: str, replicas: list[str], status: str = "RUNNING", stopping: tuple[str, ...] = ()
) -> dict[str, Any]:
    listed = [{"replica_id": r, "state": "RUNNING"} for r in replicas]
    listed += [{"replica_id": r, "state": "STOPPING"} for r in stopping]
    return {
        "status": status,
        "deployed_app_config": {"args": {"version": version}},
        "deployments": {"ModelServer": {"replicas": listed}},
    }


class FakeServe:
    """Serve's applications as a script: one state per read, the last one repeated."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.reads = 0
        self.put: dict[str, Any] | None = None

    def applications(self) -> dict[str, Any]:
        state = self.states[min(self.reads, len(self.states) - 1)]
        self.reads += 1
        return state

    def put_config(self, config: dict[str, Any]) -> None:
        self.put = config


def _control(serve: FakeServe, target: str) -> Any:
    def desired(overrides: Any, no_surge: Any) -> tuple[dict[str, Any], dict[str, str]]:
        return {"applications": [{"name": "m", "args": {"version": target}}]}, {"m": target}

    settings = SimpleNamespace(deploy_timeout_s=5)
    return SimpleNamespace(serve=serve, settings=settings, desired=desired, registry=None)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "POLL_S", 0.0)
    monkeypatch.setattr(waiting.rows, "applied", lambda app, want: True)


def test_a_switch_of_version_waits_until_the_old_replicas_are_gone() -> None:
    serve = FakeServe(
        [
            {"m": _app("1", ["old"])},  # before the PUT
            {"m": _app("2", ["old"])},  # the new config, the old status and replica
            {"m": _app("2", ["old", "new"])},  # the surge replica starts
            {"m": _app("2", ["new"], stopping=("old",))},  # done: the old one only drains
        ]
    )
    waiting.converge(_control(serve, "2"), ["m"], None)
    assert serve.put is not None
    assert serve.reads == 5  # past the read that looked done (and one: no challenger left)


def test_a_change_that_keeps_the_version_keeps_its_replicas() -> None:
    serve = FakeServe([{"m": _app("2", ["same"])}])
    waiting.converge(_control(serve, "2"), ["m"], None)
    assert serve.reads == 3  # before the PUT, once after it, once for the challenger


def test_the_old_replicas_still_there_at_the_deadline_time_out() -> None:
    serve = FakeServe([{"m": _app("1", ["old"])}, {"m": _app("2", ["old"])}])
    control = _control(serve, "2")
    control.settings.deploy_timeout_s = 0.05
    with pytest.raises(waiting.DeploymentFailed, match="timed out"):
        waiting.converge(control, ["m"], None)


def test_putting_back_after_a_failed_switch_keeps_the_replicas_that_still_serve() -> None:
    # The new version failed: Serve's config names it, the old replica still answers.
    failed = _app("2", ["old"], status="DEPLOY_FAILED")
    serve = FakeServe([{"m": failed}, {"m": _app("1", ["old"])}])
    waiting.converge(_control(serve, "1"), ["m"], None)
    assert serve.reads == 3  # done at the first read: the old replica is the one wanted
