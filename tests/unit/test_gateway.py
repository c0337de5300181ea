"""The data-plane gateway in process (httpx.ASGITransport), with a fake registry and a
fake shared pool: public routes, JSON 404s that tell an unknown model from one not
deployed, authentication, 405s, and predicts the shared pool answers."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.requests import Request

from maas_ray.errors import ModelNotFound, RegistryUnavailable
from maas_ray.gateway.app import Gateway

pytestmark = pytest.mark.anyio
SECRET = "unit-test-hs256-secret-0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Serve's replicas run on asyncio


class FakeRegistry:
    """What the gateway reads: which version the pool answers, which models exist."""

    def __init__(self) -> None:
        self.pooled = {"small": "3", "new": "1"}
        self.starting = {"new"}  # its first deploy runs
        self.models = {"small", "idle", "new"}
        self.down = False  # the MLflow server killed

    def pool_map(self) -> tuple[dict[str, str], frozenset[str]]:
        if self.down:
            raise RegistryUnavailable("the model registry does not answer")
        return dict(self.pooled), frozenset(self.starting)

    def get_model(self, name: str) -> object:
        if self.down:
            raise RegistryUnavailable("the model registry does not answer")
        if name not in self.models:
            raise ModelNotFound(name)
        return object()


class FakeHandle:
    """A Serve handle to the shared pool that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bytes, str | None]] = []
        self.model = ""
        self.answer = self

    def options(self, multiplexed_model_id: str) -> FakeHandle:
        self.model = multiplexed_model_id
        return self

    async def remote(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        self.asked.append((self.model, body, content_type))
        return 200, b'{"predictions": ["from-pool"]}'


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The gateway's replica object, its registry and shared pool fakes."""
    monkeypatch.setenv("MAAS_HOME", str(tmp_path))
    monkeypatch.setenv("MAAS_JWT_SECRET", SECRET)
    server = Gateway.func_or_class("http://127.0.0.1:1")  # never reached: fakes below
    server.registry = FakeRegistry()
    monkeypatch.setattr("maas_ray.gateway.app.SHARED_REFRESH_S", 0.0)  # read it every time
    server._pool = FakeHandle()

    async def running() -> dict[str, int]:  # Serve's status: every application has a replica
        return {"maas-gateway": 1, "maas-admin": 1}

    server.oip._applications = running
    return server


@pytest.fixture
async def gateway(server: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FakeHandle]]:
    pool = server._pool

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://maas") as client:
        yield client, pool, server.registry


def _bearer(scope: str) -> dict[str, str]:
    claims = {"sub": "unit", "scope": scope, "exp": int(time.time()) + 300}
    return {"authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


async def test_health_and_the_openapi_document_need_no_credential(gateway: Any) -> None:
    client, _, _ = gateway
    for path in ("/healthz", "/v2/health/live", "/v2/health/ready"):
        assert (await client.get(path)).status_code == 200, path
    document = (await client.get("/openapi.json")).json()
    assert "/v1/models/{name}/predict" in document["paths"]
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "swagger" in page.text.lower()


async def test_a_model_route_without_a_credential_is_401_with_a_challenge(gateway: Any) -> None:
    client, pool, _ = gateway
    resp = await client.post("/v1/models/small/predict", json={"inputs": [[0.0]]})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.json()["code"] == "unauthorized"
    assert pool.asked == []  # refused before the pool is asked


async def test_a_key_for_another_model_is_403(gateway: Any) -> None:
    client, pool, _ = gateway
    resp = await client.post(
        "/v1/models/small/predict", json={"inputs": [[0.0]]}, headers=_bearer("predict:other")
    )
    assert resp.status_code == 403
    assert pool.asked == []


async def test_unknown_and_undeployed_models_are_told_apart(gateway: Any) -> None:
    client, _, _ = gateway
    headers = _bearer("predict:*")
    unknown = await client.post("/v1/models/nosuch/predict", json={}, headers=headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "model_not_found")
    idle = await client.post("/v1/models/idle/predict", json={}, headers=headers)
    assert (idle.status_code, idle.json()["code"]) == (404, "not_deployed")
    nowhere = await client.get("/v9/anything", headers=headers)
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "not_found")


async def test_the_shared_pool_answers_its_models_with_their_version(gateway: Any) -> None:
    client, pool, _ = gateway
    headers = {**_bearer("predict:small"), "content-type": "application/json"}
    resp = await client.post(
        "/v1/models/small/predict", content=b'{"inputs": [[1]]}', headers=headers
    )
    assert resp.status_code == 200
    assert resp.json() == {"predictions": ["from-pool"]}
    assert resp.headers["x-maas-model-version"] == "3"
    assert resp.headers["x-maas-served-by"] == "shared-pool"
    assert pool.asked == [("small/3", b'{"inputs": [[1]]}', "application/json")]
    pinned = await client.post("/v1/models/small/versions/3/predict", json={}, headers=headers)
    assert pinned.status_code == 200
    other = await client.post("/v1/models/small/versions/2/predict", json={}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (404, "not_deployed")
    assert len(pool.asked) == 2  # the version the pool does not serve never reached it


async def test_what_the_fallback_proxy_holds_the_pool_answers_or_leaves_to_wait(
    server: Any,
) -> None:
    """Gateway.pooled: a model's predict Serve's fallback proxy passes on while no
    replica of the model runs (serving/fallback.py), answered during a first deploy."""
    key = [(b"authorization", _bearer("predict:*")["authorization"].encode())]
    body = b'{"inputs": [[1]]}'
    status, headers, content = await server.pooled("POST", "/v1/models/new/predict", b"", key, body)
    assert (status, content) == (200, b'{"predictions": ["from-pool"]}')
    assert (b"x-maas-served-by", b"shared-pool") in headers
    assert (b"x-maas-model-version", b"1") in headers
    assert server._pool.asked == [("new/1", body, None)]
    denied = await server.pooled("POST", "/v1/models/new/predict", b"", [], body)
    assert denied is not None
    assert denied[0] == 401  # the same checks as any predict
    # Not the pool's to answer: the request waits for the model's own replica.
    for method, path in [
        ("POST", "/v1/models/small/predict"),  # not a first deploy: a version served before
        ("POST", "/v1/models/masked/predict"),  # not in the pool's map (mask_fields)
        ("POST", "/v1/models/new/versions/2/predict"),  # another version than the pool's
        ("POST", "/v1/models/new/feedback"),  # not a predict or explain
        ("GET", "/v1/models/new/predict"),
    ]:
        assert await server.pooled(method, path, b"", key, body) is None, path
    assert len(server._pool.asked) == 1


async def test_another_method_is_405_with_allow(gateway: Any) -> None:
    client, _, _ = gateway
    resp = await client.delete("/healthz")
    assert resp.status_code == 405
    assert "GET" in resp.headers["allow"]
    assert resp.json()["code"] == "method_not_allowed"


async def test_the_console_is_public_and_serves_its_files_itself(gateway: Any) -> None:
    client, _, _ = gateway
    page = await client.get("/console")
    assert page.status_code == 200
    assert 'name="api_key"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '"whoami": "/v1/admin/whoami"' in page.text  # the script gets the table's paths
    script = re.search(r'src="(/console/console\.js\?v=[0-9a-f]{12})"', page.text)
    assert script, page.text  # ?v= the file's digest: a new release is not read from cache
    assert (await client.get(script.group(1))).status_code == 200
    for name in ("console.js", "console.css", "plotly.min.js"):
        got = await client.get(f"/console/{name}", headers={"accept-encoding": "gzip"})
        assert got.status_code == 200, name
        assert got.headers["content-encoding"] == "gzip"
        assert len(got.content) > 1000, name  # httpx decoded it
    plain = await client.get("/console/console.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert "sessionStorage" in plain.text
    missing = await client.get("/console/../secrets")
    assert missing.status_code in (401, 404)
    assert (await client.get("/console/nothing.js")).status_code == 404


async def test_the_console_explains_the_tried_input_with_bars_drawn_by_its_own_script(
    gateway: Any,
) -> None:
    client, _, _ = gateway
    page = (await client.get("/console")).text
    assert re.search(r'<button id="try-explain" type="button">Explain</button>', page)
    assert '<div id="explanation"' in page
    assert '"explain": "/v1/models/{name}/explain"' in page  # the table's path, not spelt
    script = (await client.get("/console/console.js")).text
    assert 'path("explain", { name: state.model })' in script
    assert 'getElementById("try-explain").addEventListener("click", tryExplain)' in script
    assert "const TOP = 10;" in script  # the largest ten contributions per row
    for drawn in ("bar-row", "bar-name", "bar-value", "prediction ${", "baseline ${"):
        assert drawn in script, drawn
    style = (await client.get("/console/console.css")).text
    assert ".bar.up {" in style
    assert ".bar.down {" in style  # the two signs in two colours
    assert "http" not in script  # no URL: nothing fetched from elsewhere (no CDN)


async def test_with_the_registry_down_the_pool_serves_what_it_knew_and_a_miss_is_a_fast_503(
    gateway: Any,
) -> None:
    client, pool, registry = gateway
    headers = {**_bearer("predict:*"), "content-type": "application/json"}
    body = b'{"inputs": [[1]]}'
    assert (await client.post("/v1/models/small/predict", content=body, headers=headers)).is_success
    registry.down = True
    resp = await client.post("/v1/models/small/predict", content=body, headers=headers)
    assert resp.status_code == 200  # the last map read still says the pool answers it
    assert resp.headers["x-maas-model-version"] == "3"
    for path in ("/v1/models/nosuch/predict", "/v2/models/nosuch/infer"):
        miss = await client.post(path, content=body, headers=headers)
        assert (miss.status_code, miss.json()["code"]) == (503, "registry_unavailable"), path
    registry.down = False
    miss = await client.post("/v1/models/nosuch/predict", content=body, headers=headers)
    assert (miss.status_code, miss.json()["code"]) == (404, "model_not_found")
