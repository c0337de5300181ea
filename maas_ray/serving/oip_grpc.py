"""Open Inference Protocol v2 over gRPC: protobuf messages <-> the REST path's tensors.

A ``ModelInferRequest`` becomes the same ``Decoded`` tensors a REST infer does
(``oip.py``), so the scoring payload, the canary split and the answer's outputs are
the REST path's; the answer goes back as raw little-endian bytes per output
(``raw_output_contents``), as Triton's server answers. Inputs come either as
``raw_input_contents`` (Triton's client sends these) or in the typed ``contents``
field of their datatype. Pure functions, no Ray.

Every malformed request is a ``BadRequest`` that names the tensor; ``STATUS`` maps
each HTTP status the platform answers to the gRPC status a client sees.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
import numpy as np

from maas_ray.errors import BadRequest
from maas_ray.serving.oip import NUMPY, Decoded, Tensor, cast, from_bytes, model_params
from maas_ray.serving.oip_answer import chosen, explain_parameters, to_bytes
from maas_ray.serving.proto import predict_v2_pb2 as pb

# Each datatype's typed field of InferTensorContents (FP16 has none: raw bytes only).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# The platform's HTTP statuses as gRPC status codes (what Triton's server does alike).
STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
NAME_MAX = 256


def status_of(http_status: int) -> grpc.StatusCode:
    """The gRPC status of an HTTP status (any other 4xx: INVALID_ARGUMENT; 5xx: INTERNAL)."""
    found = STATUS.get(http_status)
    if found is not None:
        return found
    return grpc.StatusCode.INVALID_ARGUMENT if http_status < 500 else grpc.StatusCode.INTERNAL


def decode(request: pb.ModelInferRequest) -> Decoded:
    """Check and decode a ModelInferRequest's inputs (raw bytes or typed contents)."""
    if not request.inputs:
        raise BadRequest("the request has no inputs: send at least one tensor")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: "
            "send one per input, in order"
        )
    tensors = []
    for i, spec in enumerate(request.inputs):
        name, datatype, shape = spec.name, spec.datatype, list(spec.shape)
        if not name or len(name) > NAME_MAX:
            raise BadRequest(f"input {i}: a name of 1 to {NAME_MAX} characters is required")
        if datatype not in NUMPY:
            raise BadRequest(
                f"input '{name}': datatype '{datatype[:20]}' is not one this platform takes "
                f"({', '.join(NUMPY)})"
            )
        if any(d < 0 for d in shape):
            raise BadRequest(f"input '{name}': shape {shape} has a negative dimension")
        count = math.prod(shape)
        if raw:
            if spec.HasField("contents"):
                raise BadRequest(
                    f"input '{name}': has both contents and raw_input_contents: send one"
                )
            values = from_bytes(name, datatype, raw[i], count)
        else:
            values = _from_contents(name, datatype, spec.contents, count)
        tensors.append(Tensor(name, datatype, tuple(shape), values.reshape(shape)))
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise BadRequest(f"input names repeat: {names}")
    outputs: list[tuple[str, bool | None]] | None = [(o.name, None) for o in request.outputs]
    params = model_params(
        {
            k: getattr(v, v.WhichOneof("parameter_choice") or "", None)
            for k, v in request.parameters.items()
        }
    )
    return Decoded(
        request.id or None, tensors, outputs or None, True, _explain_flag(request), params
    )


def _explain_flag(request: pb.ModelInferRequest) -> bool:
    """``parameters["explain"]``, a bool_param (as REST's ``"explain": true``)."""
    if "explain" not in request.parameters:
        return False
    param = request.parameters["explain"]
    if param.WhichOneof("parameter_choice") != "bool_param":
        raise BadRequest("parameter 'explain' must be a bool_param (true or false)")
    return bool(param.bool_param)


def _from_contents(
    name: str, datatype: str, contents: pb.InferTensorContents, count: int
) -> np.ndarray:
    field = CONTENTS.get(datatype)
    if field is None:
        raise BadRequest(f"input '{name}': {datatype} data travels in raw_input_contents only")
    held = getattr(contents, field)
    if len(held) != count:
        raise BadRequest(
            f"input '{name}': shape holds {count} elements, contents.{field} has {len(held)}"
        )
    if datatype == "BYTES":
        values = np.empty(count, dtype=object)
        try:
            values[:] = [item.decode("utf-8") for item in held]
        except UnicodeDecodeError:
            raise BadRequest(f"input '{name}': an element is not UTF-8 text") from None
        return values
    if datatype == "BOOL":
        return np.asarray(list(held), dtype=np.bool_)
    wide: Any = np.float64 if datatype.startswith("FP") else np.int64
    if datatype == "UINT64":
        wide = np.uint64
    return cast(name, datatype, np.asarray(list(held), dtype=wide))


def infer_response(
    predictions: Any,
    model: str,
    version: str,
    decoded: Decoded,
    outputs_schema: Any,
    explanation: dict[str, Any] | None = None,
) -> pb.ModelInferResponse:
    """The ModelInferResponse of v1 ``predictions``: every output as raw bytes; with
    ``explanation``, the REST answer's ``explanations`` output and parameters."""
    response = pb.ModelInferResponse(model_name=model, model_version=version, id=decoded.id or "")
    for name, values, datatype, _ in chosen(predictions, decoded, outputs_schema, explanation):
        response.outputs.add(name=name, datatype=datatype, shape=list(values.shape))
        response.raw_output_contents.append(to_bytes(values, datatype))
    if explanation is not None:
        for key, value in explain_parameters(explanation).items():
            if isinstance(value, int):
                response.parameters[key].int64_param = value
            else:
                response.parameters[key].string_param = value
    return response


def metadata_response(doc: dict[str, Any]) -> pb.ModelMetadataResponse:
    """The ModelMetadataResponse of the REST route's document (``oip_answer.model_metadata``)."""
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=doc["name"],
        versions=[str(v) for v in doc["versions"]],
        platform=doc["platform"],
        inputs=[tensor(**t) for t in doc["inputs"]],
        outputs=[tensor(**t) for t in doc["outputs"]],
    )
