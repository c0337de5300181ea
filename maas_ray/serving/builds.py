"""Serve's builds of the platform's applications may reuse a worker instead of a new
process each.

Every change of an application's ``args`` (a deploy, a new version, a canary) makes
Serve's controller run ``build_serve_application``: a Ray task that imports the
application's module, calls its builder and sends back the deployments. Ray 2.60
declares it ``max_calls=1``, so each build starts a new worker process and exits it:
on 2 cores that was ~5 CPU-s and ~15 s of waiting per deploy (importing Ray Serve,
MLflow and scikit-learn again), and a third of the worker processes a test run
started. ``max_calls=1`` is there so a build sees the user's code as it is now; the
platform's own builders (``maas_ray.*``) change only with the installed package,
which a `maas down`/`maas up` replaces with every worker. Those builds run as a copy
of the task declared with ``max_calls=0`` (no limit): a build finds the worker of
the one before if Ray still keeps it idle (it stops an idle worker after a second
once a node runs more workers than CPUs, so builds close together share one, as a
restore's or a test run's do, while a quiet `make up` platform still starts most
afresh); any other import path keeps Ray's task.

The controller's worker imports Serve's application-state module; the wrap is made
as it is imported (``serving/loopback.py`` installs the hook in every worker).
Should a Ray upgrade rename the task, builds run as Ray declares them and a warning
says so; ``tests/unit/test_builds.py`` fails.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

TASK = "build_serve_application"  # ray/serve/_private/application_state.py
OWN = "maas_ray."  # the import paths whose builds may share a worker


class ReusedBuilds:
    """Stands in for Ray's ``build_serve_application`` remote function: the one call
    Serve makes, ``.options(**kw).remote(import_path, ...)``, goes to a copy of the
    task declared with ``max_calls=0`` where ``import_path`` is the platform's own,
    to Ray's task otherwise (``.options`` takes no ``max_calls``: a task's own)."""

    def __init__(self, real: Any, reused: Any) -> None:
        self.__wrapped__ = real  # inspect.unwrap finds Ray's
        self.reused = reused

    def options(self, **options: Any) -> _Call:
        return _Call(self, options)


class _Call:
    def __init__(self, builds: ReusedBuilds, options: dict[str, Any]) -> None:
        self.builds, self.options = builds, options

    def remote(self, import_path: str, *args: Any, **kwargs: Any) -> Any:
        own = isinstance(import_path, str) and import_path.startswith(OWN)
        task = self.builds.reused if own else self.builds.__wrapped__
        return task.options(**self.options).remote(import_path, *args, **kwargs)


def reusable(real: Any) -> Any:
    """Ray's remote function ``real``, declared again with ``max_calls=0``."""
    import ray

    return ray.remote(**{**real._default_options, "max_calls": 0})(real._function)


def install(module: ModuleType, declare: Any = reusable) -> None:
    """Wrap ``module``'s (Serve's application-state module's) build task; idempotent."""
    real = getattr(module, TASK, None)
    if isinstance(real, ReusedBuilds):
        return
    if real is None or not hasattr(real, "options") or not hasattr(real, "_function"):
        logger.warning("Ray's %s is gone: each application build starts a new worker", TASK)
        return
    try:
        reused = declare(real)
    except Exception:  # noqa: BLE001 - Serve's module must import whatever happens here
        logger.warning("could not declare %s again: each build starts a new worker", TASK)
        return
    setattr(module, TASK, ReusedBuilds(real, reused))
