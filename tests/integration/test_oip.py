"""The Open Inference Protocol v2 over REST and gRPC, driven by the clients people already
use: Triton's ``tritonclient.http`` (its defaults: binary tensors; and JSON tensors) and
``tritonclient.grpc``, and KServe's ``InferenceRESTClient(RESTConfig(protocol="v2"))``,
unchanged, from a venv of their own (``make test`` installs tests/clients.txt into
.venv-clients), against the example models; then what a client sees on errors, column
inputs, and a canary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from maas_ray.client import MaaS
from maas_ray.settings import Settings
from maas_ray.spec import GATEWAY_APP
from tests.conftest import FIGURES, ROOT, auth, post, ray_job_submit

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLIENTS = ROOT / ".venv-clients" / "bin" / "python"
MODELS = ("tabular", "digits", "sentiment")

TRITON = """
import json, sys
import numpy as np
import tritonclient.http as http
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

cfg = json.load(open(sys.argv[1]))
client = http.InferenceServerClient(cfg["url"])
headers = {"Authorization": "Bearer " + cfg["key"]}
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "server": client.get_server_metadata(),
    "models": {},
}
for name, rows in cfg["models"].items():
    meta = client.get_model_metadata(name, headers=headers)
    spec, answer = meta["inputs"][0], meta["outputs"][0]["name"]
    data = np.asarray(rows, dtype=triton_to_np_dtype(spec["datatype"]))
    seen = {"ready": client.is_model_ready(name, headers=headers), "meta": meta}
    for binary in (True, False):
        tensor = http.InferInput(spec["name"], list(data.shape), spec["datatype"])
        tensor.set_data_from_numpy(data, binary_data=binary)
        outputs = None if binary else [http.InferRequestedOutput(answer, binary_data=False)]
        # a fresh dict: tritonclient writes Inference-Header-Content-Length into it
        result = client.infer(
            name, [tensor], outputs=outputs, headers=dict(headers), request_id="t1"
        )
        got = result.as_numpy(answer).ravel().tolist()
        seen["binary" if binary else "json"] = [
            g.decode() if isinstance(g, bytes) else g for g in got
        ]
        seen["id"] = result.get_response()["id"]
    out["models"][name] = seen
wrong = http.InferInput("input-0", [1, 30], "INT64")
wrong.set_data_from_numpy(np.zeros((1, 30), dtype=np.int64))
try:
    client.infer("tabular", [wrong], headers=dict(headers))
except InferenceServerException as exc:
    out["refused"] = [exc.status(), exc.message()]
try:
    client.get_model_metadata("tabular")
except InferenceServerException as exc:
    out["no_key"] = exc.status()
print(json.dumps(out))
"""

KSERVE = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

async def main():
    cfg = json.load(open(sys.argv[1]))
    base, headers = "http://" + cfg["url"], {"Authorization": "Bearer " + cfg["key"]}
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    out = {
        "live": await client.is_server_live(base),
        "ready": await client.is_server_ready(base),
        "models": {},
    }
    for name, rows in cfg["models"].items():
        text = isinstance(rows[0], str)
        data = np.asarray(rows, dtype=object if text else np.float32)
        tensor = InferInput("input-0", list(data.shape), "BYTES" if text else "FP32")
        tensor.set_data_from_numpy(data, binary_data=False)
        request = InferRequest(model_name=name, infer_inputs=[tensor], request_id="k1")
        response = await client.infer(base, request, model_name=name, headers=headers)
        got = response.outputs[0].as_numpy().ravel().tolist()
        out["models"][name] = {
            "ready": await client.is_model_ready(base, name, headers=headers),
            "answer": [g.decode() if isinstance(g, bytes) else g for g in got],
        }
    await client.close()
    print(json.dumps(out))

asyncio.run(main())
"""


TRITON_GRPC = """
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

cfg = json.load(open(sys.argv[1]))
client = grpcclient.InferenceServerClient(cfg["grpc"])
route = {"application": cfg["application"]}  # Ray Serve routes gRPC by this
headers = {**route, "authorization": "Bearer " + cfg["key"]}
out = {
    "live": client.is_server_live(headers=route),
    "ready": client.is_server_ready(headers=route),
    "server": client.get_server_metadata(headers=route, as_json=True),
    "models": {},
}
for name, rows in cfg["models"].items():
    meta = client.get_model_metadata(name, headers=headers, as_json=True)
    spec, answer = meta["inputs"][0], meta["outputs"][0]["name"]
    data = np.asarray(rows, dtype=triton_to_np_dtype(spec["datatype"]))
    tensor = grpcclient.InferInput(spec["name"], list(data.shape), spec["datatype"])
    tensor.set_data_from_numpy(data)
    result = client.infer(name, [tensor], headers=headers, request_id="g1")
    got = result.as_numpy(answer).ravel().tolist()
    out["models"][name] = {
        "ready": client.is_model_ready(name, headers=headers),
        "meta": meta,
        "answer": [g.decode() if isinstance(g, bytes) else g for g in got],
        "id": result.get_response().id,
    }

def refused(call):
    try:
        call()
    except InferenceServerException as exc:
        return [exc.status(), exc.message()]
    return None

wrong = grpcclient.InferInput("input-0", [1, 30], "INT64")
wrong.set_data_from_numpy(np.zeros((1, 30), dtype=np.int64))
out["wrong_type"] = refused(lambda: client.infer("tabular", [wrong], headers=headers))
out["no_key"] = refused(lambda: client.get_model_metadata("tabular", headers=route))
out["unknown"] = refused(lambda: client.get_model_metadata("nosuchmodel", headers=headers))
out["no_route"] = refused(lambda: client.get_model_metadata("tabular"))
print(json.dumps(out))
"""


def _run(script: str, tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    if not CLIENTS.exists():
        pytest.fail("the inference clients are missing: `make test` installs them (make clients)")
    (tmp_path / "client.py").write_text(script)
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [str(CLIENTS), str(tmp_path / "client.py"), str(tmp_path / "config.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="module")
def examples(live: Settings, seeded: dict[str, Any]) -> dict[str, Any]:
    """Each example's rows and its v1 answer to them."""
    out = {}
    for name in MODELS:
        rows = seeded[name]["inputs"]
        resp = post(live, f"/v1/models/{name}/predict", {"inputs": rows})
        assert resp.status_code == 200, resp.text
        out[name] = {"rows": rows, "v1": resp.json()["predictions"]}
    return out


def _config(live: Settings, examples: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": live.serve_url.removeprefix("http://"),
        "grpc": f"{live.host}:{live.grpc_port}",
        "application": GATEWAY_APP,
        "key": auth(live)["authorization"].removeprefix("Bearer "),
        "models": {name: ex["rows"] for name, ex in examples.items()},
    }


def test_tritonclient_http_unchanged(
    live: Settings, examples: dict[str, Any], tmp_path: Path
) -> None:
    got = _run(TRITON, tmp_path, _config(live, examples))
    assert got["live"] is True
    assert got["ready"] is True
    assert got["server"]["name"] == "maas_ray"
    for name in MODELS:
        seen, v1 = got["models"][name], examples[name]["v1"]
        assert seen["ready"] is True
        assert seen["binary"] == v1, name
        assert seen["json"] == v1, name
        assert seen["id"] == "t1"
    assert got["models"]["tabular"]["meta"]["inputs"] == [
        {"name": "input-0", "datatype": "FP32", "shape": [-1, 30]}
    ]
    assert got["models"]["sentiment"]["meta"]["inputs"][0]["datatype"] == "BYTES"
    status, message = got["refused"]
    assert status == "400"
    assert "INT64" in message
    assert got["no_key"] == "401"


def test_kserve_rest_client_unchanged(
    live: Settings, examples: dict[str, Any], tmp_path: Path
) -> None:
    got = _run(KSERVE, tmp_path, _config(live, examples))
    assert got["live"] is True
    assert got["ready"] is True
    for name in MODELS:
        assert got["models"][name]["ready"] is True
        assert got["models"][name]["answer"] == examples[name]["v1"], name


def test_tritonclient_grpc_unchanged(
    live: Settings, examples: dict[str, Any], tmp_path: Path
) -> None:
    got = _run(TRITON_GRPC, tmp_path, _config(live, examples))
    assert got["live"] is True
    assert got["ready"] is True
    assert got["server"]["name"] == "maas_ray"
    for name in MODELS:
        seen = got["models"][name]
        assert seen["ready"] is True
        assert seen["answer"] == examples[name]["v1"], name
        assert seen["id"] == "g1"
    tabular = got["models"]["tabular"]["meta"]["inputs"][0]
    assert (tabular["name"], tabular["datatype"]) == ("input-0", "FP32")
    assert [int(d) for d in tabular["shape"]] == [-1, 30]  # int64 are JSON strings
    assert got["models"]["sentiment"]["meta"]["inputs"][0]["datatype"] == "BYTES"
    status, message = got["wrong_type"]
    assert status == "StatusCode.INVALID_ARGUMENT"
    assert "INT64" in message
    assert got["no_key"][0] == "StatusCode.UNAUTHENTICATED"
    assert got["unknown"][0] == "StatusCode.NOT_FOUND"
    assert "nosuchmodel" in got["unknown"][1]
    assert got["no_route"][0] == "StatusCode.NOT_FOUND"  # no application metadata


def test_grpc_typed_contents_errors_scopes_and_request_id(
    live: Settings, examples: dict[str, Any], client: MaaS
) -> None:
    """The standard stub (generated from the protocol's .proto): typed ``contents`` as
    well as raw bytes; every malformed request an INVALID_ARGUMENT that names the
    problem, never INTERNAL; a key for another model PERMISSION_DENIED; the request id
    and the version that answered in the trailing metadata."""
    import grpc

    from maas_ray.serving.proto import predict_v2_pb2 as pb
    from maas_ray.serving.proto import predict_v2_pb2_grpc as stubs

    rows = examples["tabular"]["rows"]
    flat = [float(v) for row in rows for v in row]
    key = auth(live)["authorization"]
    metadata = [("application", GATEWAY_APP), ("authorization", key)]
    tensor = pb.ModelInferRequest.InferInputTensor

    def request(**fields: Any) -> Any:
        spec = {"name": "x", "datatype": "FP32", "shape": [len(rows), 30]}
        raw = fields.pop("raw", None)
        spec.update(fields)
        contents = spec.pop("contents", pb.InferTensorContents(fp32_contents=flat))
        inputs = [tensor(**spec) if raw is not None else tensor(**spec, contents=contents)]
        return pb.ModelInferRequest(
            model_name="tabular", inputs=inputs, raw_input_contents=raw or []
        )

    with grpc.insecure_channel(f"{live.host}:{live.grpc_port}") as channel:
        stub = stubs.GRPCInferenceServiceStub(channel)
        answer, call = stub.ModelInfer.with_call(
            request(), metadata=[*metadata, ("x-request-id", "grpc-1")], timeout=30
        )
        trailing = dict(call.trailing_metadata())
        assert trailing["x-request-id"] == "grpc-1"
        assert trailing["x-maas-model-version"] == answer.model_version
        out = answer.outputs[0]
        assert (out.name, list(out.shape)) == ("predictions", [len(rows)])
        assert _raw_values(out.datatype, answer.raw_output_contents[0]) == examples["tabular"]["v1"]
        cases = [
            (request(shape=[1, 30]), "elements"),
            (request(shape=[-1, 30]), "negative"),
            (request(shape=[2**40, 2**40]), "elements"),
            (request(datatype="FP17"), "FP17"),
            (request(datatype="BYTES", shape=[2**40], raw=[b"\0" * 8]), "cannot hold"),
            (request(raw=[b"\0" * 8]), "bytes for"),
            (request(raw=[b"", b""]), "raw_input_contents"),
            (
                request(shape=[1, 30], contents=pb.InferTensorContents(fp32_contents=[1e39] * 30)),
                "range",
            ),
        ]
        for bad, said in cases:
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(bad, metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
            assert said in (refused.value.details() or ""), (said, refused.value.details())
        other = client.create_key(["predict:digits"], name="grpc-digits-only").key
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(
                request(),
                metadata=[("application", GATEWAY_APP), ("authorization", f"Bearer {other}")],
                timeout=30,
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        ready = stub.ModelReady(pb.ModelReadyRequest(name="tabular"), metadata=metadata)
        assert ready.ready is True
        # A call aimed at another application (a model's, the management API's): Ray
        # routes it there; it answers UNIMPLEMENTED and names the gateway, nothing more.
        for app in ("tabular", "maas-admin"):
            with pytest.raises(grpc.RpcError) as elsewhere:
                stub.ModelInfer(request(), metadata=[("application", app)], timeout=30)
            assert elsewhere.value.code() == grpc.StatusCode.UNIMPLEMENTED, app
            assert f"application: {GATEWAY_APP}" in (elsewhere.value.details() or "")


def _raw_values(datatype: str, raw: bytes) -> list[Any]:
    """An output's raw bytes as values (BYTES: 4-byte little-endian length, then text)."""
    if datatype != "BYTES":
        dtype = {"INT64": "<i8", "FP64": "<f8", "FP32": "<f4", "BOOL": "?"}[datatype]
        return np.frombuffer(raw, dtype=dtype).tolist()
    values, at = [], 0
    while at < len(raw):
        size = int.from_bytes(raw[at : at + 4], "little")
        values.append(raw[at + 4 : at + 4 + size].decode())
        at += 4 + size
    return values


def test_malformed_requests_are_400s_and_the_answer_carries_the_request_id(
    live: Settings, examples: dict[str, Any]
) -> None:
    url = f"{live.serve_url}/v2/models/tabular/infer"
    headers = auth(live)
    x = {"name": "x", "datatype": "FP32"}
    cases = [
        ({"inputs": [{**x, "shape": [1, 30], "data": [1.0]}]}, "elements"),
        ({"inputs": [{**x, "shape": [-1, 30], "data": [1.0]}]}, "negative"),
        ({"inputs": [{**x, "shape": [2**40, 2**40], "data": [1]}]}, "elements"),
        ({"inputs": [{**x, "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, "FP32"),
        ({"inputs": [{**x, "shape": [1, 30], "parameters": {"binary_data_size": 999}}]}, "past"),
    ]
    for body, said in cases:
        header = json.dumps(body).encode()
        blob = b"\0" * 8 if "parameters" in body["inputs"][0] else b""
        resp = httpx.post(
            url,
            content=header + blob,
            headers={**headers, "inference-header-content-length": str(len(header))},
            timeout=30,
        )
        assert resp.status_code == 400, (body, resp.text)
        assert said in resp.json()["error"], resp.text
    rows = examples["tabular"]["rows"]
    good = {"inputs": [{"name": "x", "shape": [len(rows), 30], "datatype": "FP64", "data": rows}]}
    resp = httpx.post(url, json=good, headers={**headers, "x-request-id": "oip-1"}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-request-id"] == "oip-1"
    assert resp.json()["outputs"][0]["data"] == examples["tabular"]["v1"]


def test_column_inputs_a_canary_split_and_the_in_cluster_sdk(
    client: MaaS, live: Settings, iris_frame: Any, seeded: dict[str, Any]
) -> None:
    """A pipeline with named columns takes one input per column (or one 2-D input); a
    canary's share answers through /v2 (REST and gRPC) as through /v1, and a version can
    be pinned; a shared-pool model answers over gRPC too.
    Inside the cluster, ``MaaS(in_cluster=True)`` (and ``MaaS()`` in a Ray task, and
    ``AsyncMaaS``) predicts over Serve handles with the same split, answers and errors,
    a shared-pool model included."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris_frame.data, iris_frame.target
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    first = client.register("oipcols", pipe, input_example=X.head(2)).version
    second = client.register("oipcols", pipe, input_example=X.head(2)).version
    client.deploy("oipcols", first, num_cpus=0.25)
    rows = X.head(4)
    expected = pipe.predict(rows).tolist()
    url, headers = f"{live.serve_url}/v2/models/oipcols", auth(live)
    try:
        meta = httpx.get(url, headers=headers, timeout=30).json()
        assert [t["name"] for t in meta["inputs"]] == list(X.columns)
        assert {t["datatype"] for t in meta["inputs"]} == {"FP64"}
        columns = [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in X.columns
        ]
        by_column = httpx.post(
            f"{url}/infer", json={"inputs": columns}, headers=headers, timeout=30
        )
        assert by_column.status_code == 200, by_column.text
        assert by_column.json()["outputs"][0]["data"] == expected
        tensor = {"name": "x", "shape": list(rows.shape), "datatype": "FP64"}
        grid = {"inputs": [{**tensor, "data": rows.to_numpy().tolist()}]}
        resp = httpx.post(f"{url}/infer", json=grid, headers=headers, timeout=30)
        assert resp.json()["outputs"][0]["data"] == expected

        client.canary("oipcols", second, percent=50)
        seen: dict[str, int] = {}
        for _ in range(60):
            resp = httpx.post(f"{url}/infer", json=grid, headers=headers, timeout=30)
            assert resp.status_code == 200, resp.text
            answered = resp.json()["model_version"]
            assert resp.headers["x-maas-model-version"] == answered
            seen[answered] = seen.get(answered, 0) + 1
        assert set(seen) == {first, second}, seen
        pinned = httpx.post(
            f"{url}/versions/{second}/infer", json=grid, headers=headers, timeout=30
        )
        assert pinned.json()["model_version"] == second
        assert httpx.get(url, headers=headers, timeout=30).json()["versions"] == [first, second]
        FIGURES.append(f"oip v2: canary 50% over 60 requests: {seen}")
        over_grpc, counts = _grpc_infers(live, "oipcols", rows.to_numpy(), 60)
        assert set(over_grpc) == {first, second}, counts
        assert all(answers == expected for answers in over_grpc.values())
        FIGURES.append(f"oip v2 over gRPC: canary 50% over 60 calls: {counts}")

        shared = client.register("oipshared", pipe, input_example=X.head(2)).version
        client.deploy("oipshared", shared, mode="shared")
        assert _grpc_infers(live, "oipshared", rows.to_numpy(), 1)[0] == {shared: expected}
        frame = rows.to_dict(orient="split", index=False)
        inside = _in_cluster(live, frame, seeded["sentiment"]["inputs"])
        assert set(inside["dedicated"]) == {first, second}, inside
        assert inside["pinned"] == [second]
        assert inside["answers"] == [expected]
        assert inside["shared"] == [expected, shared]
        assert inside["sentiment"] == seeded["sentiment"]["predictions"]
        assert inside["task"] == inside["sentiment"]
        assert inside["async"] == inside["sentiment"]
        assert inside["refused"] == [422, "invalid_input"]
        assert inside["unknown"] == [404, "model_not_found"]
        FIGURES.append(
            f"in-cluster SDK (Serve handles): canary 50% over 40 predicts: {inside['split']}"
        )
    finally:
        client.undeploy("oipcols")
        if "oipshared" in {m.name for m in client.models()}:
            client.undeploy("oipshared")
    gone = httpx.post(f"{url}/infer", json=grid, headers=headers, timeout=30)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_deployed"), gone.text


def _grpc_infers(
    live: Settings, model: str, rows: Any, calls: int
) -> tuple[dict[str, Any], dict[str, int]]:
    """ModelInfer ``calls`` times with the standard stub: each answering version's labels
    (every answer of one version must agree), and how often each version answered."""
    import grpc

    from maas_ray.serving.proto import predict_v2_pb2 as pb
    from maas_ray.serving.proto import predict_v2_pb2_grpc as stubs

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP64", shape=list(rows.shape)
    )
    request = pb.ModelInferRequest(
        model_name=model, inputs=[tensor], raw_input_contents=[rows.astype("<f8").tobytes()]
    )
    metadata = [("application", GATEWAY_APP), ("authorization", auth(live)["authorization"])]
    answers: dict[str, Any] = {}
    counts: dict[str, int] = {}
    with grpc.insecure_channel(f"{live.host}:{live.grpc_port}") as channel:
        stub = stubs.GRPCInferenceServiceStub(channel)
        for _ in range(calls):
            answer, call = stub.ModelInfer.with_call(request, metadata=metadata, timeout=30)
            assert dict(call.trailing_metadata())["x-maas-model-version"] == answer.model_version
            out = answer.outputs[0]
            got = _raw_values(out.datatype, answer.raw_output_contents[0])
            assert answers.setdefault(answer.model_version, got) == got
            counts[answer.model_version] = counts.get(answer.model_version, 0) + 1
    return answers, counts


IN_CLUSTER = """
import asyncio, json, sys
import ray
from maas_ray import AsyncMaaS, MaaS
from maas_ray.errors import RemoteError

cfg = json.loads(sys.argv[1])
ray.init(address=cfg["address"])
body = json.dumps({"dataframe_split": cfg["frame"]}).encode()
sdk = MaaS(in_cluster=True)
seen, answers = {}, []
for _ in range(40):
    answer = sdk.predict_raw("oipcols", body, "application/json")
    seen[answer["version"]] = seen.get(answer["version"], 0) + 1
    if answer["predictions"] not in answers:
        answers.append(answer["predictions"])
last = max(seen, key=int)
pinned = {sdk.predict_raw("oipcols", body, "application/json", last)["version"] for _ in range(5)}
shared = sdk.predict_raw("oipshared", body, "application/json")
out = {
    "dedicated": sorted(seen), "split": seen, "pinned": sorted(pinned), "answers": answers,
    "shared": [shared["predictions"], shared["version"]],
    "sentiment": sdk.predict("sentiment", cfg["text"]),
}

@ray.remote(num_cpus=0)
def in_a_task(rows):
    from maas_ray import MaaS
    return MaaS().predict("sentiment", rows)  # a Ray worker: handles, detected

out["task"] = ray.get(in_a_task.remote(cfg["text"]))

async def from_asyncio():
    async with AsyncMaaS(in_cluster=True) as sdk:
        return await sdk.predict("sentiment", cfg["text"])

out["async"] = asyncio.run(from_asyncio())
for key, name, rows in (("refused", "sentiment", [1, 2]), ("unknown", "nosuch", [1])):
    try:
        sdk.predict(name, rows)
    except RemoteError as exc:
        out[key] = [exc.status_code, exc.remote_code]
print("RESULT " + json.dumps(out))
"""


def _in_cluster(live: Settings, frame: dict[str, Any], text: list[str]) -> dict[str, Any]:
    """Run IN_CLUSTER as a Ray job on the platform's cluster: what it saw."""
    config = {"address": live.ray_address, "frame": frame, "text": text}
    proc = ray_job_submit(live, "python", "-c", IN_CLUSTER, json.dumps(config))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result
