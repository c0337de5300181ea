"""Wire formats: MLflow's scoring formats in, ``{"predictions": [...]}`` out.

Pure functions, shared by the Serve deployment, the CLI and the tests. Parsing
delegates to MLflow's own scoring-server parser so that a client of
``mlflow models serve`` gets the same interpretation of its payload here.
"""

from __future__ import annotations

import io
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input
from mlflow.types import Schema, TensorSpec

from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, MaasError, UnsupportedMediaType

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPES = ("application/json", "")
CSV_TYPE = "text/csv"
_MAX_MESSAGE = 600


def parse_payload(body: bytes, content_type: str | None, schema: Schema | None) -> Any:
    """Turn a request body into the model input MLflow's scoring server would build.

    Raises:
        UnsupportedMediaType: neither JSON nor CSV.
        InvalidJSON: the body is not JSON.
        BadRequest: JSON, but not exactly one of the scoring formats.
        InvalidInput: the payload does not fit the model's signature.
    """
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == CSV_TYPE:
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
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"malformed JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BadRequest(_format_hint(f"got a JSON {type(obj).__name__}"))
    keys = [k for k in FORMATS if k in obj]
    if len(keys) != 1:
        raise BadRequest(_format_hint(f"got keys {sorted(obj)}"))
    value = obj[keys[0]]
    if value is None or (isinstance(value, list | dict) and len(value) == 0):
        raise InvalidInput(f"'{keys[0]}' is empty: send at least one row")
    _check_text_tensor(value, schema, f"'{keys[0]}'")
    try:
        # MLflow's parsers take schema=None at run time; their annotations say Schema.
        data = infer_and_parse_data({keys[0]: value}, cast(Schema, schema))
    except MlflowException as exc:
        raise InvalidInput(_message(exc)) from exc
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InvalidInput(f"'{keys[0]}' does not fit the model's signature: {exc}") from exc
    return data


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
    """Serialise model output as ``{"predictions": ...}``; NaN and inf become null."""
    return orjson.dumps(
        {"predictions": to_jsonable(predictions)}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def to_jsonable(value: Any) -> Any:
    """Plain JSON-able Python values from what a pyfunc model returns."""
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series):
        return value.tolist()
    if isinstance(value, np.ndarray):
        # orjson serialises numeric arrays natively; object/str arrays need tolist().
        return value if value.dtype.kind in "biuf" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return value


def encode_error(error: MaasError) -> bytes:
    """The JSON body of an error."""
    return orjson.dumps(error.to_dict())


def _format_hint(got: str) -> str:
    return f"{got}: the body must be a JSON object with exactly one of " + ", ".join(
        f"'{k}'" for k in FORMATS
    )


def _message(exc: Exception) -> str:
    text = exc.message if isinstance(exc, MlflowException) else str(exc)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
