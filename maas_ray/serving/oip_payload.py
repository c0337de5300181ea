"""OIP v2 tensors -> the scoring payload of the v1 route, as the signature wants them.

Tensor signatures take ``inputs`` (one array, or one per named tensor); column
signatures take ``dataframe_split``, from one 2-D tensor (a column per position) or
from one 1-D tensor per column; a datatype the signature does not take is a 400. The
request's decoding is ``oip.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.types import DataType, Schema

from maas_ray.errors import BadRequest
from maas_ray.serving.oip import NUMPY, Decoded, Tensor

_FLOATS = ("FP16", "FP32", "FP64")
_INTS = tuple(t for t in NUMPY if t.startswith(("INT", "UINT")))


def payload(decoded: Decoded, schema: Schema | None) -> dict[str, Any]:
    """The scoring payload (MLflow's format) the v1 predict takes for these tensors.

    Tensor signatures take ``inputs`` (one array, or one per named tensor); column
    signatures take ``dataframe_split``, from one 2-D tensor (a column per position)
    or from one 1-D tensor per column. Without a signature the tensors pass as given.
    The request's own parameters go as ``params``.
    """
    found = _inputs(decoded.tensors, schema)
    if decoded.params:
        found["params"] = decoded.params  # the request's own parameters (oip.model_params)
    return found


def _inputs(tensors: list[Tensor], schema: Schema | None) -> dict[str, Any]:
    if schema is None:
        if len(tensors) == 1:
            return {"inputs": _plain(tensors[0])}
        return {"inputs": {t.name: _plain(t) for t in tensors}}
    if schema.is_tensor_spec():
        return _tensor_payload(tensors, schema)
    return _column_payload(tensors, schema)


def _tensor_payload(tensors: list[Tensor], schema: Schema) -> dict[str, Any]:
    specs: list[Any] = list(schema.inputs)
    if len(specs) == 1 and len(tensors) == 1:
        _takes(tensors[0], specs[0].type)
        return {"inputs": _plain(tensors[0])}
    by_name = {s.name: s for s in specs}
    out = {}
    for tensor in tensors:
        spec = by_name.get(tensor.name)
        if spec is None:
            raise BadRequest(
                f"input '{tensor.name}': the model takes inputs {sorted(map(str, by_name))}"
            )
        _takes(tensor, spec.type)
        out[tensor.name] = _plain(tensor)
    return {"inputs": out}


def _column_payload(tensors: list[Tensor], schema: Schema) -> dict[str, Any]:
    columns: list[Any] = list(schema.inputs)
    named = schema.has_input_names()
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        tensor = tensors[0]
        if tensor.shape[1] != len(columns):
            raise BadRequest(
                f"input '{tensor.name}': shape {list(tensor.shape)} has {tensor.shape[1]} "
                f"columns, the model takes {len(columns)}"
            )
        for column in columns:
            _takes(tensor, column.type, column.name)
        rows = _plain(tensor)
        if not named:
            return {"inputs": rows}
        return {"dataframe_split": {"columns": [c.name for c in columns], "data": rows}}
    if len(tensors) == 1 and len(columns) == 1 and not named:
        _takes(tensors[0], columns[0].type)
        return {"inputs": _plain(tensors[0])}
    if not named:
        raise BadRequest(
            f"the model takes {len(columns)} unnamed columns: send one 2-D input "
            f"[rows, {len(columns)}]"
        )
    by_name = {c.name: c for c in columns}
    values = []
    for tensor in tensors:
        column = by_name.get(tensor.name)
        if column is None:
            raise BadRequest(
                f"input '{tensor.name}': the model takes columns {list(by_name)} (one 1-D "
                "input each), or one 2-D input"
            )
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise BadRequest(
                f"input '{tensor.name}': shape {list(tensor.shape)}; a column is [rows] or "
                "[rows, 1]"
            )
        _takes(tensor, column.type, column.name)
        values.append(_plain(tensor, flat=True))
    rows = {len(v) for v in values}
    if len(rows) != 1:
        raise BadRequest(f"the column inputs have different row counts: {sorted(rows)}")
    return {
        "dataframe_split": {
            "columns": [t.name for t in tensors],
            "data": [list(row) for row in zip(*values, strict=True)],
        }
    }


def _takes(tensor: Tensor, kind: Any, column: str | None = None) -> None:
    """Refuse a datatype the signature's type does not take (numbers of another kind
    pass where MLflow converts them: FP32 data for a double column)."""
    wanted = datatype_of(kind)
    if wanted is None:
        return  # a type OIP has no datatype for (arrays, objects): MLflow checks it
    accepted = {"FP32": _FLOATS, "FP64": _FLOATS, "FP16": _FLOATS, "BYTES": ("BYTES",)}.get(
        wanted, _INTS if wanted in _INTS else (wanted,)
    )
    if tensor.datatype not in accepted:
        where = f" (column '{column}')" if column else ""
        raise BadRequest(
            f"input '{tensor.name}'{where}: datatype {tensor.datatype}; the model takes {wanted}"
        )


def datatype_of(kind: Any) -> str | None:
    """The OIP datatype of an MLflow signature type (a DataType or a numpy dtype)."""
    if isinstance(kind, DataType):
        return {
            DataType.boolean: "BOOL",
            DataType.integer: "INT32",
            DataType.long: "INT64",
            DataType.float: "FP32",
            DataType.double: "FP64",
            DataType.string: "BYTES",
            DataType.binary: "BYTES",
            DataType.datetime: "BYTES",
        }.get(kind)
    if isinstance(kind, np.dtype):
        if kind.kind in "OUS":
            return "BYTES"
        for name, dtype in NUMPY.items():
            if dtype is not object and np.dtype(dtype) == kind:
                return name
    return None


def _plain(tensor: Tensor, flat: bool = False) -> Any:
    """The tensor's values for the JSON payload: numbers stay an array (orjson writes
    numpy natively; float16 it cannot), text becomes lists of str."""
    values = tensor.values.ravel() if flat else tensor.values
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    if values.dtype == object or flat:
        return values.tolist()
    return values
