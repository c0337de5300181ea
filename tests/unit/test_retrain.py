"""The retrain loop's pure parts: the rows it trains on, the policy, the decision."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from maas_ray.monitoring.models import Figures, VersionFigures
from maas_ray.monitoring.records import table
from maas_ray.monitoring.retrain import decide, metric_of
from maas_ray.monitoring.retrain_job import LABEL, labelled_rows
from maas_ray.spec import DeploymentSpec


def _row(rid: str, inputs: object, at: float, arm: str = "production", status: int = 200) -> dict:
    return {
        "request_id": rid,
        "time": at,
        "version": "1",
        "arm": arm,
        "status": status,
        "latency_ms": 1.0,
        "content_type": "application/json",
        "inputs": orjson.dumps(inputs).decode(),
        "outputs": "{}",
    }


def test_labelled_rows_are_the_production_answers_of_the_window_with_their_labels() -> None:
    logged = table(
        "predictions",
        [
            _row("a", {"inputs": [[1.0, 2.0]]}, 100.0),
            _row("b", {"inputs": [[3.0, 4.0], [5.0, 6.0]]}, 101.0),  # two rows, two labels
            _row("c", {"inputs": [[7.0, 8.0]]}, 50.0),  # before the window
            _row("d", {"inputs": [[9.0, 9.0]]}, 102.0, arm="canary"),  # another version's arm
            _row("e", {"inputs": [[9.0, 9.0]]}, 103.0, status=422),  # not answered
            _row("f", {"inputs": [[0.0, 0.0]]}, 104.0),  # no label
            _row("g", {"inputs": [[1.0, 1.0]]}, 105.0),  # a label that does not fit its rows
        ],
    )
    labels = {"a": 0, "b": [1, 2], "c": 0, "d": 1, "e": 1, "g": [1, 2]}
    frame = labelled_rows(logged, labels, ["x", "y"], since=90.0)
    assert list(frame.columns) == ["x", "y", LABEL]
    assert frame.to_dict("records") == [
        {"x": 1.0, "y": 2.0, LABEL: 0},
        {"x": 3.0, "y": 4.0, LABEL: 1},
        {"x": 5.0, "y": 6.0, LABEL: 2},
    ]
    assert labelled_rows(logged, {}, [], since=0.0).empty


def test_text_rows_keep_their_one_column() -> None:
    logged = table("predictions", [_row("t", {"inputs": ["great film", "awful"]}, 10.0)])
    frame = labelled_rows(logged, {"t": ["positive", "negative"]}, [], since=0.0)
    assert frame.to_dict("records") == [
        {"input": "great film", LABEL: "positive"},
        {"input": "awful", LABEL: "negative"},
    ]


def _arm(version: str, arm: str, labelled: int, **figures: float) -> VersionFigures:
    window = Figures(
        requests=labelled, errors=0, error_rate=0.0, p50_ms=1.0, p95_ms=1.0, p99_ms=1.0,
        logged=labelled, labelled=labelled, labelled_share=1.0, **figures,
    )  # fmt: skip
    return VersionFigures(version=version, arm=arm, window=window, all_time=window)


def test_the_canary_is_promoted_only_when_it_beats_production_on_enough_labels() -> None:
    prod = _arm("1", "production", 80, f1=0.40, rmse=2.0)
    wait, why = decide("f1", _arm("2", "canary", 19, f1=0.9), prod, 20)
    assert wait is None
    assert "canary 19/20" in why
    wins, why = decide("f1", _arm("2", "canary", 20, f1=0.9), prod, 20)
    assert wins is True
    assert "f1 0.9000 (n=20)" in why
    assert "v1's 0.4000 (n=80)" in why
    assert decide("f1", _arm("2", "canary", 20, f1=0.4), prod, 20)[0] is False  # a tie keeps
    assert decide("rmse", _arm("2", "canary", 20, rmse=1.0), prod, 20)[0] is True
    assert decide("rmse", _arm("2", "canary", 20, rmse=3.0), prod, 20)[0] is False


def test_the_policy_needs_a_quality_check_to_start_by_itself() -> None:
    quality = {"metric": "accuracy", "min": 0.8}
    spec = DeploymentSpec(model="m", quality=quality, retrain={"min_labels": 50})
    assert spec.retrain is not None
    assert spec.retrain.canary_percent == 10
    assert metric_of(spec, "classification") == "accuracy"
    manual = DeploymentSpec(model="m", retrain={"when": "manual"})
    assert metric_of(manual, "classification") == "f1"
    assert metric_of(manual, "regression") == "rmse"
    with pytest.raises(ValidationError, match="needs a quality check"):
        DeploymentSpec(model="m", retrain={"when": "degraded"})
    with pytest.raises(ValidationError, match="drop retrain"):
        DeploymentSpec(model="m", mode="shared", retrain={"when": "manual"})
    for bad in ({"min_labels": 5}, {"canary_percent": 100}, {"when": "sometimes"}, {"x": 1}):
        with pytest.raises(ValidationError):
            DeploymentSpec(model="m", quality=quality, retrain=bad)


def test_mixed_label_types_become_text_so_the_rows_can_be_staged(tmp_path: object) -> None:
    logged = table(
        "predictions",
        [_row("a", {"inputs": [[1.0]]}, 1.0), _row("b", {"inputs": [[2.0]]}, 2.0)],
    )
    frame = labelled_rows(logged, {"a": 1, "b": "1"}, [], since=0.0)
    assert frame[LABEL].tolist() == ["1", "1"]
    frame.to_parquet(f"{tmp_path}/rows.parquet")  # one type per column: it writes
