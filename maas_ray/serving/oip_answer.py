"""Open Inference Protocol v2 answers: the v1 predictions as OIP outputs, signatures as
OIP metadata.

The way in is ``oip.py``. A model's answer arrives as the v1 route wrote it (JSON
``predictions``); each output becomes a tensor with a shape and a datatype (the output
signature's where it declares one, else what the values are), as JSON ``data`` or as
raw bytes after the JSON header when the caller asked for binary outputs (Triton's
client does by default).

With ``parameters.explain`` the model's explanation (``maas_ray/explain/answer.py``)
comes beside the predictions: one more output, ``explanations``, BYTES of shape
``[rows]``, each element one row's explanation as JSON (``prediction``, ``baseline``,
``class``, ``attributions`` ranked by size); the answer's ``parameters`` name the
method, what ``prediction`` is and the background rows. OIP has no tensor type for a
record, and every client reads BYTES.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from mlflow.types import Schema

from maas_ray.errors import BadRequest
from maas_ray.serving.oip import BINARY_SIZE, HEADER_LENGTH, NUMPY, Decoded
from maas_ray.serving.oip_payload import datatype_of
from maas_ray.wire import JSON

SERVER = "maas_ray"
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "mlflow_pyfunc"
OUTPUT = "predictions"  # an unnamed output's name: the v1 answer's key
OCTETS = "application/octet-stream"
EXPLANATIONS = "explanations"  # the output that carries each row's explanation


def schema_of(raw: Any) -> Schema | None:
    """A signature part as ``describe()`` answers it (``Schema.to_dict()``), or None."""
    if not raw:
        return None
    return Schema.from_json(json.dumps(raw))


def tensors_metadata(schema: Schema | None, prefix: str) -> list[dict[str, Any]]:
    """One entry per tensor or column of a signature part: name, datatype, shape (-1:
    any size). Unnamed ones are ``{prefix}-{i}``; a type OIP has no name for is BYTES."""
    if schema is None:
        return []
    out = []
    for i, spec in enumerate(schema.inputs):
        name = spec.name or f"{prefix}-{i}"
        if schema.is_tensor_spec():
            datatype, shape = datatype_of(spec.type), [int(d) for d in getattr(spec, "shape", [])]
        else:
            datatype, shape = datatype_of(spec.type), [-1]
        out.append({"name": name, "datatype": datatype or "BYTES", "shape": shape})
    return out


def output_metadata(schema: Schema | None) -> list[dict[str, Any]]:
    """The outputs a client will get (a single unnamed output is ``predictions``)."""
    out = tensors_metadata(schema, "output")
    if len(out) == 1 and schema is not None and not schema.inputs[0].name:
        out[0]["name"] = OUTPUT
    return out


def model_metadata(name: str, versions: list[str], described: dict[str, Any]) -> dict[str, Any]:
    """``GET /v2/models/{name}[/versions/{v}]`` from a replica's ``describe()``."""
    return {
        "name": name,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": tensors_metadata(schema_of(described.get("inputs")), "input"),
        "outputs": output_metadata(schema_of(described.get("outputs"))),
    }


def answer(
    predictions: Any,
    model: str,
    version: str,
    decoded: Decoded,
    outputs_schema: Schema | None,
    explanation: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The infer answer (body, headers) of v1 ``predictions`` (and of ``explanation``,
    an ``Explanations`` as JSON, when the request asked for one)."""
    tensors, blobs = [], []
    outputs = chosen(predictions, decoded, outputs_schema, explanation)
    for name, values, datatype, binary in outputs:
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if binary:
            blob = to_bytes(values, datatype)
            tensor["parameters"] = {BINARY_SIZE: len(blob)}
            blobs.append(blob)
        else:
            flat = values.ravel()
            tensor["data"] = flat.tolist() if datatype == "BYTES" else flat
        tensors.append(tensor)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if decoded.id is not None:
        doc["id"] = decoded.id
    if explanation is not None:
        doc["parameters"] = explain_parameters(explanation)
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, {"content-type": JSON}
    return header + b"".join(blobs), {"content-type": OCTETS, HEADER_LENGTH: str(len(header))}


def explain_parameters(explanation: dict[str, Any]) -> dict[str, Any]:
    """The answer's ``parameters`` of an explained infer: how the rows were explained."""
    return {
        "explain_method": str(explanation["method"]),
        "explain_output": str(explanation["output"]),
        "explain_background_rows": int(explanation["background_rows"]),
    }


def chosen(
    predictions: Any,
    decoded: Decoded,
    outputs_schema: Schema | None,
    explanation: dict[str, Any] | None = None,
) -> list[tuple[str, np.ndarray, str, bool]]:
    """The outputs the request asked for (all by default): name, values, datatype, and
    whether as raw bytes; an output the model does not answer is a 400. With
    ``explanation``, ``explanations`` is one of them (after the model's own)."""
    found = _outputs(predictions, outputs_schema)
    if explanation is not None:
        rows = [orjson.dumps(row).decode() for row in explanation["explanations"]]
        texts = np.empty(len(rows), dtype=object)
        texts[:] = rows
        found[EXPLANATIONS] = (texts, "BYTES")
    if decoded.outputs is None:
        return [(name, *found[name], decoded.binary) for name in found]
    out = []
    for name, flag in decoded.outputs:
        if name not in found:
            raise BadRequest(f"output '{name}': the model answers {list(found)}")
        out.append((name, *found[name], decoded.binary if flag is None else flag))
    return out


def _outputs(predictions: Any, schema: Schema | None) -> dict[str, tuple[np.ndarray, str]]:
    """Each output's values and datatype: a mapping answer is one output per key, a
    list of records one per column, anything else the one output."""
    declared = {}
    if schema is not None:
        declared = {spec.name or OUTPUT: datatype_of(spec.type) for spec in schema.inputs}
    if isinstance(predictions, dict):
        items = list(predictions.items())
    elif _records(predictions):
        items = [(k, [row[k] for row in predictions]) for k in predictions[0]]
    else:
        only = next(iter(declared)) if len(declared) == 1 else OUTPUT
        items = [(only, predictions)]
    return {str(k): _array(v, declared.get(str(k))) for k, v in items}


def _records(predictions: Any) -> bool:
    if not isinstance(predictions, list) or not predictions:
        return False
    first = predictions[0]
    return isinstance(first, dict) and all(
        isinstance(r, dict) and r.keys() == first.keys() for r in predictions
    )


def _array(values: Any, declared: str | None) -> tuple[np.ndarray, str]:
    """Values as an array and its datatype (the declared one where they fit it)."""
    if not isinstance(values, list):
        values = [values]
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        return _as_text(values)
    kind = array.dtype.kind
    if kind == "O" and _numbers_or_nulls(array):
        array, kind = array.astype(np.float64), "f"  # null was NaN
    if kind == "b":
        return array, "BOOL"
    if kind in "iuf":
        datatype = "FP64" if kind == "f" else "INT64"
        if declared is not None and declared != "BYTES" and declared != "BOOL":
            if kind == "f" and not declared.startswith("FP"):
                declared = None  # fractions where whole numbers were declared: keep them
            datatype = declared or datatype
        return array.astype(NUMPY[datatype]), datatype
    if kind == "U" and all(isinstance(v, str) for v in array.ravel().tolist()):
        return array.astype(object), "BYTES"
    return _as_text(values)


def _numbers_or_nulls(array: np.ndarray) -> bool:
    leaves = array.ravel().tolist()
    return all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in leaves
    )


def _as_text(values: list[Any]) -> tuple[np.ndarray, str]:
    """Rows OIP cannot type (ragged, mixed): one BYTES element per row, its JSON text."""
    out = np.empty(len(values), dtype=object)
    out[:] = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in values]
    return out, "BYTES"


def to_bytes(values: np.ndarray, datatype: str) -> bytes:
    """The binary extension's bytes: little-endian; BYTES each length-prefixed."""
    if datatype == "BYTES":
        parts = []
        for item in values.ravel().tolist():
            raw = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return b"".join(parts)
    if datatype == "BOOL":
        return values.astype(np.uint8).tobytes()
    return values.astype(np.dtype(NUMPY[datatype]).newbyteorder("<")).tobytes()
