"""A predict past its limit: the spec's predict_timeout_s (here from `maas deploy
--predict-timeout`) answers a JSON 504 `predict_timeout` at the limit, not a hang, and
the replica goes on answering other requests at once."""

from __future__ import annotations

import time
from typing import Any

import mlflow.pyfunc
import numpy as np
import pytest

from maas_ray import MaaS, Settings
from tests.conftest import FIGURES, maas, post

pytestmark = pytest.mark.slow


class Sleepy(mlflow.pyfunc.PythonModel):
    """Sums each row; takes 5 s over a row with a negative value."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        values = np.asarray(model_input, dtype=float)
        if (values < 0).any():
            time.sleep(5)
        return values.sum(axis=1)


def test_a_predict_past_its_limit_is_a_504_at_the_limit_and_the_replica_goes_on(
    live: Settings, client: MaaS, env: dict[str, str]
) -> None:
    version = client.register("sleepy", Sleepy(), input_example=np.array([[1.0]])).version
    maas(env, "deploy", "sleepy", "--version", version, "--num-cpus", "0.25",
         "--predict-timeout", "1")  # fmt: skip
    try:
        path = "/v1/models/sleepy/predict"
        assert post(live, path, {"inputs": [[3.0]]}).json() == {"predictions": [3.0]}
        started = time.perf_counter()
        slow = post(live, path, {"inputs": [[-1.0]]})
        took = time.perf_counter() - started
        assert slow.status_code == 504, slow.text
        assert slow.json()["code"] == "predict_timeout"
        assert "within 1 s" in slow.json()["error"]
        assert 0.9 < took < 2.5, took
        started = time.perf_counter()
        assert post(live, path, {"inputs": [[2.0]]}).json() == {"predictions": [2.0]}
        after = time.perf_counter() - started
        assert after < 1.0, after  # the stuck call holds one thread, not the replica
        FIGURES.append(
            f"predict timeout 1 s: answered 504 after {took:.2f} s; the next predict "
            f"{after * 1000:.0f} ms"
        )
    finally:
        client.undeploy("sleepy")
