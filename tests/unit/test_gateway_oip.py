"""The gateway's Open Inference Protocol v2 routes in process (httpx.ASGITransport):
a model with its own replicas (a fake Serve handle), one the shared pool answers, one
starting, readiness from Serve's status, and the errors a client gets."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import orjson
import pytest
from mlflow.types import ColSpec, Schema, TensorSpec
from starlette.requests import Request

from maas_ray.errors import ModelNotFound
from maas_ray.gateway.app import Gateway

pytestmark = pytest.mark.anyio
SECRET = "unit-test-hs256-secret-0123456789abcdef"
FLOATS = Schema([TensorSpec(np.dtype(np.float32), (-1, 2))])
LABELS = Schema([ColSpec("string")])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Call:
    """``handle.method.remote(...)`` answering from a function, recording the calls."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, []

    async def remote(self, *args: Any) -> Any:
        self.calls.append(args)
        return self.answer(*args)


class OwnReplicas:
    """A model application's ingress (ModelServer): version 4, canary version 5."""

    def __init__(self) -> None:
        described = {"name": "own", "version": "4", "inputs": FLOATS.to_dict()}
        self.describe = Call(lambda: {**described, "outputs": LABELS.to_dict()})
        self.serve_payload = Call(self._predict)
        self.explain_payload = Call(self._explain)

    @staticmethod
    def _predict(payload: dict[str, Any], rid: str, headers: Any, version: Any) -> Any:
        rows = np.asarray(payload["inputs"])
        if rows.shape[1] != 2:
            return 422, b'{"error": "bad rows", "code": "invalid_input"}', "4"
        answer = ["big" if r.sum() > 1 else "small" for r in rows]
        return 200, orjson.dumps({"predictions": answer}), version or "4"

    @classmethod
    def _explain(cls, payload: dict[str, Any], version: Any) -> Any:
        status, out, answered = cls._predict(payload, "-", {}, version)
        if status != 200:
            return status, out, answered
        rows = [_explained(r) for r in np.asarray(payload["inputs"]).tolist()]
        explanation = {**EXPLAINED, "version": answered, "explanations": rows}
        return 200, orjson.dumps({**orjson.loads(out), "explanation": explanation}), answered


EXPLAINED: dict[str, Any] = {
    "model": "own",
    "method": "shap.LinearExplainer",
    "output": "log_odds",
    "background_rows": 10,
}


def _explained(row: list[float]) -> dict[str, Any]:
    """As a linear model would: each column's value is its contribution."""
    ranked = sorted(enumerate(row), key=lambda c: -abs(c[1]))
    return {
        "prediction": sum(row),
        "baseline": 0.0,
        "class": "big" if sum(row) > 1 else "small",
        "attributions": [{"feature": f"x[{i}]", "value": v} for i, v in ranked],
    }


class Pool:
    """The shared pool's handle: ``small`` version 3 takes text."""

    def __init__(self) -> None:
        self.model = ""
        described = {"name": "small", "version": "3", "inputs": None, "outputs": None}
        self.describe = Call(lambda: described)
        self.answer = Call(lambda body, ctype: (200, b'{"predictions": [1, 2]}'))
        self.explain = Call(self._explain)

    @staticmethod
    def _explain(
        body: bytes, ctype: Any, predictions: bool, fmt: str | None = None
    ) -> tuple[int, bytes]:
        rows = [_explained([float(len(t))]) for t in orjson.loads(body)["inputs"]]
        explanation = {**EXPLAINED, "model": "small", "version": "3", "explanations": rows}
        return 200, orjson.dumps({"predictions": [1, 2], "explanation": explanation})

    def options(self, multiplexed_model_id: str) -> Pool:
        self.model = multiplexed_model_id
        return self


class FakeRegistry:
    def pool_map(self) -> tuple[dict[str, str], frozenset[str]]:
        return {"small": "3"}, frozenset()

    def get_model(self, name: str) -> object:
        if name not in ("small", "own", "idle", "starting"):
            raise ModelNotFound(name)
        return object()


@pytest.fixture
async def oip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, OwnReplicas, Pool]]:
    monkeypatch.setenv("MAAS_HOME", str(tmp_path))
    monkeypatch.setenv("MAAS_JWT_SECRET", SECRET)
    server = Gateway.func_or_class("http://127.0.0.1:1")
    server.registry = FakeRegistry()
    pool, own = Pool(), OwnReplicas()
    server._pool = pool
    apps = {"maas-gateway": 1, "maas-admin": 1, "own": 1, "starting": 0}

    async def running() -> dict[str, int]:
        return apps

    async def handle(app: str) -> Any:
        assert app == "own", app
        return own

    server.oip._applications = running
    server.oip._handle = handle

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://maas") as client:
        client.headers.update(_bearer("predict:*"))
        yield client, apps, own, pool


def _bearer(scope: str) -> dict[str, str]:
    claims = {"sub": "unit", "scope": scope, "exp": int(time.time()) + 300}
    return {"authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def _infer(*rows: list[float], **extra: Any) -> dict[str, Any]:
    tensor = {"name": "x", "shape": [len(rows), 2], "datatype": "FP32", "data": list(rows)}
    return {"inputs": [tensor], **extra}


async def test_server_metadata_liveness_and_readiness_need_no_key(oip: Any) -> None:
    client, apps, _, _ = oip
    bare = httpx.AsyncClient(transport=client._transport, base_url="http://maas")
    server = (await bare.get("/v2")).json()
    assert server["name"] == "maas_ray"
    assert "binary_tensor_data" in server["extensions"]
    assert (await bare.get("/v2/health/live")).json() == {"live": True}
    starting = await bare.get("/v2/health/ready")
    assert starting.status_code == 503
    assert starting.json()["ready"] is False
    assert "starting" in starting.json()["error"]
    apps["starting"] = 1
    assert (await bare.get("/v2/health/ready")).json() == {"ready": True}
    assert (await bare.get("/v2/models/own")).status_code == 401


async def test_infer_on_a_model_with_its_own_replicas(oip: Any) -> None:
    client, _, own, _ = oip
    resp = await client.post("/v2/models/own/infer", json=_infer([1, 2], [0, 0], id="a1"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-maas-model-version"] == "4"
    assert resp.json() == {
        "model_name": "own",
        "model_version": "4",
        "id": "a1",
        "outputs": [
            {"name": "predictions", "datatype": "BYTES", "shape": [2], "data": ["big", "small"]}
        ],
    }
    payload, rid, headers, version = own.serve_payload.calls[-1]
    assert np.asarray(payload["inputs"]).tolist() == [[1, 2], [0, 0]]
    assert version is None
    pinned = await client.post("/v2/models/own/versions/4/infer", json=_infer([1, 1]))
    assert pinned.json()["model_version"] == "4"
    assert own.serve_payload.calls[-1][3] == "4"


async def test_binary_request_and_answer(oip: Any) -> None:
    client, _, _, _ = oip
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    body = header + np.asarray([[3, 4]], dtype="<f4").tobytes()
    resp = await client.post(
        "/v2/models/own/infer",
        content=body,
        headers={"inference-header-content-length": str(len(header))},
    )
    assert resp.status_code == 200, resp.text
    size = int(resp.headers["inference-header-content-length"])
    doc = orjson.loads(resp.content[:size])
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 7}
    assert resp.content[size:] == len(b"big").to_bytes(4, "little") + b"big"


async def test_errors_are_json_4xx_with_the_message(oip: Any) -> None:
    client, _, _, _ = oip
    cases = [
        (_infer([1, 2], [3]), 400, "ragged"),
        (
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]},
            400,
            "FP32",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, -2], "datatype": "FP32", "data": [1, 2]}]},
            400,
            "negative",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            422,
            "bad rows",
        ),
        ({"inputs": []}, 400, "inputs"),
    ]
    for body, status, said in cases:
        resp = await client.post("/v2/models/own/infer", json=body)
        assert resp.status_code == status, (body, resp.text)
        assert said in resp.json()["error"], resp.text
    unknown = await client.post("/v2/models/nosuch/infer", json=_infer([1, 2]))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "model_not_found")
    idle = await client.post("/v2/models/idle/infer", json=_infer([1, 2]))
    assert (idle.status_code, idle.json()["code"]) == (404, "not_deployed")
    starting = await client.post("/v2/models/starting/infer", json=_infer([1, 2]))
    assert starting.status_code == 503
    wrong = await client.get("/v2/models/own/infer")
    assert wrong.status_code == 405
    other = await client.post(
        "/v2/models/own/infer", json=_infer([1, 2]), headers=_bearer("predict:small")
    )
    assert other.status_code == 403


async def test_metadata_and_readiness_of_models(oip: Any) -> None:
    client, _, _, _ = oip
    meta = (await client.get("/v2/models/own")).json()
    assert meta["versions"] == ["4"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 2]}]
    assert meta["outputs"] == [{"name": "predictions", "datatype": "BYTES", "shape": [-1]}]
    assert (await client.get("/v2/models/own/ready")).json() == {"name": "own", "ready": True}
    assert (await client.get("/v2/models/own/versions/4/ready")).status_code == 200
    assert (await client.get("/v2/models/own/versions/9/ready")).status_code == 404
    assert (await client.get("/v2/models/starting/ready")).status_code == 503
    assert (await client.get("/v2/models/nosuch/ready")).status_code == 404


async def test_a_shared_model_is_answered_by_the_pool(oip: Any) -> None:
    client, _, _, pool = oip
    body = {"inputs": [{"name": "t", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]}
    resp = await client.post("/v2/models/small/infer", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-maas-served-by"] == "shared-pool"
    out = resp.json()["outputs"][0]
    assert (out["datatype"], out["data"]) == ("INT64", [1, 2])
    assert pool.model == "small/3"
    sent, _ = pool.answer.calls[-1]
    assert orjson.loads(sent) == {"inputs": ["a", "b"]}
    assert (await client.get("/v2/models/small")).json()["versions"] == ["3"]
    other = await client.post("/v2/models/small/versions/2/infer", json=body)
    assert other.status_code == 404


async def test_an_answer_from_a_version_promoted_meanwhile_is_not_dropped(oip: Any) -> None:
    """The gateway read the primary's signature as version 4; a promote makes 6 answer
    before that is read again: the answer still comes back, as version 6."""
    client, _, own, _ = oip
    assert (await client.get("/v2/models/own")).json()["versions"] == ["4"]
    own.serve_payload.answer = lambda *args: (200, b'{"predictions": ["new"]}', "6")
    resp = await client.post("/v2/models/own/infer", json=_infer([1, 2]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["model_version"] == "6"
    assert resp.json()["outputs"][0]["data"] == ["new"]


async def test_infer_with_explain_answers_each_rows_explanation_beside_the_predictions(
    oip: Any,
) -> None:
    client, _, own, _ = oip
    asked = _infer([1, 2], [0, 0.5], id="e1", parameters={"explain": True})
    resp = await client.post("/v2/models/own/infer", json=asked)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-maas-model-version"] == "4"
    doc = resp.json()
    assert (doc["model_version"], doc["id"]) == ("4", "e1")
    assert doc["parameters"] == {
        "explain_method": "shap.LinearExplainer",
        "explain_output": "log_odds",
        "explain_background_rows": 10,
    }
    predictions, explanations = doc["outputs"]
    assert predictions == {
        "name": "predictions",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["big", "small"],
    }
    assert (explanations["name"], explanations["datatype"]) == ("explanations", "BYTES")
    assert explanations["shape"] == [2]
    first, second = (orjson.loads(text) for text in explanations["data"])
    assert first["class"] == "big"
    assert first["attributions"] == [
        {"feature": "x[1]", "value": 2.0},
        {"feature": "x[0]", "value": 1.0},
    ]
    assert (second["prediction"], second["baseline"]) == (0.5, 0.0)
    # The replica's explain way, not its predict: no canary split, nothing logged.
    assert own.serve_payload.calls == []
    payload, version = own.explain_payload.calls[-1]
    assert (np.asarray(payload["inputs"]).tolist(), version) == ([[1, 2], [0, 0.5]], None)
    pinned = await client.post(
        "/v2/models/own/versions/4/infer", json=_infer([1, 1], parameters={"explain": True})
    )
    assert pinned.status_code == 200, pinned.text
    assert own.explain_payload.calls[-1][1] == "4"
    plain = await client.post("/v2/models/own/infer", json=_infer([1, 2]))
    assert [o["name"] for o in plain.json()["outputs"]] == ["predictions"]
    assert "parameters" not in plain.json()


async def test_explain_of_a_model_no_explainer_fits_is_a_422_and_a_shared_one_is_explained(
    oip: Any,
) -> None:
    client, _, own, pool = oip
    refusal = b'{"error": "no explainer fits version 4 of \'own\'", "code": "not_explainable"}'
    own.explain_payload.answer = lambda *args: (422, refusal, "4")
    resp = await client.post("/v2/models/own/infer", json=_infer([1, 2], parameters={"explain": 1}))
    assert resp.status_code == 400, resp.text  # explain must be true or false
    resp = await client.post(
        "/v2/models/own/infer", json=_infer([1, 2], parameters={"explain": True})
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "not_explainable"
    assert "no explainer fits" in resp.json()["error"]
    body = {
        "inputs": [{"name": "t", "shape": [2], "datatype": "BYTES", "data": ["a", "bcd"]}],
        "parameters": {"explain": True},
    }
    shared = await client.post("/v2/models/small/infer", json=body)
    assert shared.status_code == 200, shared.text
    assert shared.headers["x-maas-served-by"] == "shared-pool"
    names = [o["name"] for o in shared.json()["outputs"]]
    assert names == ["predictions", "explanations"]
    rows = [orjson.loads(t) for t in shared.json()["outputs"][1]["data"]]
    assert [r["prediction"] for r in rows] == [1.0, 3.0]
    sent, ctype, predictions, _ = pool.explain.calls[-1]
    assert (orjson.loads(sent), ctype, predictions) == (
        {"inputs": ["a", "bcd"]},
        "application/json",
        True,
    )
    assert pool.answer.calls == []  # explained, not predicted (and not logged)


def test_the_gateway_waits_for_an_explain_longer_than_the_replicas_own_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAAS_EXPLAIN_TIMEOUT_S the replica answers 504 itself: the gateway must not
    give up first and answer 503 instead."""
    monkeypatch.setenv("MAAS_HOME", str(tmp_path))
    monkeypatch.setenv("MAAS_JWT_SECRET", SECRET)
    monkeypatch.setenv("MAAS_EXPLAIN_TIMEOUT_S", "600")
    server = Gateway.func_or_class("http://127.0.0.1:1")
    assert server.oip.explain_wait_s > 600
    monkeypatch.setenv("MAAS_EXPLAIN_TIMEOUT_S", "120")
    assert Gateway.func_or_class("http://127.0.0.1:1").oip.explain_wait_s > 120
