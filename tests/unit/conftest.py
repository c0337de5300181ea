"""Unit tier: no Ray, no servers. ``ray.init`` fails here on purpose."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def refuse(*_: object, **__: object) -> None:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/integration")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(autouse=True)
def _mlflow_env_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway or management replica built in a test sets MLflow's client to give up
    fast, process-wide (registry/_reach.py): undone after each test."""
    from maas_ray.registry._reach import ANSWERING_ENV

    for name in ANSWERING_ENV:
        monkeypatch.delenv(name, raising=False)
