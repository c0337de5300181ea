"""serving/overload.py: Serve's plain-text overload answer becomes the platform's JSON."""

from __future__ import annotations

import inspect
import json
from types import ModuleType

import ray.serve._private.replica as replica

from maas_ray.serving import overload


def _body(messages: list[dict[str, object]]) -> tuple[int, dict[bytes, bytes], bytes]:
    start, body = messages
    headers = {bytes(k): bytes(v) for k, v in start["headers"]}  # type: ignore[attr-defined]
    return start["status"], headers, body["body"]  # type: ignore[return-value]


def test_ray_still_answers_an_overload_the_way_the_wrapper_expects() -> None:
    source = inspect.getsource(replica)
    assert f'"{overload.BACKPRESSURE_TEXT}"' in source
    assert callable(getattr(replica, overload.CONVERT))


def test_the_overload_text_becomes_json_and_everything_else_passes_through() -> None:
    # Ray's own function (the replica module may be wrapped already in this process:
    # serving/loopback.py edits it wherever it is imported after the hook).
    ray_s = inspect.unwrap(replica.convert_object_to_asgi_messages)
    module = ModuleType("fake_replica")
    setattr(module, overload.CONVERT, ray_s)
    overload.install(module)
    convert = getattr(module, overload.CONVERT)
    assert convert is not ray_s
    overload.install(module)  # a second install changes nothing: not wrapped twice
    assert getattr(module, overload.CONVERT) is convert
    retry = [(b"retry-after", b"1")]
    status, headers, body = _body(convert(overload.BACKPRESSURE_TEXT, 503, retry))
    assert status == 503
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"retry-after"] == b"1"
    answer = json.loads(body)
    assert answer["code"] == "overloaded"
    assert "max_queued_requests" in answer["error"]
    # Other answers are Ray's own.
    assert _body(convert("Request timed out", 408)) == _body(ray_s("Request timed out", 408))
    assert _body(convert(overload.BACKPRESSURE_TEXT, 429, retry))[1][b"content-type"] == (
        b"text/plain; charset=utf-8"
    )


def test_a_replica_module_without_the_function_is_left_alone() -> None:
    module = ModuleType("older_ray")
    overload.install(module)
    assert not hasattr(module, overload.CONVERT)
