"""The management application in process (httpx.ASGITransport), with fake handlers:
long actions answer 202 at once and run as operations, one at a time; a quick
refusal is answered as itself; reads never wait for a change."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from maas_ray.errors import InsufficientResources
from maas_ray.gateway import admin
from maas_ray.gateway.management import ManagementAPI
from maas_ray.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Serve's replicas run on asyncio


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("MAAS_HOME", str(tmp_path))
    monkeypatch.setenv("MAAS_AUTH", "off")
    server = ManagementAPI.func_or_class("http://127.0.0.1:1")  # never reached: fakes below

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://maas") as client:
        yield client


def _fake(monkeypatch: pytest.MonkeyPatch, name: str, handler: Callable[..., Any]) -> None:
    monkeypatch.setitem(admin.HANDLERS, name, handler)


async def _done(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    for _ in range(200):
        op = (await client.get(location)).json()
        if op["state"] in ("succeeded", "failed"):
            return dict(op)
        await asyncio.sleep(0.05)
    raise AssertionError(op)


async def test_a_long_action_answers_202_and_runs_as_an_operation(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow_deploy(c: admin.Context) -> tuple[int, Any]:
        assert c.progress is not None
        c.progress("starting m v1")
        release.wait(10)
        c.progress("m v1: RUNNING")
        return 200, {"model": c.call.name, "version": "1"}

    _fake(monkeypatch, "deploy", slow_deploy)
    _fake(monkeypatch, "status", lambda c: (200, [{"model": "m"}]))
    started = time.monotonic()
    resp = await api.post("/v1/admin/models/m/deploy", json={"num_replicas": 1})
    assert time.monotonic() - started < 2.5  # the grace period, not the action
    assert resp.status_code == 202, resp.text
    op = resp.json()
    assert op["state"] == "running"
    assert (op["action"], op["target"]) == ("deploy", "m")
    assert resp.headers["location"] == f"/v1/admin/operations/{op['id']}"
    reads = await api.get("/v1/admin/status")  # not behind the change
    assert reads.status_code == 200
    assert reads.json() == [{"model": "m"}]
    release.set()
    done = await _done(api, resp.headers["location"])
    assert done["state"] == "succeeded"
    assert done["steps"] == ["starting m v1", "m v1: RUNNING"]
    assert done["result"] == {"model": "m", "version": "1"}
    listed = (await api.get("/v1/admin/operations")).json()
    assert [o["id"] for o in listed] == [op["id"]]


async def test_a_quick_refusal_is_answered_as_itself(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_room(c: admin.Context) -> tuple[int, Any]:
        raise InsufficientResources("not enough room", asked=[{"app": "m"}], free=[])

    _fake(monkeypatch, "canary", no_room)
    resp = await api.post("/v1/admin/models/m/canary", json={"version": "2", "percent": 10})
    assert resp.status_code == 409
    assert resp.json()["code"] == "insufficient_resources"
    assert resp.json()["asked"] == [{"app": "m"}]


async def test_a_failure_after_the_grace_period_is_the_operations_error(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("maas_ray.gateway.management.GRACE_S", 0.05)

    def late_failure(c: admin.Context) -> tuple[int, Any]:
        time.sleep(0.3)
        raise InsufficientResources("no room for alice@example.com's canary")

    _fake(monkeypatch, "shadow", late_failure)
    resp = await api.post("/v1/admin/models/m/shadow", json={"version": "2"})
    assert resp.status_code == 202
    op = await _done(api, resp.headers["location"])
    assert op["state"] == "failed"
    assert op["error"]["status"] == 409
    assert op["error"]["code"] == "insufficient_resources"
    assert "alice@example.com" not in op["error"]["error"]  # masked like any answer


async def test_bad_input_is_refused_before_anything_is_queued(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    _fake(monkeypatch, "deploy", lambda c: ran.append("deploy") or (200, {}))
    for path, body, status in (
        ("/v1/admin/models/m/deploy", {"num_replicas": 0}, 422),
        ("/v1/admin/models/m/deploy?timeout_s=0", {}, 422),
        ("/v1/admin/models/m/promote", {}, 422),
        ("/v1/admin/apply", {"kind": "Nope"}, 422),
    ):
        resp = await api.post(path, json=body)
        assert resp.status_code == status, (path, resp.text)
    assert (await api.post("/v1/admin/models/m/deploy", content=b"{bad")).status_code == 400
    assert ran == []
    assert (await api.get("/v1/admin/operations")).json() == []
    missing = await api.get("/v1/admin/operations/nope")
    assert missing.status_code == 404
    assert (await api.put("/v1/admin/keys")).status_code == 405


async def test_changes_run_one_at_a_time_in_order(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    running = threading.Lock()

    def deploy(c: admin.Context) -> tuple[int, Any]:
        assert running.acquire(blocking=False), "two changes at once"
        try:
            order.append(c.call.name)
            time.sleep(0.1)
        finally:
            running.release()
        return 200, {}

    _fake(monkeypatch, "deploy", deploy)
    monkeypatch.setattr("maas_ray.gateway.management.GRACE_S", 0.01)
    answers = [await api.post(f"/v1/admin/models/m{i}/deploy", json={}) for i in range(3)]
    ops = [await _done(api, a.headers["location"]) for a in answers]
    assert [op["state"] for op in ops] == ["succeeded"] * 3
    assert order == ["m0", "m1", "m2"]


async def test_whoami_names_the_credential_and_the_mlflow_ui(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/admin/whoami")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"name", "key_id", "scopes", "mlflow_ui"}
    assert body["mlflow_ui"] == Settings().mlflow_uri  # the MLflow server `maas up` runs
