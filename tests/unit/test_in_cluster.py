"""The in-cluster SDK's routing over Serve handles (maas_ray/in_cluster.py), with fake
handles: a model's own application, else the gateway; errors as over HTTP."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from ray import serve
from ray.serve.exceptions import RayServeException

from maas_ray.client import MaaS
from maas_ray.errors import RemoteError
from maas_ray.in_cluster import Handles, in_ray_worker

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Done:
    """What ``handle.method.remote(...)`` gives back: awaitable, or ``.result()``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self, timeout_s: float | None = None) -> Any:
        return self.value

    def __await__(self) -> Any:
        yield from ()
        return self.value


class Method:
    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, []

    def remote(self, *args: Any) -> Done:
        self.calls.append(args)
        return Done(self.answer(*args))


class Own:
    def __init__(self) -> None:
        self.serve_payload = Method(self._answer)

    @staticmethod
    def _answer(payload: dict[str, Any], rid: str, headers: Any, version: Any) -> Any:
        if payload["inputs"] == ["bad"]:
            return 422, b'{"error": "no", "code": "invalid_input"}', "2"
        return 200, orjson.dumps({"predictions": ["yes"]}), version or "2"


class GatewayApp:
    def __init__(self) -> None:
        self.predict_payload = Method(
            lambda name, payload, rid, version: (200, b'{"predictions": [7]}', "5")
        )


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    found: dict[str, Any] = {"own": Own(), "maas-gateway": GatewayApp()}
    asked: list[str] = []

    def get_app_handle(name: str) -> Any:
        asked.append(name)
        if name not in found:
            raise RayServeException(f"Application '{name}' does not exist.")
        return found[name]

    monkeypatch.setattr(serve, "get_app_handle", get_app_handle)
    found["asked"] = asked
    return found


def test_outside_ray_it_is_http_and_nothing_starts_ray() -> None:
    import ray

    before = ray.is_initialized()
    assert not in_ray_worker()
    assert ray.is_initialized() == before
    assert MaaS()._handles is None
    assert MaaS(in_cluster=True)._handles is not None


def test_a_model_with_its_own_application_is_called_there(apps: dict[str, Any]) -> None:
    handles = Handles()
    answer = handles.predict("own", {"inputs": ["x"]}, None, "r1")
    assert answer == {"predictions": ["yes"], "version": "2", "request_id": "r1"}
    assert handles.predict("own", {"inputs": ["x"]}, "3", None)["version"] == "3"
    assert apps["asked"].count("own") == 1  # the handle is kept
    with pytest.raises(RemoteError) as refused:
        handles.predict("own", {"inputs": ["bad"]}, None, None)
    assert (refused.value.status_code, refused.value.remote_code) == (422, "invalid_input")


def test_a_model_without_one_goes_to_the_gateway(apps: dict[str, Any]) -> None:
    handles = Handles()
    answer = handles.predict("pooled", {"inputs": [1]}, None, "r2")
    assert answer == {"predictions": [7], "version": "5", "request_id": "r2"}
    name, payload, rid, version = apps["maas-gateway"].predict_payload.calls[-1]
    assert (name, payload, rid, version) == ("pooled", {"inputs": [1]}, "r2", None)
    handles.predict("pooled", {"inputs": [1]}, None, None)
    assert apps["asked"].count("pooled") == 1  # a miss is remembered for a moment


async def test_the_async_path_answers_the_same(apps: dict[str, Any]) -> None:
    answer = await Handles().apredict("own", {"inputs": ["x"]}, None, "r3")
    assert answer["predictions"] == ["yes"]
