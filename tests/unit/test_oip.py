"""The Open Inference Protocol v2 translation (serving/oip.py, serving/oip_answer.py)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from mlflow.types import ColSpec, Schema, TensorSpec

from maas_ray.errors import BadRequest, InvalidJSON
from maas_ray.serving import oip, oip_answer, oip_payload

FLOATS = Schema([TensorSpec(np.dtype(np.float32), (-1, 3))])
TEXT = Schema([TensorSpec(np.dtype(str), (-1,))])
COLUMNS = Schema([ColSpec("double", "a"), ColSpec("double", "b"), ColSpec("string", "c")])
NUMBERS = Schema([ColSpec("double", "a"), ColSpec("long", "b")])


def _json(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


def _binary(header: dict[str, Any], *blobs: bytes) -> tuple[bytes, str]:
    head = orjson.dumps(header)
    return head + b"".join(blobs), str(len(head))


def _strings(*items: str) -> bytes:
    return b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in items)


def test_json_tensor_flat_or_nested_becomes_the_inputs_payload() -> None:
    flat = {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}
    nested = {**flat, "data": [[1, 2, 3], [4, 5, 6]]}
    for tensor in (flat, nested):
        decoded = oip.decode(_json(tensor, id="r1"), None)
        assert decoded.id == "r1"
        body = oip_payload.payload(decoded, FLOATS)
        assert np.asarray(body["inputs"]).tolist() == [[1, 2, 3], [4, 5, 6]]
        assert np.asarray(body["inputs"]).dtype == np.float32


@pytest.mark.parametrize(
    ("tensor", "said"),
    [
        ({"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]}, "6 elements"),
        ({"name": "x", "shape": [-1, 3], "datatype": "FP32", "data": [1, 2, 3]}, "negative"),
        ({"name": "x", "shape": [1, 3], "datatype": "FP99", "data": [1, 2, 3]}, "FP99"),
        ({"name": "x", "shape": [1, 3], "datatype": "INT64", "data": [1.5, 2, 3]}, "fractions"),
        ({"name": "x", "shape": [1, 3], "datatype": "FP32", "data": ["a", "b", "c"]}, "text"),
        ({"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, None, 3]}, "nulls"),
        ({"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [[1], [2, 3]]}, "ragged"),
        ({"name": "x", "shape": [1, 1], "datatype": "INT8", "data": [300]}, "range"),
        ({"name": "x", "shape": [1, 1], "datatype": "FP16", "data": [1e6]}, "range"),
        ({"name": "x", "shape": [1, 1], "datatype": "BYTES", "data": [1]}, "strings"),
        ({"name": "x", "shape": [1, 1], "datatype": "BOOL", "data": [1]}, "true/false"),
        ({"name": "x", "shape": ["2"], "datatype": "FP32", "data": [1, 2]}, "shape"),
        ({"name": "x", "shape": [2**62, 2**62], "datatype": "FP32", "data": [1]}, "elements"),
        ({"name": "x", "shape": [1], "datatype": "FP32", "data": 1}, "array"),
        ({"name": "", "shape": [1], "datatype": "FP32", "data": [1]}, "name"),
    ],
)
def test_a_malformed_tensor_is_a_400_that_names_it(tensor: dict[str, Any], said: str) -> None:
    with pytest.raises(BadRequest) as caught:
        oip.decode(_json(tensor), None)
    assert caught.value.status_code == 400
    assert said in str(caught.value)


def test_malformed_bodies_are_400s() -> None:
    with pytest.raises(InvalidJSON):
        oip.decode(b"{nope", None)
    for body in (b"[]", b'{"inputs": []}', b'{"id": 1, "inputs": []}'):
        with pytest.raises(BadRequest):
            oip.decode(body, None)
    two = {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}
    with pytest.raises(BadRequest, match="repeat"):
        oip.decode(_json(two, two), None)
    with pytest.raises(BadRequest, match="nested"):
        oip.decode(b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}", None, max_depth=32)


def test_binary_inputs_numbers_and_text() -> None:
    text = _strings("héllo", "好的")
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 24},
            },
            {
                "name": "t",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(text)},
            },
        ]
    }
    numbers = np.arange(6, dtype="<f4").tobytes()
    body, size = _binary(header, numbers, text)
    decoded = oip.decode(body, size)
    assert decoded.tensors[0].values.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert decoded.tensors[1].values.tolist() == ["héllo", "好的"]


@pytest.mark.parametrize(
    ("size", "blob", "length", "said"),
    [
        (24, b"\0" * 12, None, "past the body"),
        (12, b"\0" * 24, None, "bytes after the last"),
        (12, b"\0" * 12, "999999", "within the body"),
        (12, b"\0" * 12, "x", "not a number"),
        (-1, b"", None, "whole number"),
        (8, b"\0" * 8, None, "24 expected"),
    ],
)
def test_binary_sizes_that_do_not_add_up_are_400s(
    size: int, blob: bytes, length: str | None, said: str
) -> None:
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    body, real = _binary(header, blob)
    if said == "24 expected":
        header["inputs"][0]["shape"] = [2, 3]
        body, real = _binary(header, blob)
    with pytest.raises(BadRequest, match=said):
        oip.decode(body, length or real)


def test_binary_text_that_is_cut_short_or_not_utf8_is_refused() -> None:
    def header(size: int) -> dict[str, Any]:
        tensor = {"name": "t", "shape": [2], "datatype": "BYTES"}
        return {"inputs": [{**tensor, "parameters": {"binary_data_size": size}}]}

    short = _strings("ab") + b"\0\0"
    with pytest.raises(BadRequest, match="ends after 1 of 2"):
        oip.decode(*_binary(header(len(short)), short))
    too_few = _strings("ab")  # 6 bytes cannot hold two 4-byte lengths: refused up front
    with pytest.raises(BadRequest, match="cannot hold 2"):
        oip.decode(*_binary(header(len(too_few)), too_few))
    bad = struct.pack("<I", 2) + b"\xff\xfe" + _strings("ok")
    with pytest.raises(BadRequest, match="UTF-8"):
        oip.decode(*_binary(header(len(bad)), bad))


def test_the_signature_decides_the_payload_and_the_datatypes_taken() -> None:
    text = oip.decode(
        _json({"name": "any", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}), None
    )
    assert oip_payload.payload(text, TEXT) == {"inputs": ["a", "b"]}
    with pytest.raises(BadRequest, match="takes BYTES"):
        oip_payload.payload(
            oip.decode(_json({"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}), None),
            TEXT,
        )
    ints = oip.decode(
        _json({"name": "x", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 3]}), None
    )
    with pytest.raises(BadRequest, match="takes FP32"):
        oip_payload.payload(ints, FLOATS)
    # FP64 data for an FP32 tensor passes: MLflow reads the JSON numbers as float32.
    wide = oip.decode(
        _json({"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}), None
    )
    assert np.asarray(oip_payload.payload(wide, FLOATS)["inputs"]).shape == (1, 3)


def test_column_signatures_take_one_input_per_column_or_one_2d_input() -> None:
    per_column = oip.decode(
        _json(
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
            {"name": "b", "shape": [2, 1], "datatype": "FP32", "data": [[3], [4]]},
            {"name": "c", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
        ),
        None,
    )
    assert oip_payload.payload(per_column, COLUMNS) == {
        "dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 3.0, "x"], [2.0, 4.0, "y"]]}
    }
    grid = oip.decode(
        _json({"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}), None
    )
    split = oip_payload.payload(grid, Schema([ColSpec("double", "a"), ColSpec("float", "b")]))
    assert split["dataframe_split"]["columns"] == ["a", "b"]
    assert np.asarray(split["dataframe_split"]["data"]).tolist() == [[1.0, 2.0]]
    with pytest.raises(BadRequest, match="takes INT64"):  # a 2-D input has one datatype
        oip_payload.payload(grid, NUMBERS)
    with pytest.raises(BadRequest, match="takes INT64"):
        oip_payload.payload(grid, Schema([ColSpec("long", "a"), ColSpec("long", "b")]))
    with pytest.raises(BadRequest, match="takes 3"):
        oip_payload.payload(grid, COLUMNS)
    unknown = oip.decode(_json({"name": "z", "shape": [1], "datatype": "FP64", "data": [1]}), None)
    with pytest.raises(BadRequest, match="columns"):
        oip_payload.payload(unknown, NUMBERS)
    uneven = oip.decode(
        _json(
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
            {"name": "b", "shape": [1], "datatype": "INT64", "data": [3]},
        ),
        None,
    )
    with pytest.raises(BadRequest, match="row counts"):
        oip_payload.payload(uneven, NUMBERS)


def test_without_a_signature_tensors_pass_as_given() -> None:
    two = oip.decode(
        _json(
            {"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},
            {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["x"]},
        ),
        None,
    )
    body = oip_payload.payload(two, None)
    assert set(body["inputs"]) == {"a", "b"}
    assert body["inputs"]["b"] == ["x"]


def _decoded(**kw: Any) -> oip.Decoded:
    return oip.Decoded(kw.get("id"), [], kw.get("outputs"), kw.get("binary", False))


def test_answers_as_json_tensors_typed_by_the_output_signature() -> None:
    body, headers = oip_answer.answer([1, 2], "m", "3", _decoded(id="q"), Schema([ColSpec("long")]))
    doc = orjson.loads(body)
    assert headers["content-type"] == "application/json"
    assert doc == {
        "model_name": "m",
        "model_version": "3",
        "id": "q",
        "outputs": [{"name": "predictions", "datatype": "INT64", "shape": [2], "data": [1, 2]}],
    }
    probabilities = orjson.loads(
        oip_answer.answer([[0.1, 0.9], [0.5, None]], "m", "1", _decoded(), None)[0]
    )
    out = probabilities["outputs"][0]
    assert (out["datatype"], out["shape"], out["data"]) == ("FP64", [2, 2], [0.1, 0.9, 0.5, None])
    records = [{"label": "a", "score": 0.5}, {"label": "b", "score": 1.0}]
    outs = orjson.loads(oip_answer.answer(records, "m", "1", _decoded(), None)[0])["outputs"]
    assert [(o["name"], o["datatype"]) for o in outs] == [("label", "BYTES"), ("score", "FP64")]
    ragged = orjson.loads(oip_answer.answer([[1], [1, 2]], "m", "1", _decoded(), None)[0])
    assert ragged["outputs"][0]["data"] == ["[1]", "[1,2]"]


def test_binary_answers_and_requested_outputs() -> None:
    body, headers = oip_answer.answer(["pos", "好"], "m", "1", _decoded(binary=True), None)
    size = int(headers[oip.HEADER_LENGTH])
    doc = orjson.loads(body[:size])
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": len(_strings("pos", "好"))}
    assert body[size:] == _strings("pos", "好")
    floats, headers = oip_answer.answer(
        [0.5, 1.5], "m", "1", _decoded(outputs=[("predictions", True)]), Schema([ColSpec("float")])
    )
    size = int(headers[oip.HEADER_LENGTH])
    assert np.frombuffer(floats[size:], dtype="<f4").tolist() == [0.5, 1.5]
    with pytest.raises(BadRequest, match="answers"):
        oip_answer.answer([1], "m", "1", _decoded(outputs=[("nope", None)]), None)


def test_metadata_from_the_signature() -> None:
    described = {"inputs": FLOATS.to_dict(), "outputs": Schema([ColSpec("string")]).to_dict()}
    meta = oip_answer.model_metadata("m", ["2"], described)
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "predictions", "datatype": "BYTES", "shape": [-1]}]
    columns = oip_answer.model_metadata("m", ["2"], {"inputs": COLUMNS.to_dict()})
    assert [(t["name"], t["datatype"]) for t in columns["inputs"]] == [
        ("a", "FP64"),
        ("b", "FP64"),
        ("c", "BYTES"),
    ]
    assert columns["outputs"] == []


def _row(prediction: float, label: str, *attributions: tuple[str, float]) -> dict[str, Any]:
    ranked = [{"feature": f, "value": v} for f, v in attributions]
    return {"prediction": prediction, "baseline": 0.5, "class": label, "attributions": ranked}


EXPLANATION = {
    "model": "m",
    "version": "1",
    "method": "shap.LinearExplainer",
    "output": "probability",
    "background_rows": 6,
    "explanations": [
        _row(0.9, "big", ("a", 0.3), ("b", 0.1)),
        _row(0.7, "small", ("b", -0.15), ("a", 0.05)),
    ],
}


def test_the_explain_parameter_is_a_boolean_read_from_the_request() -> None:
    tensor = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
    assert oip.decode(_json(tensor), None).explain is False
    assert oip.decode(_json(tensor, parameters={"explain": True}), None).explain is True
    both = oip.decode(_json(tensor, parameters={"explain": True, "binary_data_output": True}), None)
    assert (both.explain, both.binary) == (True, True)
    with pytest.raises(BadRequest, match="explain"):
        oip.decode(_json(tensor, parameters={"explain": "yes"}), None)


def test_an_explained_answer_has_one_json_explanation_per_row_beside_the_predictions() -> None:
    decoded = oip.Decoded("q", [], None, False, True)
    body, headers = oip_answer.answer(["big", "small"], "m", "1", decoded, None, EXPLANATION)
    doc = orjson.loads(body)
    assert headers["content-type"] == "application/json"
    predictions, explanations = doc["outputs"]
    assert predictions["data"] == ["big", "small"]
    assert (explanations["name"], explanations["datatype"], explanations["shape"]) == (
        "explanations",
        "BYTES",
        [2],
    )
    rows = [orjson.loads(text) for text in explanations["data"]]
    assert rows == EXPLANATION["explanations"]
    assert rows[1]["attributions"][0] == {"feature": "b", "value": -0.15}
    assert doc["parameters"] == {
        "explain_method": "shap.LinearExplainer",
        "explain_output": "probability",
        "explain_background_rows": 6,
    }
    # Asked for by name, alone and as raw bytes (length-prefixed JSON texts).
    only = oip.Decoded(None, [], [("explanations", True)], False, True)
    body, headers = oip_answer.answer(["big", "small"], "m", "1", only, None, EXPLANATION)
    size = int(headers[oip.HEADER_LENGTH])
    doc = orjson.loads(body[:size])
    assert [o["name"] for o in doc["outputs"]] == ["explanations"]
    texts = [orjson.dumps(row).decode() for row in EXPLANATION["explanations"]]
    assert body[size:] == _strings(*texts)
    # Without an explanation there is no such output to ask for.
    with pytest.raises(BadRequest, match="answers"):
        oip_answer.answer([1], "m", "1", _decoded(outputs=[("explanations", None)]), None)


def test_the_requests_own_parameters_become_the_models_params() -> None:
    tensor = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
    parameters = {"binary_data_output": True, "explain": False, "beam": 2, "priority": 1}
    decoded = oip.decode(_json(tensor, parameters=parameters), None)
    assert decoded.binary is True
    assert decoded.params == {"beam": 2}  # the protocol's own (and Triton's) are not the model's
    assert oip_payload.payload(decoded, FLOATS)["params"] == {"beam": 2}
    plain = oip.decode(_json(tensor, parameters={"binary_data_output": False}), None)
    assert plain.params is None
    assert "params" not in oip_payload.payload(plain, FLOATS)
