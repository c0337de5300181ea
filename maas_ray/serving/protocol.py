"""Wire formats: MLflow's scoring formats in, ``{"predictions": [...]}`` out.

Pure functions, shared by the Serve deployment, the CLI and the tests. Parsing
delegates to MLflow's own scoring-server parser so that a client of
``mlflow models serve`` gets the same interpretation of its payload here.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input
from mlflow.types import Schema

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
        try:
            return parse_csv_input(io.StringIO(body.decode("utf-8")), schema=schema)
        except (MlflowException, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"cannot read CSV body: {_message(exc)}") from exc
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
    try:
        return infer_and_parse_data({keys[0]: value}, schema)
    except MlflowException as exc:
        raise InvalidInput(_message(exc)) from exc
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InvalidInput(f"'{keys[0]}' does not fit the model's signature: {exc}") from exc


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
