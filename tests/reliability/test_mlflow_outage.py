"""MLflow killed while a model serves: predictions keep answering 200, the prediction
log stays buffered in the replica, and it is written once MLflow is back (`maas up`
restarts it). Runs late in the session (tests/reliability), and puts MLflow back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from maas_ray import MaaS, Settings
from maas_ray.control import platform
from tests.conftest import auth, post
from tests.integration.test_monitoring import _ids

pytestmark = pytest.mark.slow


def test_predictions_answer_while_mlflow_is_down_and_the_log_catches_up(
    seeded: dict[str, Any], live: Settings, client: MaaS
) -> None:
    state = platform._load_state(live)
    assert platform._stop_session(int(state["mlflow"]["sid"]), 5.0)
    try:
        ids = _ids(20, in_sample=True)
        for rid in ids:
            headers = {**auth(live), "x-request-id": rid}
            body = {"inputs": [[0.0] * 30]}
            resp = post(live, "/v1/models/tabular/predict", body, headers=headers)
            assert resp.status_code == 200, resp.text  # serving never needs MLflow
        time.sleep(live.monitor_flush_s + 2)  # a write fails; the records stay buffered
    finally:
        platform.up(live)  # restarts MLflow, as `maas up` does
    deadline = time.monotonic() + 60
    while True:
        answer = client.feedback("tabular", [{"request_id": rid, "label": 0} for rid in ids])
        if answer.accepted == len(ids):
            break
        assert time.monotonic() < deadline, answer
        time.sleep(2)
