"""Bad input never gives a 5xx: JSON errors with the right 4xx status, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from maas_ray import Settings
from tests.conftest import auth, post

EXAMPLES = ("sentiment", "tabular", "digits")


def _error(resp: Any, status: int, code: str | None = None) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error", "code"}, body
    if code:
        assert body["code"] == code, body
    return str(body["error"])


@pytest.mark.parametrize("name", EXAMPLES)
def test_malformed_json_is_400(name: str, seeded: Any, live: Settings) -> None:
    _error(post(live, f"/v1/models/{name}/predict", b'{"inputs": [1,'), 400, "invalid_json")


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_scoring_format_is_400(name: str, seeded: Any, live: Settings) -> None:
    msg = _error(post(live, f"/v1/models/{name}/predict", {"rows": [1]}), 400, "bad_request")
    assert "inputs" in msg
    assert "dataframe_split" in msg


def test_unknown_model_and_version_are_404(seeded: Any, live: Settings) -> None:
    _error(post(live, "/v1/models/nope/predict", {"inputs": [1]}), 404, "model_not_found")
    _error(
        post(live, "/v1/models/sentiment/versions/999/predict", {"inputs": ["x"]}),
        404,
        "not_deployed",
    )


def test_another_method_on_a_model_route_is_405_with_allow(seeded: Any, live: Settings) -> None:
    for path in ("/v1/models/sentiment/predict", "/v1/models/sentiment/versions/1/predict"):
        resp = httpx.get(f"{live.serve_url}{path}", headers=auth(live), timeout=30)
        _error(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == "POST"
    resp = httpx.delete(f"{live.serve_url}/v1/models/sentiment", headers=auth(live), timeout=30)
    _error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "GET"


def test_registered_but_not_deployed_is_404(client: Any, seeded: Any, live: Settings) -> None:
    from sklearn.dummy import DummyClassifier

    client.register("idle", DummyClassifier().fit([[0], [1]], [0, 1]), input_example=[[0]])
    msg = _error(post(live, "/v1/models/idle/predict", {"inputs": [[0]]}), 404, "not_deployed")
    assert "idle" in msg


@pytest.mark.parametrize("name", EXAMPLES)
def test_wrong_content_type_is_415(name: str, seeded: Any, live: Settings) -> None:
    resp = post(
        live, f"/v1/models/{name}/predict", b"inputs=1", "application/x-www-form-urlencoded"
    )
    _error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("name", "inputs", "words"),
    [
        ("tabular", [[1.0] * 29], ("shape",)),
        ("tabular", [["a"] * 30], ("float",)),
        ("digits", [[0.0] * 63], ("shape",)),
        ("digits", [[[0.0] * 8] * 8], ("shape",)),
        ("sentiment", [1, 2], ("str",)),
        ("sentiment", [["a", "b"]], ("shape",)),
    ],
)
def test_shape_and_dtype_mismatch_is_422(
    name: str, inputs: Any, words: tuple[str, ...], seeded: Any, live: Settings
) -> None:
    msg = _error(post(live, f"/v1/models/{name}/predict", {"inputs": inputs}), 422)
    assert all(w in msg.lower() for w in words), msg


def test_missing_and_mistyped_columns_name_the_field(iris: dict[str, Any], live: Settings) -> None:
    row = iris["X"].iloc[0].to_dict()
    missing = {k: v for k, v in row.items() if k != "petal width (cm)"}
    msg = _error(post(live, "/v1/models/iris/predict", {"dataframe_records": [missing]}), 422)
    assert "petal width (cm)" in msg
    mistyped = {**row, "sepal length (cm)": "long"}
    msg = _error(post(live, "/v1/models/iris/predict", {"dataframe_records": [mistyped]}), 422)
    assert "sepal length (cm)" in msg


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"inputs"',
        b'{"inputs": null}',
        b'{"inputs": []}',
        b'{"inputs": {}}',
        b'{"inputs": [[]]}',
        b'{"inputs": [1e400]}',
        b'{"inputs": [[NaN]]}',
        b'{"inputs": [1], "instances": [1]}',
        b'{"dataframe_split": {"columns": ["a"]}}',
        b'{"dataframe_split": "x"}',
        b'{"dataframe_records": [1, 2]}',
        b'{"instances": [{"a": 1}]}',
        b"\xff\xfe\x00",
        b'{"inputs": [[' + b"1," * 5000 + b"1]]}",
    ],
)
@pytest.mark.parametrize("name", EXAMPLES)
def test_garbage_never_gives_5xx(name: str, body: bytes, seeded: Any, live: Settings) -> None:
    resp = post(live, f"/v1/models/{name}/predict", body)
    assert 400 <= resp.status_code < 500, (body[:60], resp.status_code, resp.text)
    assert set(resp.json()) == {"error", "code"}


def test_csv_garbage_is_422(seeded: Any, live: Settings) -> None:
    resp = post(live, "/v1/models/tabular/predict", b"a,b\n1,2\n", "text/csv")
    _error(resp, 422, "invalid_input")
