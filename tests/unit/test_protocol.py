from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.types import ColSpec, Schema, TensorSpec

from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, UnsupportedMediaType
from maas_ray.serving.decode import parse_payload
from maas_ray.serving.encode import encode_predictions

COLS = Schema([ColSpec("double", "a"), ColSpec("double", "b")])
TENSOR = Schema([TensorSpec(np.dtype("float32"), (-1, 3))])
JSON = "application/json"


def body(obj: object) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
        {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"inputs": {"a": [1, 3], "b": [2, 4]}},
    ],
)
def test_every_mlflow_scoring_format_parses_to_the_same_frame(payload: dict[str, object]) -> None:
    frame = parse_payload(body(payload), JSON, COLS)
    frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    assert frame[["a", "b"]].to_numpy().tolist() == [[1, 2], [3, 4]]


def test_tensor_inputs_take_the_signature_dtype() -> None:
    arr = parse_payload(body({"inputs": [[1, 2, 3]]}), "application/json; charset=utf-8", TENSOR)
    assert arr.dtype == np.float32
    assert arr.shape == (1, 3)


def test_csv_bodies_are_accepted() -> None:
    frame = parse_payload(b"a,b\n1,2\n", "text/csv", COLS)
    assert frame.to_numpy().tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("raw", "ctype", "error"),
    [
        (b"{bad", JSON, InvalidJSON),
        (b"[1, 2]", JSON, BadRequest),
        (b'{"rows": [1]}', JSON, BadRequest),
        (b'{"inputs": [[1]], "instances": [[1]]}', JSON, BadRequest),
        (b'{"inputs": []}', JSON, InvalidInput),
        (b'{"inputs": [["x", "y", "z"]]}', JSON, InvalidInput),
        (b"a=1", "application/x-www-form-urlencoded", UnsupportedMediaType),
        (b"\xff\xfe", "text/csv", InvalidInput),
    ],
)
def test_bad_bodies_raise_the_right_error(raw: bytes, ctype: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_payload(raw, ctype, TENSOR)


def test_malformed_json_is_400_not_422() -> None:
    with pytest.raises(InvalidJSON) as info:
        parse_payload(b'{"inputs": [1,', JSON, None)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.array([1, 2]), [1, 2]),
        (np.array(["pos", "neg"], dtype=object), ["pos", "neg"]),
        (pd.Series([0.5, math.nan]), [0.5, None]),
        (pd.DataFrame({"x": [1]}), [{"x": 1}]),
        ([np.int64(3), math.inf], [3, None]),
        (np.array([np.nan, 1.0]), [None, 1.0]),
    ],
)
def test_predictions_always_encode_as_valid_json(value: object, expected: object) -> None:
    assert orjson.loads(encode_predictions(value)) == {"predictions": expected}


TEXT = Schema([TensorSpec(np.dtype(str), (-1,))])


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [1, 2]},
        {"inputs": ["a", 2]},
        {"instances": [1.5]},
        {"dataframe_records": [1, 2]},
    ],
)
def test_numbers_for_a_text_model_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_payload(body(payload), JSON, TEXT)
    assert "must be strings" in info.value.message


def test_text_for_a_text_model_passes() -> None:
    arr = parse_payload(body({"inputs": ["好", "bad"]}), JSON, TEXT)
    assert list(arr) == ["好", "bad"]


def test_csv_for_a_tensor_signature_takes_its_dtype() -> None:
    arr = parse_payload(b"0,1,2\n1,2,3.5\n", "text/csv", TENSOR)
    assert arr.dtype == np.float32
    assert arr.tolist() == [[1, 2, 3.5]]
    text = parse_payload("text\n好\nbad\n".encode(), "text/csv", TEXT)
    assert text.tolist() == ["好", "bad"]
    with pytest.raises(InvalidInput):
        parse_payload(b"0,1,2\n1,x,3\n", "text/csv", TENSOR)


TEXT = Schema([TensorSpec(np.dtype(str), (-1,))])
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.mark.parametrize("ctype", ["image/png", "image/jpeg", "Image/PNG; name=digit.png"])
def test_an_image_body_is_one_input_as_its_json_base64_form_parses(ctype: str) -> None:
    import base64

    data = parse_payload(PNG_HEAD, ctype, TEXT)
    encoded = base64.b64encode(PNG_HEAD).decode("ascii")
    assert data.tolist() == [encoded]
    assert data.tolist() == parse_payload(body({"inputs": [encoded]}), JSON, TEXT).tolist()
    assert parse_payload(PNG_HEAD, ctype, None).tolist() == [encoded]


@pytest.mark.parametrize(
    ("raw", "ctype", "schema", "error"),
    [
        (b"", "image/png", TEXT, InvalidInput),
        (PNG_HEAD, "image/png", TENSOR, InvalidInput),  # a model of numbers: 422
        (PNG_HEAD, "image/gif", TEXT, UnsupportedMediaType),
        (PNG_HEAD, "application/octet-stream", TEXT, UnsupportedMediaType),
    ],
)
def test_image_bodies_a_model_cannot_take_are_4xx(
    raw: bytes, ctype: str, schema: Schema, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        parse_payload(raw, ctype, schema)
    assert 400 <= info.value.status_code < 500  # type: ignore[attr-defined]
    if error is UnsupportedMediaType:
        assert "image/png" in str(info.value)
