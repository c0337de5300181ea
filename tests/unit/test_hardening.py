"""Hostile or unusual payloads: deep nesting, NaN/Infinity in, anything out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.types import ColSpec, Schema, TensorSpec

from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, JSONTooDeep
from maas_ray.serving.decode import MAX_JSON_DEPTH, json_depth, parse_payload
from maas_ray.serving.encode import encode_predictions

JSON = "application/json"
TENSOR = Schema([TensorSpec(np.dtype("float32"), (-1, 3))])
COLS = Schema([ColSpec("double", "a"), ColSpec("double", "b")])
OPTIONAL = Schema([ColSpec("double", "a"), ColSpec("double", "b", required=False)])
MIXED = Schema([ColSpec("double", "a"), ColSpec("string", "b")])
TEXT = Schema([TensorSpec(np.dtype(str), (-1,))])


def nested(depth: int) -> bytes:
    """``{"inputs": [[...[1]...]]}``, arrays and object together ``depth`` deep."""
    return ('{"inputs": ' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}").encode()


def python_json(obj: object) -> bytes:
    """What a Python client sends: json.dumps writes bare NaN and Infinity."""
    return json.dumps(obj).encode()


def strict_loads(raw: bytes) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"not strict JSON: {token}")

    return json.loads(raw, parse_constant=refuse)


# --- JSON depth --------------------------------------------------------------------


def test_json_depth_counts_arrays_and_objects() -> None:
    assert json_depth(b"1") == 0
    assert json_depth(b'{"a": [1, {"b": []}]}') == 4
    assert json_depth(nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH


def test_brackets_inside_strings_do_not_count() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": "\\"[[[", "c": ["]]]]"]}') == 2
    body = ('{"inputs": ["' + "[" * 100 + '"]}').encode()
    assert parse_payload(body, JSON, TEXT).tolist() == ["[" * 100]


def test_nesting_at_the_bound_passes() -> None:
    arr = parse_payload(nested(MAX_JSON_DEPTH), JSON, None)
    assert arr.ndim == MAX_JSON_DEPTH - 1


def test_one_level_deeper_is_refused() -> None:
    with pytest.raises(JSONTooDeep) as info:
        parse_payload(nested(MAX_JSON_DEPTH + 1), JSON, None)
    assert info.value.status_code == 400
    assert info.value.code == "json_too_deep"
    assert info.value.message == f"JSON nested {MAX_JSON_DEPTH + 1} deep; the limit is 32"
    assert isinstance(info.value, BadRequest)


def test_the_bound_is_a_keyword_argument() -> None:
    parse_payload(nested(40), JSON, None, max_depth=40)
    with pytest.raises(JSONTooDeep, match="nested 5 deep; the limit is 4"):
        parse_payload(nested(5), JSON, None, max_depth=4)


def test_many_shallow_brackets_are_fine() -> None:
    rows = [[1.0, 2.0, 3.0]] * 500  # 500 brackets, but only 2 deep
    arr = parse_payload(json.dumps({"inputs": rows}).encode(), JSON, TENSOR)
    assert arr.shape == (500, 3)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"[" * 50_000 + b"]" * 50_000,
        b'{"inputs": ' + b'[{"a": ' * 50_000,
        b"[" * 100 + b'"' + b'\\"' * 200_000,  # an unterminated string of escapes
    ],
)
def test_hostile_nesting_is_refused_quickly(body: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(JSONTooDeep):
        parse_payload(body, JSON, None)
    assert time.perf_counter() - start < 0.5


# --- NaN and Infinity in -----------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("make", "schema"),
    [
        (lambda v: {"inputs": [[1.0, v, 2.0]]}, TENSOR),
        (lambda v: {"instances": [[1.0, 2.0, v]]}, TENSOR),
        (lambda v: {"dataframe_split": {"columns": ["a", "b"], "data": [[1, v]]}}, COLS),
        (lambda v: {"dataframe_records": [{"a": 1, "b": v}]}, COLS),
        (lambda v: {"inputs": {"a": [1], "b": [v]}}, COLS),
    ],
)
def test_bare_nan_and_infinity_are_invalid_input(make: Any, schema: Schema, bad: float) -> None:
    body = python_json(make(bad))
    assert b"NaN" in body or b"Infinity" in body
    with pytest.raises(InvalidInput) as info:
        parse_payload(body, JSON, schema)
    assert info.value.status_code == 422
    assert "contains NaN or Infinity" in info.value.message
    assert "the model's signature takes finite numbers" in info.value.message
    if schema is COLS:
        assert "column 'b'" in info.value.message


def test_the_message_names_the_payload_key() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_payload(python_json({"inputs": [[1.0, math.nan, 2.0]]}), JSON, TENSOR)
    assert info.value.message == (
        "'inputs' contains NaN or Infinity; the model's signature takes finite numbers"
    )


def test_a_number_beyond_double_range_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="too large for a double"):
        parse_payload(b'{"inputs": [[1e400, 1, 2]]}', JSON, TENSOR)


def test_bare_nan_without_a_signature_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="NaN or Infinity"):
        parse_payload(python_json({"inputs": [1.0, math.nan]}), JSON, None)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"inputs": [[1, NaN]]',  # NaN, but also truncated
        b'{"inputs": [[1, nan, 2]]}',  # not what json.dumps writes
        b'{"inputs": [[1, NaN, 2]], "x": "\\ud800"}',  # a lone surrogate orjson refuses
        b'{"inputs": [[1, NaN, 2]], "x": ' + b"1" * 30 + b"}",  # an int beyond 64 bits
    ],
)
def test_otherwise_malformed_json_stays_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJSON):
        parse_payload(raw, JSON, TENSOR)


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity", " INF ", "+nan"])
@pytest.mark.parametrize(
    ("make", "schema", "where"),
    [
        (lambda v: {"inputs": [[1, v, 2]]}, TENSOR, "'inputs' contains"),
        (lambda v: {"dataframe_split": {"columns": ["a", "b"], "data": [[v, 1]]}}, COLS, "'a'"),
        (lambda v: {"dataframe_records": [{"a": 1, "b": v}]}, COLS, "column 'b'"),
        (lambda v: {"instances": [{"a": v, "b": 1}]}, COLS, "column 'a'"),
        (lambda v: {"inputs": {"a": [1, 2], "b": [3, v]}}, COLS, "column 'b'"),
    ],
)
def test_nonfinite_strings_in_float_inputs_are_invalid_input(
    make: Any, schema: Schema, where: str, text: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_payload(python_json(make(text)), JSON, schema)
    assert info.value.status_code == 422
    assert where in info.value.message
    assert "NaN or Infinity" in info.value.message


def test_every_offending_column_is_named() -> None:
    body = python_json({"dataframe_records": [{"a": "NaN", "b": "inf"}]})
    with pytest.raises(InvalidInput, match="columns 'a', 'b' contain NaN or Infinity"):
        parse_payload(body, JSON, COLS)


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_records": [{"a": 1, "b": math.nan}]},
        {"dataframe_records": [{"a": 1, "b": "NaN"}]},
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "nan"], [2, 3]]}},
        {"dataframe_records": [{"a": 1, "b": None}]},
    ],
)
def test_an_optional_column_may_hold_nan(payload: dict[str, Any]) -> None:
    frame = parse_payload(python_json(payload), JSON, OPTIONAL)
    assert frame["a"].tolist()[0] == 1
    assert math.isnan(frame["b"].tolist()[0])


@pytest.mark.parametrize("bad", [math.inf, "inf", "-Infinity"])
def test_an_optional_column_still_refuses_infinity(bad: object) -> None:
    with pytest.raises(InvalidInput, match="column 'b'"):
        parse_payload(python_json({"dataframe_records": [{"a": 1, "b": bad}]}), JSON, OPTIONAL)


def test_an_optional_column_does_not_excuse_a_required_one() -> None:
    with pytest.raises(InvalidInput, match="column 'a'"):
        parse_payload(python_json({"dataframe_records": [{"a": math.nan}]}), JSON, OPTIONAL)


def test_text_that_spells_nan_stays_text() -> None:
    arr = parse_payload(python_json({"inputs": ["NaN", "info", "inf", "banana"]}), JSON, TEXT)
    assert arr.tolist() == ["NaN", "info", "inf", "banana"]
    frame = parse_payload(
        python_json({"dataframe_records": [{"a": 1.5, "b": "NaN"}, {"a": 2, "b": "infinity"}]}),
        JSON,
        MIXED,
    )
    assert frame["b"].tolist() == ["NaN", "infinity"]


def test_a_string_column_does_not_blame_a_null_in_a_float_column() -> None:
    # null in a required double column was accepted (as NaN) before; a "NaN" text
    # elsewhere in the body must not change that.
    frame = parse_payload(
        python_json({"dataframe_records": [{"a": None, "b": "NaN"}]}), JSON, MIXED
    )
    assert math.isnan(frame["a"].tolist()[0])


def test_bare_nan_for_a_text_model_is_refused_as_not_a_string() -> None:
    with pytest.raises(InvalidInput, match="must be strings"):
        parse_payload(python_json({"inputs": ["ok", math.nan]}), JSON, TEXT)


def test_finite_values_still_pass() -> None:
    arr = parse_payload(python_json({"inputs": [[1.0, 2.5, -3.0]]}), JSON, TENSOR)
    assert arr.tolist() == [[1.0, 2.5, -3.0]]


# --- anything out --------------------------------------------------------------------


@dataclasses.dataclass
class Box:
    value: float
    when: dt.date


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.array([np.nan, np.inf, -np.inf, 1.0]), [None, None, None, 1.0]),
        (np.array([[np.nan, 2]], dtype=np.float32), [[None, 2.0]]),
        (np.arange(4.0).reshape(2, 2).T, [[0.0, 2.0], [1.0, 3.0]]),  # not C-contiguous
        (pd.Series([1.0, np.nan, None]), [1.0, None, None]),
        (pd.Series([1, None], dtype="Int64"), [1, None]),
        (pd.Series(pd.to_datetime(["2020-01-02", None])), ["2020-01-02T00:00:00", None]),
        (
            pd.DataFrame({"x": [1.0, np.nan], "n": pd.array([None, 2], dtype="Int64")}),
            [{"x": 1.0, "n": None}, {"x": None, "n": 2}],
        ),
        (pd.DataFrame(np.array([[1, 2]])), [{"0": 1, "1": 2}]),
        (
            pd.DataFrame({"t": pd.to_datetime(["2020-01-01", None])}),
            [{"t": "2020-01-01T00:00:00"}, {"t": None}],
        ),
        ([pd.NA, pd.NaT, None], [None, None, None]),
        (
            np.array(["2020-01-01T01:02:03", "NaT"], dtype="datetime64[s]"),
            ["2020-01-01T01:02:03", None],
        ),
        (np.datetime64("NaT"), None),
        (np.datetime64("2020-01-01"), "2020-01-01"),
        (pd.Timestamp("2020-01-01 12:00", tz="UTC"), "2020-01-01T12:00:00+00:00"),
        (dt.datetime(2020, 1, 1, 8, 30), "2020-01-01T08:30:00"),
        (dt.timedelta(minutes=2), 120.0),
        (np.array([90, "NaT"], dtype="timedelta64[s]"), [90.0, None]),
        (
            [Decimal("1.25"), Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")],
            [1.25, None, None, None],
        ),
        (b"\x00\xff", "AP8="),
        ({3, 1, 2}, [1, 2, 3]),
        (
            np.array([1.5, None, pd.NA, pd.NaT, np.nan, "x", Decimal("2"), b"ab"], dtype=object),
            [1.5, None, None, None, None, "x", 2.0, "YWI="],
        ),
        (
            np.array([np.datetime64("NaT"), pd.Timestamp("2021-01-01")], dtype=object),
            [None, "2021-01-01T00:00:00"],
        ),
        (
            {
                "a": np.array([np.nan]),
                1: {"b": [np.array(["2020-01-01", "NaT"], dtype="datetime64[D]")]},
            },
            {"a": [None], "1": {"b": [["2020-01-01", None]]}},
        ),
        (np.array([{1: np.nan, "k": {2, 1}}], dtype=object), [{"1": None, "k": [1, 2]}]),
        ([2**70, np.float16(np.inf), np.longdouble(1.5)], [float(2**70), None, 1.5]),
        (Box(math.nan, dt.date(2020, 1, 2)), {"value": None, "when": "2020-01-02"}),
        ([Opaque(), 1 + 2j], ["opaque!", "(1+2j)"]),
    ],
)
def test_any_model_output_encodes_as_strict_json(value: object, expected: object) -> None:
    assert strict_loads(encode_predictions(value)) == {"predictions": expected}


def test_very_deep_output_still_encodes() -> None:
    value: Any = 1.0
    for _ in range(400):
        value = [value]
    assert "predictions" in strict_loads(encode_predictions(value))


def test_torch_tensors_encode_when_torch_is_installed() -> None:
    torch = pytest.importorskip("torch")
    out = encode_predictions(torch.tensor([1.0, float("nan")], dtype=torch.bfloat16))
    assert strict_loads(out) == {"predictions": [1.0, None]}
