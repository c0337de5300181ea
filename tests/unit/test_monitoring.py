"""Monitoring's pure parts: sealing, sampling, the feedback body, and the figures
(checked against scikit-learn on the same labels)."""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON
from maas_ray.monitoring import drift, quality
from maas_ray.monitoring.api import parse_feedback, window
from maas_ray.monitoring.crypto import SealError, load_key, seal, unseal
from maas_ray.monitoring.log import PredictionLog, sampled
from maas_ray.monitoring.models import Figures
from maas_ray.monitoring.records import from_sealed, table, to_sealed
from maas_ray.settings import Settings
from maas_ray.spec import QualityCheck


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Serve's replicas run on asyncio


def test_the_key_is_made_once_owner_only_and_opens_what_it_sealed(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    key = load_key(settings)
    path = tmp_path / "security" / "monitor.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_key(settings) == key
    assert len(key) == 32
    sealed = seal(key, b"hello")
    assert b"hello" not in sealed
    assert unseal(key, sealed) == b"hello"
    with pytest.raises(SealError):
        unseal(os.urandom(32), sealed)
    with pytest.raises(SealError):
        unseal(key, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    given = base64.b64encode(os.urandom(32)).decode()
    assert load_key(Settings(home=tmp_path, monitor_key=given)) == base64.b64decode(given)


def test_a_sealed_table_reads_back_and_hides_its_text(tmp_path: Path) -> None:
    key = load_key(Settings(home=tmp_path))
    # Texts long enough that random ciphertext never holds them by chance ("r1" did).
    rows = [{"request_id": "request-id-0001", "time": 1.0, "label": '"secret-label"'}]
    sealed = to_sealed(key, table("labels", rows))
    assert b"secret-label" not in sealed
    assert b"request-id-0001" not in sealed
    assert from_sealed(key, sealed).to_pylist() == rows


def test_sampling_is_by_request_id_and_near_its_share() -> None:
    ids = [f"id-{i}" for i in range(20_000)]
    share = sum(sampled(i, 10.0) for i in ids) / len(ids)
    assert 0.08 < share < 0.12, share
    assert all(sampled(i, 100.0) for i in ids[:100])
    assert not any(sampled(i, 0.0) for i in ids[:100])
    assert [sampled(i, 10.0) for i in ids[:50]] == [sampled(i, 10.0) for i in ids[:50]]


@pytest.mark.anyio
async def test_the_buffer_is_bounded_and_counts_what_it_drops(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, monitor_buffer=10, monitor_flush_s=3600)
    log = PredictionLog("m", "http://127.0.0.1:1", percent=100.0, settings=settings)
    for i in range(25):
        log.record(f"r{i}", "1", "production", 200, 0.001, b"{}", None, b"{}")
    assert len(log._records) == 10
    assert log.dropped == 15
    assert log._records[0][0] == "r15"  # the oldest went first
    assert log._counts[("1", "production")].requests == 25  # every answer still counted
    assert log._task is not None
    log._task.cancel()


@pytest.mark.anyio
async def test_a_stopping_replica_writes_its_buffer_and_never_waits_long(tmp_path: Path) -> None:
    import threading

    written: list[int] = []
    hold = threading.Event()

    class Log(PredictionLog):
        def _write(self, records: Any, counts: Any) -> None:
            hold.wait()
            written.append(len(records))

    settings = Settings(home=tmp_path, monitor_flush_s=3600)
    log = Log("m", "http://127.0.0.1:1", percent=100.0, settings=settings)
    for i in range(3):
        log.record(f"r{i}", "1", "production", 200, 0.001, b"{}", None, b"{}")
    log.close(timeout_s=0.2)  # the store hangs: close gives up, the replica stops anyway
    assert written == []
    hold.set()  # the store answers again: the write close gave up on finishes by itself
    deadline = time.monotonic() + 10
    while written != [3]:
        assert time.monotonic() < deadline, written
        time.sleep(0.01)
    log.record("r3", "1", "production", 200, 0.001, b"{}", None, b"{}")
    log.close()
    assert written == [3, 1]
    log.close()  # nothing left: garbage collection calling it again writes nothing
    assert written == [3, 1]
    assert log._task is not None
    log._task.cancel()


def test_inputs_are_masked_before_they_are_written(tmp_path: Path) -> None:
    log = PredictionLog("m", "http://x", mask_fields=["name"], settings=Settings(home=tmp_path))
    body = orjson.dumps(
        {"dataframe_records": [{"name": "Ada Lovelace", "mail": "ada@example.com", "x": 3}]}
    )
    text = log._masked(body)
    assert "Ada" not in text
    assert "ada@example.com" not in text
    assert '"x":3' in text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", BadRequest),
        (b"{", InvalidJSON),
        (b"[]", BadRequest),
        (b"3", InvalidInput),
        (b'{"request_id": "a"}', InvalidInput),
        (b'{"request_id": "", "label": 1}', InvalidInput),
        (b'{"request_id": "a", "label": {"x": 1}}', InvalidInput),
        (b'{"request_id": "a", "label": 1, "extra": 2}', InvalidInput),
        (b'[{"request_id": "a", "label": 1}, 7]', InvalidInput),
    ],
)
def test_a_bad_feedback_body_is_a_4xx(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_feedback(body)


def test_feedback_takes_one_label_or_a_list() -> None:
    one = parse_feedback(b'{"request_id": "a", "label": "cat"}')
    assert [(i.request_id, i.label) for i in one] == [("a", "cat")]
    many = parse_feedback(
        b'[{"request_id": "a", "label": 1}, {"request_id": "b", "label": [0, 1]}]'
    )
    assert [i.label for i in many] == [1, [0, 1]]


def test_the_window_is_checked() -> None:
    assert window({"window_s": "60"}) == 60.0
    assert window({}) == Settings().monitor_window_s
    for bad in ("0", "-5", "nan", "inf", "x", "1e12"):
        with pytest.raises(InvalidInput):
            window({"window_s": bad})


def _logged(rows: list[tuple[str, list[object], float]]) -> tuple[object, object]:
    predictions = table(
        "predictions",
        [
            {
                "request_id": rid,
                "time": at,
                "version": "1",
                "arm": "production",
                "status": 200,
                "latency_ms": 1.0,
                "content_type": "application/json",
                "inputs": "{}",
                "outputs": orjson.dumps({"predictions": preds}).decode(),
            }
            for rid, preds, at in rows
        ],
    )
    ops = table(
        "ops",
        [
            {
                "time": 100.0,
                "version": "1",
                "arm": "production",
                "requests": 8,
                "errors": 1,
                "latency_ms": [1.0, 2.0, 3.0, 40.0],
            },
        ],
    )
    return predictions, ops


def test_classification_figures_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.choice(["cat", "dog", "eel"], size=60).tolist()
    pred = [t if rng.random() < 0.7 else rng.choice(["cat", "dog", "eel"]) for t in truth]
    rows = [(f"r{i}", [p], 100.0) for i, p in enumerate(pred)] + [("unlabelled", ["cat"], 100.0)]
    predictions, ops = _logged(rows)
    labels_rows = [{"request_id": f"r{i}", "time": 1.0, "label": '"wrong"'} for i in range(60)] + [
        {"request_id": f"r{i}", "time": 2.0, "label": orjson.dumps(t).decode()}
        for i, t in enumerate(truth)
    ]  # sent twice: the later label wins
    labels = quality.latest_labels(table("labels", labels_rows))
    [entry] = quality.report("1", predictions, ops, labels, since=0.0)
    got = entry.window
    assert got.task == "classification"
    assert got.labelled == 60
    assert got.logged == 61
    assert got.accuracy == pytest.approx(accuracy_score(truth, pred))
    assert got.f1 == pytest.approx(f1_score(truth, pred, average="macro"))
    assert got.precision == pytest.approx(precision_score(truth, pred, average="macro"))
    assert got.recall == pytest.approx(recall_score(truth, pred, average="macro"))
    assert got.per_class is not None
    assert set(got.per_class) == {"cat", "dog", "eel"}
    assert got.confusion is not None
    assert sum(map(sum, got.confusion.matrix)) == 60
    assert got.labelled_share == pytest.approx(60 / 61)
    assert (got.requests, got.errors, got.error_rate) == (8, 1, 0.125)
    assert got.p50_ms == 2.0
    assert got.p99_ms == 40.0


def test_an_empty_window_is_null_not_zero() -> None:
    predictions, ops = _logged([("r1", [1], 100.0)])
    labels = {"r1": 1}
    [entry] = quality.report("1", predictions, ops, labels, since=1000.0)
    assert entry.window.requests == 0
    assert entry.window.error_rate is None
    assert entry.window.accuracy is None
    assert entry.window.p50_ms is None
    assert entry.window.labelled_share is None
    assert entry.all_time.accuracy == 1.0


def test_regression_figures_and_row_wise_labels() -> None:
    predictions, ops = _logged([("r1", [1.5, 2.0], 100.0), ("r2", [3.25], 100.0)])
    labels = {"r1": [1.0, 2.0], "r2": 3.0, "r3": 9.0}
    [entry] = quality.report("1", predictions, ops, labels, since=0.0)
    errors = np.array([0.5, 0.0, 0.25])
    assert entry.window.task == "regression"
    assert entry.window.labelled == 3
    assert entry.window.mae == pytest.approx(np.mean(np.abs(errors)))
    assert entry.window.rmse == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert entry.window.accuracy is None


def test_a_label_that_does_not_fit_the_rows_is_not_joined() -> None:
    predictions, ops = _logged([("r1", [0, 1], 100.0)])
    [entry] = quality.report("1", predictions, ops, {"r1": 1}, since=0.0)
    assert entry.window.labelled == 0
    assert entry.window.accuracy is None


def _figures(**kw: object) -> Figures:
    base = {
        "requests": 10, "errors": 0, "error_rate": 0.0, "p50_ms": 1.0, "p95_ms": 1.0,
        "p99_ms": 1.0, "logged": 10, "labelled": 60, "labelled_share": 1.0,
        "task": "classification", "accuracy": 0.9, "f1": 0.75,
    }  # fmt: skip
    return Figures.model_validate({**base, **kw})


def test_the_status_cell_judges_the_check_or_shows_the_figure() -> None:
    check = QualityCheck(metric="f1", min=0.8, min_labels=50)
    assert quality.verdict(check, _figures()) == "degraded: f1 0.750 (n=60)"
    assert quality.verdict(check, _figures(f1=0.85)) == "ok: f1 0.850 (n=60)"
    assert quality.verdict(check, _figures(labelled=12)) == "not enough labels (12/50)"
    assert quality.verdict(None, _figures()) == "f1 0.750 (n=60)"
    assert quality.verdict(None, quality.EMPTY) == "-"
    rmse = QualityCheck(metric="rmse", max=2.0, min_labels=1)
    regression = _figures(task="regression", accuracy=None, f1=None, rmse=2.5)
    assert quality.verdict(rmse, regression) == "degraded: rmse 2.500 (n=60)"


@pytest.mark.parametrize(
    "bad",
    [
        {"metric": "f1"},  # no bound
        {"metric": "f1", "min": 1.5},
        {"metric": "f1", "max": 0.2},
        {"metric": "rmse", "min": 0.2},
        {"metric": "auc", "min": 0.5},
        {"metric": "f1", "min": 0.5, "min_labels": 0},
    ],
)
def test_a_bad_quality_check_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        QualityCheck.model_validate(bad)


def test_logged_bodies_parse_into_rows_in_each_format() -> None:
    split = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}}'
    assert drift.rows_of(split, "application/json").to_dict("list") == {
        "a": [1, 2],
        "b": ["x", "y"],
    }
    records = '{"dataframe_records": [{"a": 1}, {"a": 3}]}'
    assert drift.rows_of(records, None)["a"].tolist() == [1, 3]
    assert drift.rows_of('{"inputs": [[1, 2], [3, 4]]}', None).columns.tolist() == ["0", "1"]
    assert drift.rows_of('{"inputs": ["good", "bad"]}', None)["input"].tolist() == ["good", "bad"]
    assert drift.rows_of("a,b\n1,2\n", "text/csv")["b"].tolist() == [2]
    assert drift.frame_of(["{not json", '{"inputs": [[5]]}'], [None, None])["0"].tolist() == [5]


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0, words: str = "good") -> object:
    import pandas as pd

    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.6, 0.3, 0.1]),
            "review": [f"this book is {words} and I liked reading it {i % 7}" for i in range(n)],
        }
    )


def test_a_shifted_stream_drifts_and_the_same_one_does_not() -> None:
    rng = np.random.default_rng(1)
    ref = drift.reference(_frame(rng, 400))
    assert {f: v["kind"] for f, v in ref["features"].items()} == {
        "x": "numeric",
        "colour": "categorical",
        "review": "text",
    }
    same = drift.compare(ref, _frame(rng, 400))
    assert same.status == "ok", same
    assert all(f.psi < 0.2 for f in same.features)
    moved = _frame(rng, 400, shift=1.5, words="a long and utterly unexpected vocabulary here")
    moved["colour"] = "blue"
    found = drift.compare(ref, moved)
    assert found.status == "drifting"
    assert {f.feature for f in found.features if f.drifted} == {"x", "colour", "review"}
    review = next(f for f in found.features if f.feature == "review")
    assert review.unseen_tokens is not None
    assert review.unseen_tokens > 0.3
    assert drift.compare(ref, _frame(rng, 20)).status == "not enough data"


def test_psi_is_zero_for_equal_shares_and_grows_with_the_gap() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert 0 < drift.psi([0.5, 0.5], [0.4, 0.6]) < drift.psi([0.5, 0.5], [0.1, 0.9])


def test_metrics_keep_the_platforms_and_serves_families_only() -> None:
    from maas_ray.monitoring.prometheus import keep

    text = "\n".join(
        [
            "# HELP ray_maas_requests_total Requests answered.",
            "# TYPE ray_maas_requests_total counter",
            'ray_maas_requests_total{model="m",status="200",version="1"} 3.0',
            "# HELP ray_node_cpu_utilization CPU.",
            'ray_node_cpu_utilization{ip="127.0.0.1"} 4.0',
            'ray_serve_deployment_processing_latency_ms_bucket{le="1.0"} 2.0',
        ]
    )
    kept = keep(text)
    assert kept == [
        "# HELP ray_maas_requests_total Requests answered.",
        "# TYPE ray_maas_requests_total counter",
        'ray_maas_requests_total{model="m",status="200",version="1"} 3.0',
        'ray_serve_deployment_processing_latency_ms_bucket{le="1.0"} 2.0',
    ]


def test_the_monitor_table_shows_figures_quality_and_drift() -> None:
    from maas_ray.cli.monitor import monitor_rows
    from maas_ray.monitoring.models import Drift, FeatureDrift, MonitoringReport, VersionFigures

    drifted = Drift(
        status="drifting",
        reference_rows=500,
        live_rows=300,
        features=[
            FeatureDrift(feature="x", kind="numeric", psi=0.9, drifted=True),
            FeatureDrift(feature="y", kind="numeric", psi=0.05),
        ],
    )
    entry = VersionFigures(
        version="2", arm="canary", window=_figures(), all_time=_figures(), drift=drifted
    )
    report = MonitoringReport(model="m", window_s=3600, since=0, generated_at=1, versions=[entry])
    [row] = monitor_rows(report)
    assert row[:4] == ["2", "canary", "10", "0 (0.0%)"]
    assert row[7] == "acc 0.900  f1 0.750  (n=60)"
    assert row[-1] == "drifting: x 0.90"


def test_positional_inputs_take_the_signatures_names() -> None:
    import pandas as pd

    signature = {"inputs": '[{"type": "string", "name": "text", "required": true}]'}
    names = drift.input_names(signature)
    assert names == ["text"]
    texts = drift.rows_of('{"inputs": ["a good book"]}', None)
    assert drift.named(texts, names).columns.tolist() == ["text"]
    tensor = {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64"}}]'}
    assert drift.input_names(tensor) == []
    frame = pd.DataFrame({"a": [1]})
    assert drift.named(frame, ["x"]) is frame  # named already: kept


def test_an_older_ops_file_reads_back_in_the_current_schema() -> None:
    import pyarrow as pa

    from maas_ray.monitoring.records import conform

    old = pa.table({"time": [1.0], "version": ["1"], "arm": ["production"], "requests": [4]})
    now = conform("ops", old)
    assert now.schema == table("ops", []).schema
    assert now.column("batches").to_pylist() == [None]
    [entry] = quality.report("1", table("predictions", []), now, {}, since=0.0)
    assert entry.window.requests == 4
    assert entry.window.batch_size is None


def test_batches_give_the_mean_batch_size(tmp_path: Path) -> None:
    log = PredictionLog("m", "http://x", settings=Settings(home=tmp_path))
    log.batch("1", "production", 8)
    log.batch("1", "production", 4)
    counts = log._counts[("1", "production")]
    ops = table(
        "ops",
        [
            {"time": 1.0, "version": "1", "arm": "production", "requests": 12, "errors": 0,
             "latency_ms": [1.0], "batches": counts.batches, "batched": counts.batched},
        ],
    )  # fmt: skip
    [entry] = quality.report("1", table("predictions", []), ops, {}, since=0.0)
    assert entry.window.batch_size == 6.0


def test_a_series_splits_the_window_into_buckets() -> None:
    predictions, ops = _logged([("r1", [1], 100.0)])
    [entry] = quality.report("1", predictions, ops, {"r1": 1}, since=0.0, buckets=2, until=200.0)
    assert [p.start for p in entry.series] == [0.0, 100.0]
    assert [p.requests for p in entry.series] == [0, 8]  # the ops row is at t=100
    assert entry.series[1].accuracy == 1.0
    assert entry.series[0].accuracy is None
