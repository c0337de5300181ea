"""Wire formats: MLflow's scoring formats in, ``{"predictions": [...]}`` out.

Pure functions, shared by the Serve deployment, the CLI and the tests. Parsing
delegates to MLflow's own scoring-server parser so that a client of
``mlflow models serve`` gets the same interpretation of its payload here.

Hardening around that parser: JSON nested deeper than ``MAX_JSON_DEPTH`` is refused
before anything parses it; NaN and Infinity (bare, as Python's ``json.dumps`` writes
them, or as strings MLflow turns into floats) are refused where the signature takes
finite numbers; and any model output encodes as strict JSON.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input
from mlflow.types import DataType, Schema, TensorSpec

from maas_ray.errors import (
    BadRequest,
    InvalidInput,
    InvalidJSON,
    JSONTooDeep,
    UnsupportedMediaType,
)
from maas_ray.wire import CSV, FORMATS

JSON_TYPES = ("application/json", "")
_MAX_MESSAGE = 600
MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON arrays and objects a request body may have."""

# A JSON string, escapes included; possessive, and an unterminated string runs to the
# end, so that stripping strings stays linear on any input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[list(b"[{")] = 1
_BRACKET_STEP[list(b"]}")] = -1
_DEPTH_CHUNK = 1 << 20
# What float() (and so MLflow's conversion to a float column or tensor) reads as NaN/inf.
_NONFINITE_TEXT = re.compile(r"\s*[+-]?(?:nan|inf(?:inity)?)\s*", re.IGNORECASE)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_MAX_OUTPUT_DEPTH = 200


def parse_payload(
    body: bytes,
    content_type: str | None,
    schema: Schema | None,
    *,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Turn a request body into the model input MLflow's scoring server would build.

    Non-finite numbers: JSON has no NaN or Infinity, but Python's ``json.dumps``
    writes bare ``NaN``, ``Infinity`` and ``-Infinity``, and MLflow turns strings such
    as ``"NaN"`` or ``"inf"`` into floats for a float column or tensor. Both are
    refused (InvalidInput) where the signature takes numbers, as is a bare number
    too large for a double (``1e400``). One exception: a column whose ColSpec is optional
    (``required=False``) may hold NaN, bare or as a string, which pandas reads as a
    missing value; Infinity is refused there too. Strings stay strings where the
    signature takes text, so a text input "NaN" passes. CSV bodies are not checked:
    pandas reads ``NaN``/empty fields as missing values there.

    Raises:
        UnsupportedMediaType: neither JSON nor CSV.
        JSONTooDeep: JSON nested deeper than ``max_depth`` arrays and objects.
        InvalidJSON: the body is not JSON.
        BadRequest: JSON, but not exactly one of the scoring formats.
        InvalidInput: the payload does not fit the model's signature.
    """
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == CSV:
        # MLflow's CSV reader only understands column schemas; for a tensor signature
        # read plain columns and let the model's schema enforcement shape them.
        column_schema = schema if schema is not None and not schema.is_tensor_spec() else None
        try:
            data = parse_csv_input(
                io.StringIO(body.decode("utf-8")), schema=cast(Schema, column_schema)
            )
        except (MlflowException, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"cannot read CSV body: {_message(exc)}") from exc
        _check_text_tensor(data, schema, "CSV body")
        return data if column_schema is not None or schema is None else _csv_tensor(data, schema)
    if mime not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"got content type '{mime}': send application/json (or text/csv)"
        )
    _check_depth(body, max_depth)
    bare: tuple[Any, list[str]] | None = None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        bare = _loads_nonfinite(body, exc)
        if bare is None:
            raise InvalidJSON(f"malformed JSON: {exc}") from exc
        obj = bare[0]
    if not isinstance(obj, dict):
        raise BadRequest(_format_hint(f"got a JSON {type(obj).__name__}"))
    keys = [k for k in FORMATS if k in obj]
    if len(keys) != 1:
        raise BadRequest(_format_hint(f"got keys {sorted(obj)}"))
    value = obj[keys[0]]
    if value is None or (isinstance(value, list | dict) and len(value) == 0):
        raise InvalidInput(f"'{keys[0]}' is empty: send at least one row")
    label = f"'{keys[0]}'"
    _check_text_tensor(value, schema, label)
    text_fields: set[Any] = set()
    floats = schema is not None and _might_hold_nonfinite(body) and _takes_floats(schema)
    if bare is not None or floats:
        leaves = _nonfinite_leaves(value, keys[0])
        if bare is not None:
            _refuse_bare_nonfinite(leaves, bare[1], schema, label)
        if floats:
            text_fields = {field for field, leaf in leaves if isinstance(leaf, str)}
    try:
        # MLflow's parsers take schema=None at run time; their annotations say Schema.
        data = infer_and_parse_data({keys[0]: value}, cast(Schema, schema))
    except MlflowException as exc:
        raise InvalidInput(_message(exc)) from exc
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InvalidInput(f"'{keys[0]}' does not fit the model's signature: {exc}") from exc
    if text_fields and schema is not None:
        _check_finite(data, text_fields, schema, label)
    return data


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON body; brackets in strings do not count.

    Linear in the body and never recursive, so any input (valid JSON or not) is safe.
    """
    if b'"' in body:
        body = _JSON_STRING.sub(b"", body)
    brackets = body.translate(None, _NOT_BRACKETS)
    deepest = level = 0
    for start in range(0, len(brackets), _DEPTH_CHUNK):
        chunk = np.frombuffer(
            brackets, dtype=np.uint8, count=min(_DEPTH_CHUNK, len(brackets) - start), offset=start
        )
        running = np.cumsum(_BRACKET_STEP[chunk], dtype=np.int64) + level
        deepest = max(deepest, int(running.max()))
        level = int(running[-1])
    return deepest


def _check_depth(body: bytes, max_depth: int) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before any parser sees it."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return  # too few brackets to nest that deep
    depth = json_depth(body)
    if depth > max_depth:
        raise JSONTooDeep(f"JSON nested {depth} deep; the limit is {max_depth}")


def _loads_nonfinite(body: bytes, error: orjson.JSONDecodeError) -> tuple[Any, list[str]] | None:
    """The body parsed leniently, when NaN/Infinity or an overflowing number broke orjson.

    Returns ``(obj, tokens)`` with the offending tokens, or None when the body is
    malformed for another reason (it then stays InvalidJSON).
    """
    if b"NaN" not in body and b"Infinity" not in body and "infinity" not in str(error):
        return None
    seen: list[str] = []

    def constant(token: str) -> float:
        seen.append(token)
        return float(token)

    def number(token: str) -> float:
        parsed = float(token)
        if not math.isfinite(parsed):
            seen.append(token)
        return parsed

    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=constant, parse_float=number)
        orjson.dumps(obj)  # what else orjson refuses (lone surrogates, huge ints) stays refused
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError):
        return None
    return (obj, seen) if seen else None


def _might_hold_nonfinite(body: bytes) -> bool:
    """Cheap test: could the body spell NaN or inf anywhere (any case)?"""
    low = body.lower()
    return b"nan" in low or b"inf" in low


def _takes_floats(schema: Schema) -> bool:
    """Whether some input of the signature is a float column or tensor."""
    for spec in schema.inputs:
        if isinstance(spec, TensorSpec):
            if spec.type.kind == "f":
                return True
        elif getattr(spec, "type", None) in (DataType.float, DataType.double):
            return True
    return False


def _is_nonfinite(leaf: Any) -> bool:
    if isinstance(leaf, float):
        return not math.isfinite(leaf)
    if isinstance(leaf, str):
        return len(leaf) <= 32 and _NONFINITE_TEXT.fullmatch(leaf) is not None
    return False


def _nonfinite_leaves(value: Any, fmt: str) -> list[tuple[Any, Any]]:
    """``(field, leaf)`` for each NaN/inf float or string in a payload value.

    ``field`` is the column or input name the leaf belongs to (a dict key, or the
    ``columns`` entry of ``dataframe_split``), None where the payload names none.
    """
    found: list[tuple[Any, Any]] = []

    def visit(item: Any, field: Any) -> None:
        if isinstance(item, dict):
            for key, sub in item.items():
                visit(sub, key)
        elif isinstance(item, list):
            for sub in item:
                visit(sub, field)
        elif _is_nonfinite(item):
            found.append((field, item))

    if fmt == "dataframe_split" and isinstance(value, dict):
        columns = value.get("columns")
        names = columns if isinstance(columns, list) else []
        data = value.get("data")
        for row in data if isinstance(data, list) else [data]:
            for i, cell in enumerate(row if isinstance(row, list) else [row]):
                name = names[i] if i < len(names) else i
                visit(cell, name if isinstance(name, str | int) else None)
    else:
        visit(value, None)
    return found


def _optional_columns(schema: Schema | None) -> set[Any]:
    if schema is None or schema.is_tensor_spec():
        return set()
    return set(schema.optional_input_names())


def _refuse_bare_nonfinite(
    leaves: list[tuple[Any, Any]], tokens: list[str], schema: Schema | None, label: str
) -> None:
    """Refuse bare NaN/Infinity (or overflowing numbers) but NaN in an optional column."""
    optional = _optional_columns(schema)
    bad = [
        field
        for field, leaf in leaves
        if isinstance(leaf, float)
        and not (math.isnan(leaf) and field is not None and field in optional)
    ]
    if not bad:
        return
    constants = [t for t in tokens if t in ("NaN", "Infinity", "-Infinity")]
    what = (
        "NaN or Infinity"
        if constants or len(tokens) == 0
        else f"a number too large for a double ({tokens[0][:40]})"
    )
    raise InvalidInput(_nonfinite_message(label, bad, schema, what))


def _check_finite(data: Any, fields: set[Any], schema: Schema, label: str) -> None:
    """Refuse NaN/inf that MLflow made from strings in float columns or tensors."""
    optional = _optional_columns(schema)
    bad = []
    for name, values in _float_parts(data):
        if name is not None and name not in fields and None not in fields:
            continue
        if name is not None and name in optional:
            refused = bool(np.isinf(values).any())  # NaN is a missing value there
        else:
            refused = not bool(np.isfinite(values).all())
        if refused:
            bad.append(name)
    if bad:
        raise InvalidInput(_nonfinite_message(label, bad, schema, "NaN or Infinity"))


def _float_parts(data: Any) -> list[tuple[Any, np.ndarray]]:
    """The float arrays of a parsed input, each with its column or input name."""
    if isinstance(data, np.ndarray):
        return [(None, data)] if data.dtype.kind == "f" else []
    if isinstance(data, pd.DataFrame):
        return [
            (name, column.to_numpy(dtype=np.float64, na_value=np.nan))
            for name, column in data.items()
            if column.dtype.kind == "f"
        ]
    if isinstance(data, dict):
        return [
            (name, arr)
            for name, arr in data.items()
            if isinstance(arr, np.ndarray) and arr.dtype.kind == "f"
        ]
    return []


def _nonfinite_message(label: str, fields: list[Any], schema: Schema | None, what: str) -> str:
    names = list(dict.fromkeys(str(f) for f in fields if f is not None))
    why = (
        "the model's signature takes finite numbers"
        if schema is not None
        else "JSON allows only finite numbers"
    )
    if not names or None in fields:
        return f"{label} contains {what}; {why}"
    word = "tensor" if schema is not None and schema.is_tensor_spec() else "column"
    if len(names) == 1:
        return f"{label} {word} '{names[0]}' contains {what}; {why}"
    listed = ", ".join(f"'{n}'" for n in names)
    return f"{label} {word}s {listed} contain {what}; {why}"


def _csv_tensor(frame: pd.DataFrame, schema: Schema) -> Any:
    """CSV columns as the array a single-tensor signature expects (dtype, 1-D text)."""
    if len(schema.inputs) != 1:
        return frame
    spec = cast(TensorSpec, schema.inputs[0])
    values = frame.to_numpy()
    if len(spec.shape) == 1 and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    try:
        return values.astype(spec.type)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"CSV body does not fit tensor of {spec.type}: {exc}") from exc


def _text_spec(schema: Schema | None) -> Any:
    """The single string TensorSpec of a text model's signature, else None."""
    if schema is None or not schema.is_tensor_spec() or len(schema.inputs) != 1:
        return None
    spec = cast(TensorSpec, schema.inputs[0])
    return spec if spec.type.kind in "USO" else None


def _check_text_tensor(data: Any, schema: Schema | None, field: str) -> None:
    """Refuse numbers where a string tensor is expected.

    MLflow's parser silently turns ``[1, 2]`` into ``["1", "2"]`` for a
    ``Tensor('str', ...)`` input, and a text model then answers nonsense with a 200.
    ``data`` is the raw JSON value of the payload key, or a DataFrame read from CSV.
    """
    spec = _text_spec(schema)
    if spec is None:
        return
    if isinstance(data, pd.DataFrame):
        leaves = list(data.to_numpy().ravel())
    else:
        if field == "'dataframe_split'" and isinstance(data, dict):
            data = data.get("data")
        leaves = list(_leaves(data))
    wrong = sorted({type(v).__name__ for v in leaves if not isinstance(v, str)})
    if wrong:
        name = f" '{spec.name}'" if spec.name else ""
        raise InvalidInput(
            f"{field}: input{name} must be strings (signature: tensor of str, shape "
            f"{tuple(spec.shape)}), got {', '.join(wrong)}"
        )


def _leaves(value: Any) -> Any:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def encode_predictions(predictions: Any) -> bytes:
    """Serialise model output as ``{"predictions": ...}``, always as strict JSON.

    NaN, inf, None, pd.NA and NaT become null; datetimes (numpy, pandas, stdlib)
    ISO 8601 strings; durations seconds; Decimal a float; bytes base64; sets lists;
    anything else unknown its ``str()``. The fast path is orjson with a ``default``
    hook; should orjson still refuse something (a dict with non-string keys inside an
    object array, a > 64-bit int, a NaT scalar in a list), a full walk to plain
    values is encoded instead, so a model's output never becomes a 500.
    """
    try:
        return orjson.dumps(
            {"predictions": to_jsonable(predictions)}, option=_NUMPY, default=_default
        )
    except Exception:
        return orjson.dumps({"predictions": _plain(predictions, 0)}, default=_text)


def to_jsonable(value: Any) -> Any:
    """JSON-able values from what a pyfunc model returns (orjson, with ``_default``)."""
    if isinstance(value, pd.DataFrame):
        if not all(isinstance(c, str) for c in value.columns):
            value = value.set_axis([str(c) for c in value.columns], axis=1)
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series | pd.Index):
        return value.tolist()
    if isinstance(value, np.ndarray):
        # orjson serialises numeric arrays natively (NaN/inf as null); it writes NaT of
        # a datetime64 array as a date in 1677, so times are converted here.
        kind = value.dtype.kind
        if kind in "biuf":
            return value
        return _times(value) if kind in "Mm" else value.tolist()
    if isinstance(value, np.generic):
        return _numpy_scalar(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor
        tensor = value.detach().cpu()
        try:
            return to_jsonable(tensor.numpy())
        except (TypeError, RuntimeError):  # bfloat16 and others numpy lacks
            return tensor.tolist()
    return value


def _times(values: np.ndarray) -> Any:
    """A datetime64 array as ISO 8601 strings, a timedelta64 one as seconds; NaT null."""
    if values.ndim == 0:
        return _numpy_scalar(cast(np.generic, values[()]))
    if values.dtype.kind == "M":
        out = np.datetime_as_string(values).astype(object)
    else:
        out = (values / np.timedelta64(1, "s")).astype(object)
    out[np.isnat(values)] = None
    return out.tolist()


def _numpy_scalar(value: np.generic) -> Any:
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else str(np.datetime_as_string(value))
    if isinstance(value, np.timedelta64):
        return None if np.isnat(value) else float(value / np.timedelta64(1, "s"))
    if isinstance(value, np.floating):
        return float(value)  # float128 included; NaN/inf encode as null
    if isinstance(value, np.complexfloating):
        return str(value)
    return value.item()


def _default(value: Any) -> Any:
    """orjson's hook for what it cannot serialise; never returns ``value`` itself."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.ndarray):
        return _times(value) if value.dtype.kind in "Mm" else value.tolist()
    if isinstance(value, np.generic):
        return _numpy_scalar(value)
    if isinstance(value, datetime | date | time):  # pd.Timestamp and other subclasses
        return value.isoformat()
    if isinstance(value, timedelta):  # pd.Timedelta too
        return value.total_seconds()
    if isinstance(value, Decimal):
        try:
            return float(value)  # NaN/inf become null
        except (ValueError, OverflowError):  # signalling NaN
            return None
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, pd.DataFrame | pd.Series | pd.Index) or hasattr(value, "detach"):
        return to_jsonable(value)
    if isinstance(value, Mapping):
        return to_jsonable(dict(value))
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):  # pandas arrays, jax arrays, ...
        converted = value.tolist()
        if type(converted) is not type(value):
            return converted
    return _text(value)


def _plain(value: Any, depth: int) -> Any:
    """Only dicts with str keys, lists, str, float, bool, None and 64-bit ints."""
    try:
        if value is None or isinstance(value, bool | str | float):
            return value
        if isinstance(value, int):
            if -(2**63) <= value < 2**64:
                return value
            try:
                return float(value)
            except OverflowError:
                return str(value)
        if depth >= _MAX_OUTPUT_DEPTH:
            return _text(value)
        if isinstance(value, Mapping):
            return {str(k): _plain(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_plain(v, depth + 1) for v in value]
        return _plain(_default(value), depth + 1)
    except Exception:
        return _text(value)


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _format_hint(got: str) -> str:
    return f"{got}: the body must be a JSON object with exactly one of " + ", ".join(
        f"'{k}'" for k in FORMATS
    )


def _message(exc: Exception) -> str:
    text = exc.message if isinstance(exc, MlflowException) else str(exc)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
