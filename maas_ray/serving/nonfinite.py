"""NaN and Infinity in request bodies: found, and refused where numbers must be finite.

JSON has no NaN or Infinity, but Python's ``json.dumps`` writes bare ``NaN``,
``Infinity`` and ``-Infinity``, and MLflow turns strings such as ``"NaN"`` or ``"inf"``
into floats for a float column or tensor. ``decode.parse_payload`` (whose docstring
gives the rules) runs these checks only when orjson refused the body or the body could
spell NaN/inf at all; other requests pay one scan of the body, nothing more.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import orjson
import pandas as pd
from mlflow.types import DataType, Schema, TensorSpec

from maas_ray.errors import InvalidInput

# What float() (and so MLflow's conversion to a float column or tensor) reads as NaN/inf.
_NONFINITE_TEXT = re.compile(r"\s*[+-]?(?:nan|inf(?:inity)?)\s*", re.IGNORECASE)


def loads_nonfinite(body: bytes, error: orjson.JSONDecodeError) -> tuple[Any, list[str]] | None:
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


def might_hold_nonfinite(body: bytes) -> bool:
    """Cheap test: could the body spell NaN or inf anywhere (any case)?"""
    low = body.lower()
    return b"nan" in low or b"inf" in low


def takes_floats(schema: Schema) -> bool:
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


def nonfinite_leaves(value: Any, fmt: str) -> list[tuple[Any, Any]]:
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


def refuse_bare_nonfinite(
    leaves: list[tuple[Any, Any]], tokens: list[str], schema: Schema | None, label: str
) -> None:
    """Refuse bare NaN/Infinity (or overflowing numbers) but NaN in an optional column.

    Raises:
        InvalidInput: a leaf is such a number, outside an optional column or as Infinity.
    """
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


def check_finite(data: Any, fields: set[Any], schema: Schema, label: str) -> None:
    """Refuse NaN/inf that MLflow made from strings in float columns or tensors.

    Raises:
        InvalidInput: a float part named in ``fields`` holds NaN (optional columns
            excepted) or Infinity.
    """
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
