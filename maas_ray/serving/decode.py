"""Request decoding: MLflow's scoring formats (JSON or CSV) in, a model input out.

An image body (``image/png``, ``image/jpeg``) is one input of its bytes: it is read
as the JSON ``{"inputs": ["<the body in base64>"]}`` would be, so an image model
gets the same input either way. The platform never decodes the image; the model does.

Parsing delegates to MLflow's own scoring-server parser so that a client of
``mlflow models serve`` gets the same interpretation of its payload here.

A JSON body may carry ``"params"`` beside its input (MLflow's scoring protocol:
``{"inputs": [...], "params": {"beam": 1}}``); ``parse_request`` returns them with
the input, checked against the signature's params schema. MLflow itself only logs a
warning for a param the signature does not declare and drops it; here that is an
InvalidInput (422) that names the declared ones, so a typo is not answered silently
with the defaults.

Hardening around that parser: JSON nested deeper than ``MAX_JSON_DEPTH`` is refused
before anything parses it; NaN and Infinity (bare, as Python's ``json.dumps`` writes
them, or as strings MLflow turns into floats) are refused where the signature takes
finite numbers (``nonfinite.py``); numbers are refused where a text model takes
strings. Answers are encoded by ``encode.py``.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

from maas_ray.errors import (
    BadRequest,
    InvalidInput,
    InvalidJSON,
    JSONTooDeep,
    UnsupportedMediaType,
)
from maas_ray.serving.nonfinite import (
    check_finite,
    loads_nonfinite,
    might_hold_nonfinite,
    nonfinite_leaves,
    refuse_bare_nonfinite,
    takes_floats,
)
from maas_ray.wire import CSV, FORMATS, IMAGES

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


@dataclass(frozen=True)
class Request:
    """A parsed predict body: the model input and its params (None: none given)."""

    data: Any
    params: dict[str, Any] | None = None


def parse_payload(
    body: bytes,
    content_type: str | None,
    schema: Schema | None,
    *,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """The model input of a request body, as MLflow's scoring server would build it
    (``parse_request`` with no params schema: a body with params is refused)."""
    return parse_request(body, content_type, schema, max_depth=max_depth).data


def parse_request(
    body: bytes,
    content_type: str | None,
    schema: Schema | None,
    params_schema: ParamSchema | None = None,
    *,
    max_depth: int = MAX_JSON_DEPTH,
) -> Request:
    """Turn a request body into the model input MLflow's scoring server would build,
    and the JSON body's ``params`` (checked against ``params_schema``).

    Non-finite numbers: JSON has no NaN or Infinity, but Python's ``json.dumps``
    writes bare ``NaN``, ``Infinity`` and ``-Infinity``, and MLflow turns strings such
    as ``"NaN"`` or ``"inf"`` into floats for a float column or tensor. Both are
    refused (InvalidInput) where the signature takes numbers, as is a bare number
    too large for a double (``1e400``). One exception: a column whose ColSpec is optional
    (``required=False``) may hold NaN, bare or as a string, which pandas reads as a
    missing value; Infinity is refused there too. Strings stay strings where the
    signature takes text, so a text input "NaN" passes. CSV bodies are not checked:
    pandas reads ``NaN``/empty fields as missing values there.

    An image body is one input of its bytes (see the module's docstring).

    Raises:
        UnsupportedMediaType: neither JSON, CSV nor an image type of ``wire.IMAGES``.
        JSONTooDeep: JSON nested deeper than ``max_depth`` arrays and objects.
        InvalidJSON: the body is not JSON.
        BadRequest: JSON, but not exactly one of the scoring formats.
        InvalidInput: the payload does not fit the model's signature, or a param is
            not an object of declared params of their declared types.
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
        if column_schema is None and schema is not None:
            data = _csv_tensor(data, schema)
        return Request(data)
    if mime in IMAGES:
        return Request(_image_input(body, mime, schema))
    if mime not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"got content type '{mime}': send application/json (or text/csv, {', '.join(IMAGES)})"
        )
    _check_depth(body, max_depth)
    bare: tuple[Any, list[str]] | None = None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        bare = loads_nonfinite(body, exc)
        if bare is None:
            raise InvalidJSON(f"malformed JSON: {exc}") from exc
        obj = bare[0]
    if not isinstance(obj, dict):
        raise BadRequest(_format_hint(f"got a JSON {type(obj).__name__}"))
    keys = [k for k in FORMATS if k in obj]
    if len(keys) != 1:
        raise BadRequest(_format_hint(f"got keys {sorted(obj)}"))
    params = _params(obj.get("params"), params_schema)
    value = obj[keys[0]]
    if value is None or (isinstance(value, list | dict) and len(value) == 0):
        raise InvalidInput(f"'{keys[0]}' is empty: send at least one row")
    label = f"'{keys[0]}'"
    _check_text_tensor(value, schema, label)
    text_fields: set[Any] = set()
    floats = schema is not None and might_hold_nonfinite(body) and takes_floats(schema)
    if bare is not None or floats:
        leaves = nonfinite_leaves(value, keys[0])
        if bare is not None:
            refuse_bare_nonfinite(leaves, bare[1], schema, label)
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
        check_finite(data, text_fields, schema, label)
    return Request(data, params)


def _params(value: Any, schema: ParamSchema | None) -> dict[str, Any] | None:
    """A body's ``params``, each declared by the signature and of its type (MLflow's own
    check, ``ParamSpec.validate_param_spec``); None where there are none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"got a JSON {type(value).__name__} for 'params': send an object")
    if not value:
        return None
    declared = {p.name: p for p in schema.params} if schema is not None else {}
    unknown = sorted(set(value) - set(declared))
    if unknown:
        known = ", ".join(f"'{n}'" for n in declared) or "none"
        raise InvalidInput(
            f"got params {', '.join(repr(n) for n in unknown)}: this model's signature "
            f"declares {known}"[:_MAX_MESSAGE]
        )
    out = {}
    for name, given in value.items():
        try:
            out[name] = ParamSpec.validate_param_spec(given, declared[name])
        except MlflowException as exc:
            raise InvalidInput(f"params '{name}': {_message(exc)}") from exc
    return out


def _image_input(body: bytes, mime: str, schema: Schema | None) -> Any:
    """An image body as the one-row input ``{"inputs": [base64 of body]}`` parses to."""
    if not body:
        raise InvalidInput(f"empty {mime} body: send the image's bytes")
    encoded = base64.b64encode(body).decode("ascii")
    try:
        return infer_and_parse_data({"inputs": [encoded]}, cast(Schema, schema))
    except (MlflowException, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(
            f"an image body ({mime}) is one input, the image's bytes as a base64 string; "
            f"this model's signature does not take that: {_message(exc)}"
        ) from exc


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


def _format_hint(got: str) -> str:
    return f"{got}: the body must be a JSON object with exactly one of " + ", ".join(
        f"'{k}'" for k in FORMATS
    )


def _message(exc: Exception) -> str:
    text = exc.message if isinstance(exc, MlflowException) else str(exc)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
