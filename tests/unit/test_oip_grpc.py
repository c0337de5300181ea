"""The Open Inference Protocol v2 over gRPC: messages <-> tensors (serving/oip_grpc.py),
the gateway's RPCs with fake parts (gateway/grpc_front.py), and Serve's gRPC config."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import grpc
import numpy as np
import orjson
import pytest
from mlflow.types import Schema, TensorSpec
from ray.serve.schema import ServeDeploySchema

from maas_ray.control.applications import GRPC_SERVICER, serve_config
from maas_ray.errors import BadRequest, Forbidden, Unauthorized
from maas_ray.gateway.grpc_front import GrpcFront
from maas_ray.gateway.oip_front import Inferred, Target
from maas_ray.routes import match
from maas_ray.serving import oip_grpc
from maas_ray.serving.loopback import node_address
from maas_ray.serving.proto import predict_v2_pb2 as pb

Tensor = pb.ModelInferRequest.InferInputTensor


def _request(*inputs: Any, raw: list[bytes] | None = None, **fields: Any) -> Any:
    return pb.ModelInferRequest(
        model_name="m", inputs=list(inputs), raw_input_contents=raw or [], **fields
    )


def test_typed_contents_and_raw_bytes_decode_alike() -> None:
    typed = Tensor(
        name="x",
        datatype="FP32",
        shape=[2, 2],
        contents=pb.InferTensorContents(fp32_contents=[1, 2, 3, 4]),
    )
    raw = Tensor(name="x", datatype="FP32", shape=[2, 2])
    blob = np.arange(1, 5, dtype="<f4").tobytes()
    for request in (_request(typed, id="r1"), _request(raw, raw=[blob], id="r1")):
        decoded = oip_grpc.decode(request)
        assert decoded.id == "r1"
        assert decoded.binary is True
        assert decoded.outputs is None
        assert decoded.tensors[0].values.tolist() == [[1, 2], [3, 4]]
    text = Tensor(
        name="t",
        datatype="BYTES",
        shape=[2],
        contents=pb.InferTensorContents(bytes_contents=["好".encode(), b"ok"]),
    )
    assert oip_grpc.decode(_request(text)).tensors[0].values.tolist() == ["好", "ok"]
    prefixed = b"".join(struct.pack("<I", len(s)) + s for s in ("好".encode(), b"ok"))
    raw_text = _request(Tensor(name="t", datatype="BYTES", shape=[2]), raw=[prefixed])
    assert oip_grpc.decode(raw_text).tensors[0].values.tolist() == ["好", "ok"]
    wants = pb.ModelInferRequest.InferRequestedOutputTensor(name="predictions")
    assert oip_grpc.decode(_request(typed, outputs=[wants])).outputs == [("predictions", None)]


def _contents(**kw: Any) -> Any:
    return pb.InferTensorContents(**kw)


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        (_request(), "no inputs"),
        (_request(Tensor(name="", datatype="FP32", shape=[1])), "name"),
        (_request(Tensor(name="x", datatype="FP99", shape=[1])), "FP99"),
        (_request(Tensor(name="x", datatype="FP32", shape=[-1], contents=_contents())), "negative"),
        (_request(Tensor(name="x", datatype="FP32", shape=[3], contents=_contents())), "elements"),
        (
            _request(
                Tensor(name="x", datatype="INT8", shape=[1], contents=_contents(int_contents=[300]))
            ),
            "range",
        ),
        (
            _request(
                Tensor(name="x", datatype="FP32", shape=[1], contents=_contents(fp64_contents=[1]))
            ),
            "elements",
        ),
        (_request(Tensor(name="x", datatype="FP16", shape=[1])), "raw_input_contents only"),
        (_request(Tensor(name="x", datatype="FP32", shape=[1]), raw=[b"", b""]), "2 entries"),
        (_request(Tensor(name="x", datatype="FP32", shape=[2]), raw=[b"\0" * 4]), "bytes for"),
        (
            _request(Tensor(name="x", datatype="BYTES", shape=[2**60]), raw=[b"\0" * 8]),
            "cannot hold",
        ),
        (_request(Tensor(name="x", datatype="FP32", shape=[2**40, 2**40]), raw=[b""]), "bytes for"),
        (
            _request(
                Tensor(name="x", datatype="FP32", shape=[1], contents=_contents(fp32_contents=[1])),
                raw=[b"\0" * 4],
            ),
            "both",
        ),
        (
            _request(
                Tensor(
                    name="x",
                    datatype="BYTES",
                    shape=[1],
                    contents=_contents(bytes_contents=[b"\xff"]),
                )
            ),
            "UTF-8",
        ),
        (
            _request(
                Tensor(
                    name="x", datatype="BOOL", shape=[1], contents=_contents(bool_contents=[True])
                ),
                Tensor(
                    name="x", datatype="BOOL", shape=[1], contents=_contents(bool_contents=[True])
                ),
            ),
            "repeat",
        ),
    ],
)
def test_a_malformed_request_is_a_400_that_names_it(request_: Any, said: str) -> None:
    with pytest.raises(BadRequest, match=said):
        oip_grpc.decode(request_)


def test_the_answer_is_raw_bytes_per_output_and_errors_map_to_grpc_statuses() -> None:
    decoded = oip_grpc.decode(
        _request(
            Tensor(name="x", datatype="FP32", shape=[1], contents=_contents(fp32_contents=[1]))
        )
    )
    out = oip_grpc.infer_response(["a", "bc"], "m", "3", decoded, None)
    assert (out.model_name, out.model_version, out.id) == ("m", "3", "")
    assert (out.outputs[0].name, out.outputs[0].datatype, list(out.outputs[0].shape)) == (
        "predictions",
        "BYTES",
        [2],
    )
    assert out.raw_output_contents[0] == b"\1\0\0\0a\2\0\0\0bc"
    floats = Schema([TensorSpec(np.dtype(np.float32), (-1,))])
    out = oip_grpc.infer_response([0.5, 1.5], "m", "3", decoded, floats)
    assert out.outputs[0].datatype == "FP32"
    assert np.frombuffer(out.raw_output_contents[0], "<f4").tolist() == [0.5, 1.5]
    assert oip_grpc.status_of(400) == grpc.StatusCode.INVALID_ARGUMENT
    assert oip_grpc.status_of(401) == grpc.StatusCode.UNAUTHENTICATED
    assert oip_grpc.status_of(403) == grpc.StatusCode.PERMISSION_DENIED
    assert oip_grpc.status_of(404) == grpc.StatusCode.NOT_FOUND
    assert oip_grpc.status_of(429) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert oip_grpc.status_of(503) == grpc.StatusCode.UNAVAILABLE
    assert oip_grpc.status_of(418) == grpc.StatusCode.INVALID_ARGUMENT
    assert oip_grpc.status_of(500) == grpc.StatusCode.INTERNAL
    meta = oip_grpc.metadata_response(
        {
            "name": "m",
            "versions": ["3"],
            "platform": "mlflow_pyfunc",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
            "outputs": [],
        }
    )
    assert list(meta.inputs[0].shape) == [-1, 3]


# -- the gateway's RPCs, with a fake guard and a fake REST front ---------------------------
class _Context:
    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = metadata
        self.code: Any = None
        self.details = ""
        self.trailing: list[tuple[str, str]] = []

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return list(self.metadata.items())

    def set_code(self, code: Any) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def set_trailing_metadata(self, trailing: list[tuple[str, str]]) -> None:
        self.trailing = trailing


class _Guard:
    def check(self, method: str, path: str, authorization: str | None, found: Any) -> None:
        if authorization is None:
            raise Unauthorized("send an API key")
        if authorization != "Bearer good":
            raise Forbidden(f"lacks {' or '.join(found.required)}")


class _Front:
    def __init__(self, status: int = 200, out: bytes = b"") -> None:
        self.status, self.out = status, out
        self.seen: list[Any] = []

    async def target(self, name: str) -> Target:
        return Target(True, None, {"version": "2"})

    async def infer(
        self, name: str, asked: Any, target: Any, decoded: Any, rid: str, headers: Any
    ) -> Inferred:
        self.seen.append((name, asked, rid, headers.get("authorization")))
        if self.status != 200:
            return Inferred(self.status, self.out, "2", {})
        return Inferred(200, b"", "2", {}, predictions=[7])


class _Gateway:
    def __init__(self, front: _Front) -> None:
        self.guard, self.oip = _Guard(), front


def _infer(front: _Front, metadata: dict[str, str], name: str = "m") -> tuple[Any, _Context]:
    context = _Context(metadata)
    request = _request(
        Tensor(name="x", datatype="INT64", shape=[1], contents=_contents(int64_contents=[1]))
    )
    request.model_name = name
    return asyncio.run(GrpcFront(_Gateway(front)).model_infer(request, context)), context  # type: ignore[arg-type]


def test_model_infer_checks_the_rest_twins_scope_and_carries_the_request_id() -> None:
    front = _Front()
    answer, context = _infer(front, {"authorization": "Bearer good", "x-request-id": "r9"})
    assert context.code is None
    assert np.frombuffer(answer.raw_output_contents[0], "<i8").tolist() == [7]
    assert ("x-request-id", "r9") in context.trailing
    assert ("x-maas-model-version", "2") in context.trailing
    assert front.seen == [("m", None, "r9", "Bearer good")]
    _, context = _infer(_Front(), {})
    assert context.code == grpc.StatusCode.UNAUTHENTICATED
    _, context = _infer(_Front(), {"authorization": "Bearer other"})
    assert context.code == grpc.StatusCode.PERMISSION_DENIED
    assert "predict:m" in context.details
    _, context = _infer(_Front(), {"authorization": "Bearer good"}, name="a/b")
    assert context.code == grpc.StatusCode.NOT_FOUND
    refused = _Front(422, b'{"error": "column b missing", "code": "schema_mismatch"}')
    answer, context = _infer(refused, {"authorization": "Bearer good"})
    assert (context.code, context.details) == (grpc.StatusCode.INVALID_ARGUMENT, "column b missing")
    assert answer == pb.ModelInferResponse()
    assert match("POST", "/v2/models/m/infer").required == ("predict:m",)


def test_serve_config_opens_grpc_only_when_asked_and_binds_the_node_address() -> None:
    plain = serve_config([], "127.0.0.1", 8000, "http://mlflow")
    assert "grpc_options" not in plain
    config = serve_config([], "127.0.0.1", 8000, "http://mlflow", grpc_port=9000)
    parsed = ServeDeploySchema.model_validate(config)
    assert parsed.grpc_options.port == 9000
    assert parsed.grpc_options.grpc_servicer_functions == [GRPC_SERVICER]
    assert node_address("[::]:40001", "127.0.0.1") == "127.0.0.1:40001"
    assert node_address("[::]:40001", "fd00::1") == "[fd00::1]:40001"
    assert node_address("10.0.0.1:5", "127.0.0.1") == "10.0.0.1:5"


def test_the_shipped_serve_configs_open_the_same_grpc_service() -> None:
    import yaml

    from tests.conftest import ROOT

    examples = yaml.safe_load((ROOT / "deployments" / "examples.yaml").read_text())
    service = yaml.safe_load((ROOT / "deployments" / "rayservice.yaml").read_text())
    kube = yaml.safe_load(service["spec"]["serveConfigV2"])
    for config in (examples, kube):
        assert config["grpc_options"]["grpc_servicer_functions"] == [GRPC_SERVICER]


def test_every_other_ingress_answers_unimplemented_and_names_the_gateway() -> None:
    from maas_ray.gateway.management import ManagementAPI
    from maas_ray.serving.deployment import ModelServer
    from maas_ray.serving.grpc_elsewhere import GrpcElsewhere
    from maas_ray.serving.shared import SharedPool
    from maas_ray.spec import GATEWAY_APP

    for deployment in (ModelServer, ManagementAPI, SharedPool):
        assert issubclass(deployment.func_or_class, GrpcElsewhere)  # type: ignore[attr-defined]
    rpcs = ("ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata")
    for rpc in (*rpcs, "ModelInfer"):
        context = _Context({})
        reply = asyncio.run(getattr(GrpcElsewhere(), rpc)(None, context))
        assert reply.ByteSize() == 0
        assert context.code == grpc.StatusCode.UNIMPLEMENTED
        assert f"application: {GATEWAY_APP}" in context.details


EXPLANATION = {
    "model": "m",
    "version": "2",
    "method": "shap.TreeExplainer",
    "output": "probability",
    "background_rows": 40,
    "explanations": [
        {
            "prediction": 0.8,
            "baseline": 0.6,
            "class": "1",
            "attributions": [{"feature": "a", "value": 0.25}, {"feature": "b", "value": -0.05}],
        }
    ],
}


def test_explain_is_a_bool_param_and_the_answer_carries_the_explanations() -> None:
    x = Tensor(name="x", datatype="INT64", shape=[1], contents=_contents(int64_contents=[1]))
    assert oip_grpc.decode(_request(x)).explain is False
    asked = _request(x, parameters={"explain": pb.InferParameter(bool_param=True)})
    decoded = oip_grpc.decode(asked)
    assert decoded.explain is True
    with pytest.raises(BadRequest, match="bool_param"):
        oip_grpc.decode(_request(x, parameters={"explain": pb.InferParameter(string_param="1")}))
    out = oip_grpc.infer_response([1], "m", "2", decoded, None, EXPLANATION)
    assert [(o.name, o.datatype, list(o.shape)) for o in out.outputs] == [
        ("predictions", "INT64", [1]),
        ("explanations", "BYTES", [1]),
    ]
    raw = out.raw_output_contents[1]
    size = int.from_bytes(raw[:4], "little")
    assert orjson.loads(raw[4 : 4 + size]) == EXPLANATION["explanations"][0]
    assert out.parameters["explain_method"].string_param == "shap.TreeExplainer"
    assert out.parameters["explain_output"].string_param == "probability"
    assert out.parameters["explain_background_rows"].int64_param == 40


def test_model_infer_answers_what_the_rest_front_explained() -> None:
    class Explaining(_Front):
        async def infer(self, *args: Any) -> Inferred:
            name, asked, target, decoded, rid, headers = args
            self.seen.append(decoded.explain)
            return Inferred(200, b"", "2", {}, predictions=[7], explanation=EXPLANATION)

    front = Explaining()
    context = _Context({"authorization": "Bearer good"})
    request = _request(
        Tensor(name="x", datatype="INT64", shape=[1], contents=_contents(int64_contents=[1])),
        parameters={"explain": pb.InferParameter(bool_param=True)},
    )
    answer = asyncio.run(GrpcFront(_Gateway(front)).model_infer(request, context))  # type: ignore[arg-type]
    assert context.code is None, context.details
    assert front.seen == [True]
    assert [o.name for o in answer.outputs] == ["predictions", "explanations"]
    assert answer.parameters["explain_method"].string_param == "shap.TreeExplainer"


def test_the_requests_own_parameters_become_the_models_params() -> None:
    typed = Tensor(
        name="x", datatype="FP32", shape=[1], contents=pb.InferTensorContents(fp32_contents=[1])
    )
    request = _request(typed)
    request.parameters["explain"].bool_param = True
    request.parameters["beam"].int64_param = 2
    request.parameters["lang"].string_param = "en"
    decoded = oip_grpc.decode(request)
    assert decoded.explain is True
    assert decoded.params == {"beam": 2, "lang": "en"}
    assert oip_grpc.decode(_request(typed)).params is None
