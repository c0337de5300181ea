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
import pytest
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


def _wait_logged(client: MaaS, version: str, n: int, timeout_s: float = 30.0) -> Any:
    """Poll the figures until ``n`` predictions are in the log (replicas flush every 5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = client.monitoring("sentiment")
        entry = next(
            (v for v in report.versions if (v.version, v.arm) == (version, "production")), None
        )
        if entry is not None and entry.all_time.logged >= n:
            return entry
        assert time.monotonic() < deadline, f"{n} predictions not logged in {timeout_s}s"
        time.sleep(0.5)


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

    _wait_logged(client, version, len(rows))
    # One label first wrong, then right: the last one sent wins.
    first_wrong = {"request_id": sampled_ids[0], "label": "wrong-label"}
    assert client.feedback("sentiment", first_wrong).accepted == 1
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
    predict_only = client.create_key(["predict:sentiment"])["key"]
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

    # At rest: sealed files; nothing a user sent is readable in the artifact store.
    files = glob.glob(str(live.home / "artifacts" / "**" / "*.parquet.sealed"), recursive=True)
    assert files
    text = rows[0][0].encode()
    assert not any(text in Path(f).read_bytes() for f in files)
    assert not any(sampled_ids[0].encode() in Path(f).read_bytes() for f in files)

    # The replica's log line of an error answer names its request id.
    logs = glob.glob("/tmp/ray/session_*/logs/serve/replica_sentiment_*.log")
    wanted = f"request {bad.headers['x-request-id']}: POST answered {bad.status_code}"
    assert any(wanted in Path(f).read_text(errors="replace") for f in logs), logs
