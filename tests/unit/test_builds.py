"""serving/builds.py: the platform's Serve application builds may reuse a worker."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import ray.serve._private.application_state as application_state

from maas_ray.serving import builds


class _Remote:
    """A Ray remote function's calling surface, recording what it was asked."""

    def __init__(self, max_calls: int = 1) -> None:
        self.calls: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
        self._function = len  # what Ray declared remote
        self._default_options = {"num_cpus": 0, "max_calls": max_calls}

    def options(self, **options: Any) -> Any:
        remote = self

        class _Bound:
            def remote(self, *args: Any) -> str:
                remote.calls.append((options, args))
                return "ref"

        return _Bound()


def test_serve_still_builds_the_way_the_wrapper_expects() -> None:
    source = inspect.getsource(application_state)
    assert f"{builds.TASK}.options(" in source  # the one call site: .options(...).remote(...)
    real = inspect.unwrap(getattr(application_state, builds.TASK))
    assert real._default_options["max_calls"] == 1  # what the copy lifts
    reused = builds.reusable(real)
    assert reused._function is real._function
    assert reused._default_options == {**real._default_options, "max_calls": 0}


def test_own_builds_go_to_the_reused_task_and_others_to_rays() -> None:
    module = ModuleType("fake_application_state")
    real, reused = _Remote(), _Remote(max_calls=0)
    setattr(module, builds.TASK, real)
    builds.install(module, declare=lambda task: reused)
    task = getattr(module, builds.TASK)
    assert task is not real
    assert inspect.unwrap(task) is real
    builds.install(module)  # a second install changes nothing: not wrapped twice
    assert getattr(module, builds.TASK) is task

    runtime_env = {"env_vars": {"A": "1"}}
    assert task.options(runtime_env=runtime_env).remote("maas_ray.serving.app:build_app", 1) == (
        "ref"
    )
    task.options(runtime_env=None).remote("users_code.app:app", 2)
    assert reused.calls == [({"runtime_env": runtime_env}, ("maas_ray.serving.app:build_app", 1))]
    assert real.calls == [({"runtime_env": None}, ("users_code.app:app", 2))]


def test_a_module_without_the_task_is_left_alone() -> None:
    module = ModuleType("older_ray")
    builds.install(module)
    assert not hasattr(module, builds.TASK)


def test_a_task_that_cannot_be_declared_again_is_left_as_ray_declared_it() -> None:
    module = ModuleType("changed_ray")
    real = _Remote()
    setattr(module, builds.TASK, real)

    def refuse(task: Any) -> Any:
        raise TypeError("an option Ray no longer takes")

    builds.install(module, declare=refuse)
    assert getattr(module, builds.TASK) is real
