"""Unit tier: no Ray, no servers. ``ray.init`` fails here on purpose."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator

import pytest

LOGGERS = ("", "maas_ray", "ray", "ray.serve")
# The requirements a unit test saves with a model it loads in-process: any given list
# spares MLflow's inference, which reloads the model in a subprocess (seconds each).
PINS = ["mlflow"]


@pytest.fixture(scope="module", autouse=True)
def _tempfiles_under_pytests_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What a unit test module writes through ``tempfile`` (the examples' trained
    weights among it: only registering a version removes them) lands under pytest's
    own temporary folder, which pytest prunes, instead of piling up in /tmp. Per
    module, and put back after it: a pytest worker may run platform tests next, whose
    Ray folder (Settings.ray_temp_dir) must stay short and in the system's place."""
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tempfile"))
    yield
    tempfile.tempdir = before


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


@pytest.fixture(autouse=True)
def _loggers_as_found() -> Iterator[None]:
    """A replica built in a test with Serve's replica context faked reroutes the
    platform's loggers (security/log_masking.py): put them back after each test."""
    saved = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), list(logger.filters), logger.propagate, logger.level)
    yield
    for name, (handlers, filters, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.filters = handlers, filters
        logger.propagate, logger.level = propagate, level
