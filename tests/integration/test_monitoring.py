"""Monitoring on the session platform: request ids, the prediction log, feedback
joined into accuracy and F1 (checked against scikit-learn), sealed files at rest."""

from __future__ import annotations

import csv
import glob
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import accuracy_score, f1_score

from maas_ray import MaaS, Settings
from maas_ray.monitoring.log import sampled
from maas_ray.monitoring.models import MonitoringReport
from tests.conftest import ROOT, auth, maas, post

PREDICT = "/v1/models/sentiment/predict"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _texts() -> list[tuple[str, str]]:
    with (ROOT / "examples" / "sentiment" / "data.csv").open() as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def _ids(n: int, in_sample: bool) -> list[str]:
    """Request ids that fall in (or out of) the default 10% sample of the log."""
    ids: list[str] = []
    while len(ids) < n:
        rid = f"test-{uuid.uuid4().hex[:12]}"
        if sampled(rid, 10.0) == in_sample:
            ids.append(rid)
    return ids


def _production(report: MonitoringReport, version: str) -> Any:
    return next(v for v in report.versions if (v.version, v.arm) == (version, "production"))


def _label_when_logged(
    client: MaaS, model: str, labels: list[dict[str, Any]], timeout_s: float = 30.0
) -> None:
    """Send ``labels`` until every request id is in the log (replicas write every 5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.feedback(model, labels)
        if answer.accepted == len(labels):
            return
        assert time.monotonic() < deadline, f"not logged in {timeout_s}s: {answer}"
        time.sleep(1)


def test_request_ids_feedback_and_live_accuracy(
    seeded: dict[str, Any], live: Settings, client: MaaS, env: dict[str, str], tmp_path: Path
) -> None:
    rows = _texts()[:24]
    sampled_ids = _ids(len(rows), in_sample=True)
    others = _ids(3, in_sample=False)
    predictions: list[str] = []
    version = ""
    for (text, _), rid in zip(rows, sampled_ids, strict=True):
        headers = {**auth(live), "x-request-id": rid}
        resp = post(live, PREDICT, {"inputs": [text]}, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-request-id"] == rid  # the client's own id comes back
        predictions.append(resp.json()["predictions"][0])
        version = resp.headers["x-maas-model-version"]
    for rid in others:
        headers = {**auth(live), "x-request-id": rid}
        assert post(live, PREDICT, {"inputs": ["fine"]}, headers=headers).status_code == 200
    plain = post(live, PREDICT, {"inputs": ["no id given"]})
    assert UUID.match(plain.headers["x-request-id"]), plain.headers  # a new UUID
    bad = post(live, PREDICT, {"inputs": {"no": "rows"}})
    assert bad.status_code in (400, 422)
    assert UUID.match(bad.headers["x-request-id"])  # errors carry one too

    # Every label first wrong, then right: the last one sent for an id wins.
    wrong = [{"request_id": rid, "label": "wrong-label"} for rid in sampled_ids]
    _label_when_logged(client, "sentiment", wrong)
    labels = [
        {"request_id": rid, "label": lab} for rid, (_, lab) in zip(sampled_ids, rows, strict=True)
    ]
    labels += [{"request_id": rid, "label": "positive"} for rid in others]
    answer = client.feedback("sentiment", labels)
    assert (answer.accepted, answer.unknown_request_id) == (len(rows), len(others))
    assert set(answer.unknown) == set(others)

    truth = [lab for _, lab in rows]
    entry = _production(client.monitoring("sentiment"), version)
    window = entry.window
    assert window.labelled == len(rows)
    assert window.accuracy == pytest.approx(accuracy_score(truth, predictions))
    assert window.f1 == pytest.approx(f1_score(truth, predictions, average="macro"))
    assert window.requests >= len(rows) + len(others) + 2
    assert window.errors >= 1
    assert window.p50_ms is not None
    assert window.p99_ms is not None
    assert window.p99_ms >= window.p50_ms

    # Scopes: feedback needs feedback:NAME, the figures metrics or predict:NAME.
    predict_only = client.create_key(["predict:sentiment"]).key
    refused = httpx.post(
        f"{live.serve_url}/v1/models/sentiment/feedback",
        json=labels[:1],
        headers={"authorization": f"Bearer {predict_only}"},
    )
    assert refused.status_code == 403, refused.text
    figures = httpx.get(
        f"{live.serve_url}/v1/models/sentiment/monitoring",
        headers={"authorization": f"Bearer {predict_only}"},
    )
    assert figures.status_code == 200, figures.text
    unknown_model = post(live, "/v1/models/no-such-model/feedback", labels[:1])
    assert unknown_model.status_code == 404, unknown_model.text

    # The CLI: labels from a CSV file, then the figures as a table.
    label_file = tmp_path / "labels.csv"
    label_file.write_text(f"request_id,label\n{sampled_ids[1]},{rows[1][1]}\n")
    sent = maas(env, "feedback", "sentiment", "--file", str(label_file))
    assert "stored 1 labels for sentiment: 1 joined" in sent.stdout, sent.stdout + sent.stderr
    shown = maas(env, "monitor", "sentiment", "--once")
    assert re.search(rf"^{version}\s+production\s+\d+", shown.stdout, re.M), shown.stdout
    assert "acc " in shown.stdout
    assert "f1 " in shown.stdout

    status = maas(env, "status")
    row = next(line for line in status.stdout.splitlines() if line.startswith("sentiment "))
    expected = f1_score(truth, predictions, average="macro")
    assert row.rstrip().endswith(f"f1 {expected:.3f} (n={len(rows)})"), status.stdout

    chart = tmp_path / "sentiment.png"
    maas(env, "monitor", "sentiment", "--plot", str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Labels change the figures: they become MLflow metrics at once (and every
    # MAAS_MONITOR_METRICS_S after).
    tracking = MlflowClient(live.mlflow_uri)
    experiment = tracking.get_experiment_by_name("maas-monitor/sentiment")
    [run] = tracking.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`maas.stream` = 'version:{version}'"
    )
    deadline = time.monotonic() + 20
    while True:
        history = tracking.get_metric_history(run.info.run_id, "production/f1")
        if any(m.value == pytest.approx(expected) for m in history):
            break
        assert time.monotonic() < deadline, f"production/f1 is not {expected}: {history}"
        time.sleep(1)

    # Prometheus: Ray's exporter, filtered, behind the metrics scope.
    assert httpx.get(f"{live.serve_url}/metrics").status_code == 401
    deadline = time.monotonic() + 40
    while True:
        scraped = httpx.get(f"{live.serve_url}/metrics", headers=auth(live), timeout=30)
        assert scraped.status_code == 200, scraped.text
        lines = scraped.text.splitlines()
        mine = [line for line in lines if 'model="sentiment"' in line]
        wanted = {
            "requests": any(line.startswith("ray_maas_requests") for line in mine),
            "quality": any(
                line.startswith("ray_maas_quality") and 'metric="f1"' in line for line in mine
            ),
            "histogram": any(re.match(r"ray_serve_\w+_bucket\{", line) for line in lines),
        }
        if all(wanted.values()):
            break
        assert time.monotonic() < deadline, (wanted, scraped.text[-3000:])
        time.sleep(2)

    # At rest: sealed files; nothing a user sent is readable in the artifact store.
    files = glob.glob(str(live.home / "artifacts" / "**" / "*.parquet.sealed"), recursive=True)
    assert files
    text = rows[0][0].encode()
    assert not any(text in Path(f).read_bytes() for f in files)
    assert not any(sampled_ids[0].encode() in Path(f).read_bytes() for f in files)

    # The replica's log line of an error answer names its request id.
    logs = glob.glob(str(live.ray_temp_dir / "session_*/logs/serve/replica_sentiment_*.log"))
    wanted = f"request {bad.headers['x-request-id']}: POST answered {bad.status_code}"
    assert any(wanted in Path(f).read_text(errors="replace") for f in logs), logs


def test_a_drifted_input_stream_is_flagged_and_an_undrifted_one_is_not(
    client: MaaS, live: Settings, env: dict[str, str]
) -> None:
    """On a shared-pool model (no replica to start): its first 500 logged rows become
    the reference; the same distribution stays ok, a shifted one drifts."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    client.register("drifty", model, input_example=x[:2])
    client.deploy("drifty", "1", mode="shared")
    rng = np.random.default_rng(7)

    def send(n_requests: int, shift: float) -> None:
        for rid in _ids(n_requests, in_sample=True):
            rows = x[rng.integers(0, len(x), 50)] + rng.normal(0, 0.05, (50, 4)) + shift
            headers = {**auth(live), "x-request-id": rid}
            resp = post(
                live, "/v1/models/drifty/predict", {"inputs": rows.tolist()}, headers=headers
            )
            assert resp.status_code == 200, resp.text

    def drift_when(done: Any, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            report = client.monitoring("drifty")
            entry = next((v for v in report.versions if v.arm == "production"), None)
            if entry is not None and entry.drift is not None and done(entry.drift):
                return entry.drift
            assert time.monotonic() < deadline, entry
            time.sleep(1)

    send(10, 0.0)  # 500 rows: the reference
    ref = drift_when(lambda d: d.status != "no reference")
    assert ref.reference_rows == 500
    send(5, 0.0)
    same = drift_when(lambda d: d.live_rows >= 250)
    assert same.status == "ok", same
    send(5, 4.0)
    moved = drift_when(lambda d: d.live_rows >= 500)
    assert moved.status == "drifting", moved
    assert {f.feature for f in moved.features if f.drifted} == {"0", "1", "2", "3"}
    status = maas(env, "status")
    row = next(line for line in status.stdout.splitlines() if line.startswith("drifty "))
    assert "drifting (0, 1, 2, 3)" in row, status.stdout
    client.undeploy("drifty")


def _retrain_when(client: MaaS, model: str, done: Any, timeout_s: float) -> Any:
    """The model's retrain state once ``done(state)``; fails with the last one seen."""
    from maas_ray.errors import RemoteError

    deadline = time.monotonic() + timeout_s
    state = None
    while True:
        try:
            state = client.retraining(model)
        except RemoteError as exc:
            if exc.status_code != 404:  # 404: none yet
                raise
        if state is not None and done(state):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(1)


def test_a_degraded_version_retrains_itself_canaries_the_result_and_promotes_it(
    client: MaaS, live: Settings, env: dict[str, str]
) -> None:
    """The world changes (every label shifts by one class): the quality check says
    degraded, a retrain on the labelled predictions starts by itself, its version runs
    as a canary, and wins on the labels that follow."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    client.register("loopy", LogisticRegression(max_iter=300).fit(x, y), input_example=x[:2])
    client.deploy(
        "loopy",
        "1",
        num_cpus=0.25,
        log_percent=100,
        quality={"metric": "accuracy", "min": 0.8, "min_labels": 30},
        retrain={"min_labels": 60, "canary_percent": 50},
    )
    rng = np.random.default_rng(3)

    def send(n: int) -> list[dict[str, Any]]:
        """n single-row predictions; their labels in the changed world."""
        labels = []
        for i in rng.integers(0, len(x), n):
            rid = f"loop-{uuid.uuid4().hex[:12]}"
            headers = {**auth(live), "x-request-id": rid}
            body = {"inputs": [x[i].tolist()]}
            resp = post(live, "/v1/models/loopy/predict", body, headers=headers)
            assert resp.status_code == 200, resp.text
            labels.append({"request_id": rid, "label": int((y[i] + 1) % 3)})
        return labels

    _label_when_logged(client, "loopy", send(80))
    state = _retrain_when(client, "loopy", lambda s: s.state != "training", 240)
    assert state.state == "canary", state
    assert (state.actor, state.from_version, state.version) == ("maas-monitor", "1", "2")
    # The labels that tipped it: 60 (min_labels) or more of the 80, as the log caught up.
    assert 60 <= state.rows <= 80, state
    assert state.reason.startswith("degraded: accuracy"), state.reason
    assert state.kind == "train"
    tags = next(v for v in client.versions("loopy") if v.version == "2").tags
    assert tags["maas.parent_version"] == "1"
    assert tags["maas.retrain"].startswith("degraded: accuracy")
    row = next(r for r in client.status() if r.model == "loopy")
    assert row.challenger is not None, row
    assert (row.challenger.version, row.challenger.role) == ("2", "canary"), row
    assert "50%" in row.traffic, row
    # The retrained version takes the same input as its parent (a 2-D array).
    one = post(live, "/v1/models/loopy/versions/2/predict", {"inputs": [x[0].tolist()]})
    assert one.status_code == 200, one.text

    deadline = time.monotonic() + 180
    while state.state == "canary":
        assert time.monotonic() < deadline, state
        _label_when_logged(client, "loopy", send(40))
        state = _retrain_when(client, "loopy", lambda s: True, 5)
        if state.state == "canary":
            time.sleep(2)  # the publisher decides right after the labels arrive
            state = client.retraining("loopy")
    assert state.state == "promoted", state
    assert "accuracy" in (state.message or "")
    assert "against production v1's" in state.message
    history = [e.action for e in client.history("loopy")]
    for action in ("retrain", "retrain-trained", "canary", "promote", "retrain-promoted"):
        assert action in history, history
    audited = {(r.actor, r.action) for r in client.audit("loopy", limit=50)}
    for action in ("retrain", "canary", "promote", "retrain-promoted"):
        assert ("maas-monitor", action) in audited, audited
    rows = maas(env, "retrain", "loopy", "--show").stdout
    assert "promoted" in rows, rows
    assert "degraded: accuracy" in rows, rows
    # By hand, with the canary gone and production now healthy: too few new labels.
    again = maas(env, "retrain", "loopy", "--min-labels", "100000", check=False)
    assert again.returncode != 0, again.stdout
    assert "labelled predictions" in again.stderr, again.stderr
    client.undeploy("loopy")


def test_async_maas_predicts_and_reads_over_real_http(seeded: Any, live: Settings) -> None:
    import asyncio

    from maas_ray import AsyncMaaS

    async def go() -> tuple[Any, ...]:
        async with AsyncMaaS(live) as sdk:
            texts = ["a wonderful book", "dull and boring", "fine"]
            answers = await asyncio.gather(*(sdk.predict("sentiment", [t]) for t in texts))
            return answers, await sdk.status(), await sdk.monitoring("sentiment")

    answers, rows, report = asyncio.run(go())
    assert [len(a) for a in answers] == [1, 1, 1]
    assert "sentiment" in {r.model for r in rows}
    assert report.model == "sentiment"
