"""Open Inference Protocol v2 requests (REST) -> the scoring payload of the v1 route.

KServe, Triton and MLServer clients speak OIP v2: named tensors with a shape and a
datatype, as JSON ``data`` or, with the binary tensor extension, as raw bytes after
a JSON header (``Inference-Header-Content-Length``). This module only translates: a
request becomes the MLflow scoring payload the v1 predict takes, so the canary split,
the shadow, validation against the signature and the prediction log are the v1
path's: ``oip_payload.py`` shapes the tensors as the signature wants them, and the
answer's way back is ``oip_answer.py``. Pure functions, no Ray.

Every malformed request is a ``BadRequest`` (400) that names the tensor: a shape that
does not match the data, a negative dimension, a datatype the signature does not take,
a ``binary_data_size`` past the body, bytes left over after the last tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from maas_ray.errors import BadRequest, InvalidJSON, first_error
from maas_ray.serving.decode import MAX_JSON_DEPTH, _check_depth

HEADER_LENGTH = "inference-header-content-length"  # the binary tensor extension's header
BINARY_SIZE = "binary_data_size"
# OIP datatype -> numpy dtype (BYTES: UTF-8 text, kept as Python str).
NUMPY: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": object,
}
# Request parameters the protocol, or a Triton or MLServer client, uses for itself; the
# others are the model's own and reach its predict as MLflow ``params``.
PROTOCOL_PARAMETERS = frozenset(
    {
        "binary_data_output",
        "explain",
        "content_type",
        "headers",
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
    }
)
_HELD = {"O": "nulls, mixed or out-of-range values", "U": "text", "f": "fractions", "b": "booleans"}
_WANTED = {"b": "true/false expected", "biuf": "numbers expected", "iu": "whole numbers expected"}


class InferInput(BaseModel):
    """One input tensor of a request."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=256)
    shape: list[StrictInt]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any = None


class RequestedOutput(BaseModel):
    """An output the caller asks for (``binary_data``: as raw bytes)."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=256)
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """``POST /v2/models/{name}[/versions/{v}]/infer``: inputs, optional outputs, id."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class _Flags(BaseModel):
    binary_data_output: StrictBool = False
    explain: StrictBool = False  # answer each row's explanation beside the predictions


@dataclass(frozen=True)
class Tensor:
    """A decoded input: ``values`` shaped as ``shape`` (BYTES: an object array of str)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: np.ndarray


@dataclass(frozen=True)
class Decoded:
    """A checked request: its tensors, and what it asked of the answer."""

    id: str | None
    tensors: list[Tensor]
    outputs: list[tuple[str, bool | None]] | None  # (name, binary or None: the default)
    binary: bool  # parameters.binary_data_output
    explain: bool = False  # parameters.explain: the ``explanations`` output too
    params: dict[str, Any] | None = None  # the model's own parameters (model_params)


def model_params(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """A request's parameters but the protocol's (PROTOCOL_PARAMETERS): the v1 body's
    ``params``, checked against the version's params schema like a v1 request's."""
    found = {k: v for k, v in (parameters or {}).items() if k not in PROTOCOL_PARAMETERS}
    return found or None


def decode(body: bytes, header_length: str | None, max_depth: int = MAX_JSON_DEPTH) -> Decoded:
    """Parse and check an infer request (JSON, or the binary extension's JSON + bytes)."""
    header, blobs = _split(body, header_length)
    _check_depth(header, max_depth)
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"malformed JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadRequest(f"got a JSON {type(doc).__name__}: send an object with 'inputs'")
    try:
        request = InferenceRequest.model_validate(doc)
        flags = _Flags.model_validate(request.parameters or {})
    except ValidationError as exc:
        raise BadRequest(_validation_message(exc)) from None
    offset = 0
    tensors = []
    for tensor in request.inputs:
        decoded, offset = _tensor(tensor, blobs, offset)
        tensors.append(decoded)
    if offset != len(blobs):
        raise BadRequest(
            f"{len(blobs) - offset} bytes after the last binary tensor: each input's "
            f"'{BINARY_SIZE}' must account for every byte after the JSON header"
        )
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise BadRequest(f"input names repeat: {names}")
    outputs = None
    if request.outputs is not None:
        outputs = [(o.name, _binary_flag(o)) for o in request.outputs]
    params = model_params(request.parameters)
    return Decoded(request.id, tensors, outputs, flags.binary_data_output, flags.explain, params)


# -- tensors ----------------------------------------------------------------------------
def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        raise BadRequest(f"got '{header_length[:40]}' for {HEADER_LENGTH}: not a number") from None
    if not 0 < size <= len(body):
        raise BadRequest(
            f"{HEADER_LENGTH} is {size}, the body has {len(body)} bytes: the JSON header "
            "must be within the body"
        )
    return body[:size], body[size:]


def _tensor(spec: InferInput, blobs: bytes, offset: int) -> tuple[Tensor, int]:
    """One input checked and decoded; ``offset``: where its binary data starts."""
    name, datatype = spec.name, spec.datatype
    if datatype not in NUMPY:
        raise BadRequest(
            f"input '{name}': datatype '{datatype[:20]}' is not one this platform takes "
            f"({', '.join(NUMPY)})"
        )
    if any(d < 0 for d in spec.shape):
        raise BadRequest(f"input '{name}': shape {spec.shape} has a negative dimension")
    count = math.prod(spec.shape)
    size = (spec.parameters or {}).get(BINARY_SIZE)
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"input '{name}': {BINARY_SIZE} must be a whole number >= 0")
        if spec.data is not None:
            raise BadRequest(f"input '{name}': has both 'data' and {BINARY_SIZE}: send one")
        if offset + size > len(blobs):
            raise BadRequest(
                f"input '{name}': {BINARY_SIZE} {size} runs past the body (bytes "
                f"{offset}..{offset + size} of {len(blobs)} after the JSON header)"
            )
        raw = blobs[offset : offset + size]
        values = from_bytes(name, datatype, raw, count)
        offset += size
    else:
        if not isinstance(spec.data, list):
            raise BadRequest(f"input '{name}': 'data' must be an array (or send {BINARY_SIZE})")
        values = _from_json(name, datatype, spec.data, count)
    return Tensor(name, datatype, tuple(spec.shape), values.reshape(spec.shape)), offset


def _from_json(name: str, datatype: str, data: list[Any], count: int) -> np.ndarray:
    """JSON ``data`` (flat or nested) as a flat array of ``datatype``, checked."""
    if datatype == "BYTES":
        flat = list(_leaves(data))
        if not all(isinstance(x, str) for x in flat):
            raise BadRequest(f"input '{name}': BYTES data must be strings")
        values = np.empty(len(flat), dtype=object)
        values[:] = flat
    else:
        try:
            values = np.asarray(data)
        except ValueError:
            raise BadRequest(
                f"input '{name}': 'data' is ragged (rows of different lengths)"
            ) from None
        fits = {"BOOL": "b", "FP16": "biuf", "FP32": "biuf", "FP64": "biuf"}.get(datatype, "iu")
        if values.size == 0:
            values = np.zeros(0, dtype=NUMPY[datatype])
        elif values.dtype.kind not in fits:
            held = _HELD.get(values.dtype.kind, "values of another kind")
            raise BadRequest(f"input '{name}': {datatype} data holds {held} ({_WANTED[fits]})")
        values = cast(name, datatype, values.ravel())
    if values.size != count:
        raise BadRequest(f"input '{name}': shape holds {count} elements, 'data' has {values.size}")
    return values


def cast(name: str, datatype: str, values: np.ndarray) -> np.ndarray:
    target = np.dtype(NUMPY[datatype])
    if target.kind in "iu" and values.size:
        info = np.iinfo(target)
        if int(values.min()) < info.min or int(values.max()) > info.max:
            raise BadRequest(f"input '{name}': a value is out of {datatype}'s range")
    with np.errstate(over="ignore"):
        cast = values.astype(target)
    if target.kind == "f" and not np.isfinite(cast).all():
        raise BadRequest(f"input '{name}': a value is out of {datatype}'s range")
    return cast


def from_bytes(name: str, datatype: str, raw: bytes, count: int) -> np.ndarray:
    """The binary extension's bytes of one tensor (little-endian; BYTES length-prefixed)."""
    if datatype == "BYTES":
        return _strings(name, raw, count)
    dtype = np.dtype(NUMPY[datatype]).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise BadRequest(
            f"input '{name}': {len(raw)} bytes for {count} {datatype} elements "
            f"({count * dtype.itemsize} expected)"
        )
    values = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL":
        return values.view(np.uint8) != 0
    if datatype.startswith("FP") and not np.isfinite(values).all():
        raise BadRequest(f"input '{name}': NaN or infinity in {datatype} data")
    return values.astype(dtype.newbyteorder("="))


def _strings(name: str, raw: bytes, count: int) -> np.ndarray:
    """BYTES elements: each a 4-byte little-endian length, then that many bytes."""
    if count * 4 > len(raw):  # before any allocation: a shape can claim 2**62 elements
        raise BadRequest(
            f"input '{name}': {len(raw)} bytes cannot hold {count} BYTES elements (each "
            "is a 4-byte length, then its bytes)"
        )
    out = np.empty(count, dtype=object)
    at = 0
    for i in range(count):
        if at + 4 > len(raw):
            raise BadRequest(f"input '{name}': binary BYTES data ends after {i} of {count}")
        size = int.from_bytes(raw[at : at + 4], "little")
        at += 4
        if at + size > len(raw):
            raise BadRequest(f"input '{name}': element {i} runs past its binary data")
        try:
            out[i] = raw[at : at + size].decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"input '{name}': element {i} is not UTF-8 text") from None
        at += size
    if at != len(raw):
        raise BadRequest(f"input '{name}': {len(raw) - at} bytes after its {count} elements")
    return out


def _leaves(data: list[Any]) -> Any:
    """The leaves of nested lists, in order (no recursion: any depth is safe)."""
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def _binary_flag(output: RequestedOutput) -> bool | None:
    flag = (output.parameters or {}).get("binary_data")
    if flag is not None and not isinstance(flag, bool):
        raise BadRequest(f"output '{output.name}': binary_data must be true or false")
    return flag


def _validation_message(exc: ValidationError) -> str:
    where, text = first_error(exc)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {text}{more}"[:600]
