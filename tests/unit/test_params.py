"""Per-request params (MLflow's ``{"inputs": ..., "params": {...}}``): parsed with the
input, checked against the signature's params schema, passed to ``predict``, and never
joined in one model call with a request of other params."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import orjson
import pytest
from mlflow.models import infer_signature

from maas_ray.errors import InvalidInput
from maas_ray.serving.batching import combine
from maas_ray.serving.decode import Request, parse_payload, parse_request
from maas_ray.serving.runtime import ModelRuntime
from tests.unit.conftest import PINS

JSON = "application/json"


class Scaled(mlflow.pyfunc.PythonModel):
    """Each input times ``scale`` (a declared param), and how many calls it took."""

    calls = 0

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        Scaled.calls += 1
        scale = (params or {}).get("scale", 1.0)
        return np.asarray(model_input, dtype=np.float64).reshape(-1) * scale


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    folder = tmp_path_factory.mktemp("scaled") / "model"
    example = np.array([[1.0], [2.0]])
    signature = infer_signature(example, np.array([1.0, 2.0]), params={"scale": 1.0})
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=Scaled(),
        signature=signature,
        input_example=example,
        pip_requirements=PINS,  # no inference: MLflow would reload the model in a subprocess
    )
    return ModelRuntime.load_local("scaled", "1", folder)


def _body(params: Any = None, inputs: Any = ((1.0,), (2.0,))) -> bytes:
    payload: dict[str, Any] = {"inputs": [list(r) for r in inputs]}
    if params is not None:
        payload["params"] = params
    return orjson.dumps(payload)


def test_params_are_parsed_with_the_input(runtime: ModelRuntime) -> None:
    request = runtime.parse(_body({"scale": 3}), JSON)
    assert request.params == {"scale": 3.0}  # MLflow's type: a double
    assert request.data.tolist() == [[1.0], [2.0]]
    assert runtime.parse(_body(), JSON).params is None
    assert runtime.parse(_body({}), JSON).params is None
    csv = runtime.parse(b"x\n1.0\n", "text/csv")
    assert csv.params is None


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"scael": 2}, "got params 'scael': this model's signature declares 'scale'"),
        ({"scale": "big"}, "params 'scale'"),
        ([2], "got a JSON list for 'params'"),
    ],
)
def test_a_param_not_declared_or_of_the_wrong_type_is_a_422(
    runtime: ModelRuntime, params: Any, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words) as refused:
        runtime.predict_bytes(_body(params), JSON)
    assert refused.value.status_code == 422


def test_a_model_without_params_refuses_them() -> None:
    """MLflow would log a warning and drop them; a client learns it did not happen."""
    with pytest.raises(InvalidInput, match="declares none"):
        parse_payload(_body({"beam": 1}), JSON, None)
    request = parse_request(_body(), JSON, None)
    assert isinstance(request, Request)
    assert (request.data.tolist(), request.params) == ([[1.0], [2.0]], None)


def test_params_reach_predict(runtime: ModelRuntime) -> None:
    answer = orjson.loads(runtime.predict_bytes(_body({"scale": 10}), JSON))
    assert answer == {"predictions": [10.0, 20.0]}
    assert orjson.loads(runtime.predict_bytes(_body(), JSON)) == {"predictions": [1.0, 2.0]}


def test_requests_with_other_params_are_not_joined(runtime: ModelRuntime) -> None:
    a, b = np.ones((1, 1)), np.ones((2, 1))
    assert combine([a, b], [None, {"scale": 2.0}]) is None
    assert combine([a, b], [{"scale": 2.0}, {"scale": 3.0}]) is None
    assert combine([a, b], [{"scale": 2.0}, {"scale": 2.0}]) is not None
    assert combine([a, b], [None, {}]) is not None  # none and empty are alike
    arrays = [{"w": np.array([1, 2])}, {"w": np.array([1, 2])}]
    assert combine([a, b], arrays) is None  # not comparable as one: predicted apart

    requests = [runtime.parse(_body(p, [(1.0,)]), JSON) for p in (None, {"scale": 5}, None)]
    Scaled.calls = 0
    answers = runtime.predict_many(requests)
    assert [orjson.loads(a) for a in answers] == [  # type: ignore[arg-type]
        {"predictions": [1.0]},
        {"predictions": [5.0]},
        {"predictions": [1.0]},
    ]
    assert Scaled.calls == 3  # one call each: the three did not join
    same = [runtime.parse(_body({"scale": 2}, [(float(i),)]), JSON) for i in range(3)]
    Scaled.calls = 0
    assert [orjson.loads(a) for a in runtime.predict_many(same)] == [  # type: ignore[arg-type]
        {"predictions": [0.0]},
        {"predictions": [2.0]},
        {"predictions": [4.0]},
    ]
    assert Scaled.calls == 1  # equal params: one model call


def test_the_metadata_lists_the_params_a_predict_may_pass(runtime: ModelRuntime) -> None:
    (scale,) = runtime.describe()["params"]
    assert (scale["name"], scale["type"], scale["default"]) == ("scale", "double", 1.0)
