"""The fallback proxy's bound (serving/fallback.py), in process: what the middleware adds
to a request, and what a caller gets when Serve gives up at the limit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from maas_ray.control import nodes
from maas_ray.serving import fallback
from maas_ray.serving.fallback import BoundedWait


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Serve:
    """Stands in for Serve's proxy: records the limit header each request arrives with,
    and answers as Serve does when a request ran past it (``timed_out``), or ``answer``
    (status, headers, body) when given."""

    def __init__(
        self,
        timed_out: bool = False,
        answer: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None,
    ) -> None:
        self.timed_out, self.answer = timed_out, answer
        self.limits: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        self.limits.append(
            headers[fallback.TIMEOUT_HEADER].decode()
            if fallback.TIMEOUT_HEADER in headers
            else None
        )
        status, extra, body = self.answer or (200, [], b'{"predictions": [1]}')
        if self.timed_out:
            status, body = 408, b"Request abc timed out after 30.0s."
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _client(serve: Serve) -> httpx.AsyncClient:
    app = BoundedWait(serve, predict_s=30.0, explain_s=120.0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


@pytest.mark.anyio
async def test_a_model_request_gets_the_platform_limit_and_nothing_else_does() -> None:
    serve = Serve()
    async with _client(serve) as http:
        assert (await http.post("/v1/models/m/predict", json={})).status_code == 200
        await http.post("/v1/models/m/versions/2/explain", json={})
        await http.get("/v1/admin/status")  # management calls answer at once anyway
        await http.get("/healthz")
        mine = {"x-request-timeout-seconds": "5"}
        await http.post("/v1/models/m/predict", json={}, headers=mine)
    assert serve.limits == ["30", "120", None, None, "5"]


@pytest.mark.anyio
async def test_serve_giving_up_at_the_limit_is_a_json_504_predict_timeout() -> None:
    async with _client(Serve(timed_out=True)) as http:
        resp = await http.post("/v1/models/m/predict", json={})
    assert resp.status_code == 504
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    assert body["code"] == "predict_timeout"
    assert "no answer within 30 s" in body["error"]
    assert "maas status" in body["error"]


FAILED = b"Deployment(name='ModelServer', app='m') is unavailable because it failed to deploy."
JSON_503 = b'{"error": "busy", "code": "overloaded"}'


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "status", "code", "retry_after"),
    [
        ((503, [(b"content-type", b"text/plain")], FAILED), 503, "platform_unavailable", None),
        ((503, [(b"retry-after", b"2")], b"Request dropped"), 503, "overloaded", "2"),
        ((503, [(b"content-type", b"application/json")], JSON_503), 503, "overloaded", None),
        ((200, [], b'{"predictions": [1]}'), 200, None, None),
    ],
)
async def test_serves_own_503_becomes_json_and_the_platforms_answers_pass(
    answer: tuple[int, list[tuple[bytes, bytes]], bytes],
    status: int,
    code: str | None,
    retry_after: str | None,
) -> None:
    async with _client(Serve(answer=answer)) as http:
        resp = await http.post("/v1/models/m/predict", json={})
    assert resp.status_code == status
    assert resp.json().get("code") == code
    assert resp.headers.get("retry-after") == retry_after
    if answer[2] == FAILED:
        assert "failed to deploy" in resp.json()["error"]


@pytest.mark.anyio
async def test_a_limit_the_caller_set_keeps_serves_own_answer() -> None:
    async with _client(Serve(timed_out=True)) as http:
        resp = await http.post(
            "/v1/models/m/predict", json={}, headers={"x-request-timeout-seconds": "1"}
        )
    assert resp.status_code == 408


@pytest.mark.parametrize(
    ("actor", "count"),
    [
        ("SERVE_PROXY_ACTOR-fallback-f8bd63", 1),  # the fallback proxy: bounded
        ("SERVE_PROXY_ACTOR-f8bd63", 0),  # HAProxy's manager
        ("SERVE_REPLICA::iris#ModelServer#x1", 0),  # a replica's direct ingress: as is
        (None, 0),
    ],
)
def test_only_the_fallback_proxy_gets_the_middleware(
    monkeypatch: pytest.MonkeyPatch, actor: str | None, count: int
) -> None:
    import ray

    context = SimpleNamespace(get_actor_name=lambda: actor)
    monkeypatch.setattr(ray, "get_runtime_context", lambda: context)
    monkeypatch.setenv("MAAS_PREDICT_TIMEOUT_S", "7")
    found = fallback.middlewares()
    assert len(found) == count
    if found:
        assert found[0].kwargs == {"predict_s": 7.0, "explain_s": 120.0}


def test_haproxy_mode_names_the_callback_serve_imports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from maas_ray.settings import Settings

    monkeypatch.setattr(nodes, "haproxy_binary", lambda: "/usr/sbin/haproxy")
    path = nodes.ingress_env(Settings(home=tmp_path))["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"]
    module, name = path.split(":")
    assert (module, name) == (fallback.__name__, fallback.middlewares.__name__)
