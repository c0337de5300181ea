"""Answer encoding: any model output as strict JSON ``{"predictions": [...]}``.

The replica's hot path: orjson with a ``default`` hook for what it cannot serialise,
and a slower full walk to plain values only when orjson still refuses something.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_MAX_OUTPUT_DEPTH = 200


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
