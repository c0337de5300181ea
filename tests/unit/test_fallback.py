"""The fallback proxy's middleware (serving/fallback.py), in process: the pool answers a
held request or leaves it to wait, what the middleware adds to a request that waits, and
what a caller gets when Serve gives up at the limit."""

from __future__ import annotations

import asyncio
import time
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


def _client(serve: Serve, **pool: Any) -> httpx.AsyncClient:
    app = BoundedWait(serve, predict_s=pool.pop("predict_s", 30.0), explain_s=120.0, **pool)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


class Pool:
    """Stands in for the gateway's pool: records what it was asked, and answers
    ``answer`` (None: not the pool's model), or raises it, after ``delay`` seconds."""

    def __init__(self, answer: Any = None, delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay
        self.asked: list[tuple[str, str, bytes, bytes]] = []

    async def __call__(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Any:
        self.asked.append((method, path, query, body))
        await asyncio.sleep(self.delay)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Echo(Serve):
    """Serve, answering with the body it read: the body must reach it whole."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits.append(None)
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


POOLED = (200, [(b"x-maas-served-by", b"shared-pool")], b'{"predictions": ["pool"]}')


@pytest.mark.anyio
async def test_the_pool_answers_a_held_predict_and_serve_never_sees_it() -> None:
    serve, pool = Serve(), Pool(POOLED)
    async with _client(serve, pool=pool) as http:
        resp = await http.post("/v1/models/m/predict?x=1", content=b'{"inputs": [[1]]}')
        await http.get("/healthz")  # not a model request: straight to Serve
    assert resp.status_code == 200
    assert resp.json() == {"predictions": ["pool"]}
    assert resp.headers["x-maas-served-by"] == "shared-pool"
    assert pool.asked == [("POST", "/v1/models/m/predict", b"x=1", b'{"inputs": [[1]]}')]
    assert serve.limits == [None]  # only /healthz reached Serve


@pytest.mark.anyio
@pytest.mark.parametrize(
    "pool", [Pool(None), Pool(RuntimeError("no gateway"))], ids=["not-the-pools", "no-gateway"]
)
async def test_what_the_pool_does_not_answer_waits_for_serve_with_its_body_whole(
    pool: Pool,
) -> None:
    serve = Echo()
    async with _client(serve, pool=pool, max_body=1000) as http:
        resp = await http.post("/v1/models/m/predict", content=b'{"inputs": [[2]]}')
    assert resp.status_code == 200
    assert resp.content == b'{"inputs": [[2]]}'
    assert len(pool.asked) == 1


@pytest.mark.anyio
async def test_a_path_the_pool_said_no_to_is_not_asked_about_again_for_a_second() -> None:
    serve, pool = Echo(), Pool(None)
    app = BoundedWait(serve, predict_s=30.0, explain_s=120.0, pool=pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
        for _ in range(5):  # a busy model's requests, held while its replicas restart
            assert (await http.post("/v1/models/m/predict", content=b"{}")).status_code == 200
        await http.post("/v1/models/other/predict", content=b"{}")
        asked = [path for _, path, _, _ in pool.asked]
        assert asked == ["/v1/models/m/predict", "/v1/models/other/predict"]
        assert all(
            0 < until - time.monotonic() <= fallback.NOT_POOLED_S + 0.1
            for until in app.not_pooled.values()
        )
        app.not_pooled = dict.fromkeys(app.not_pooled, 0.0)  # the second has passed
        await http.post("/v1/models/m/predict", content=b"{}")
    assert len(pool.asked) == 3
    assert len(serve.limits) == 7  # every one of them reached Serve, its body whole


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_not_buffered_for_the_pool() -> None:
    serve, pool = Echo(), Pool(POOLED)
    async with _client(serve, pool=pool, max_body=10) as http:
        resp = await http.post("/v1/models/m/predict", content=b"x" * 100)
    assert resp.content == b"x" * 100  # Serve's replica refuses it (413) when one runs
    assert pool.asked == []


@pytest.mark.anyio
async def test_a_pool_slower_than_the_limit_is_a_json_504_at_the_limit() -> None:
    serve, pool = Serve(), Pool(POOLED, delay=5.0)
    async with _client(serve, pool=pool, predict_s=0.2) as http:
        started = time.monotonic()
        resp = await http.post("/v1/models/m/predict", json={})
    assert time.monotonic() - started < 2
    assert resp.status_code == 504
    assert resp.json()["code"] == "predict_timeout"
    assert serve.limits == []


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
        kwargs = found[0].kwargs
        assert (kwargs["predict_s"], kwargs["explain_s"]) == (7.0, 120.0)
        assert isinstance(kwargs["pool"], fallback.GatewayPool)
        assert kwargs["max_body"] > 0


def test_haproxy_mode_names_the_callback_serve_imports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from maas_ray.settings import Settings

    monkeypatch.setattr(nodes, "haproxy_binary", lambda: "/usr/sbin/haproxy")
    path = nodes.ingress_env(Settings(home=tmp_path))["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"]
    module, name = path.split(":")
    assert (module, name) == (fallback.__name__, fallback.middlewares.__name__)
