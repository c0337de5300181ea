"""Training as a service on the real cluster and MLflow server: the SDK's three lines,
`maas train --config`, a `ray job submit` of the job entrypoint, the management
API's train and job routes, and what a bad input or a failing job leaves behind."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from maas_ray import MaaS, Settings
from maas_ray.errors import MaasError
from maas_ray.training.data import sha256
from tests.conftest import FIGURES, ROOT, auth, maas, ray_job_submit

SENTIMENT = ROOT / "examples" / "sentiment" / "data.csv"


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    return pd.read_csv(SENTIMENT)


def _versions(client: MaaS, name: str) -> list[str]:
    try:
        return [v.version for v in client.versions(name)]
    except MaasError:
        return []


def test_three_lines_train_register_and_answer(
    client: MaaS, live: Settings, reviews: pd.DataFrame
) -> None:
    """README's example: train from a DataFrame, deploy, predict from a DataFrame."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    train_rows, test_rows = reviews.iloc[:-20], reviews.iloc[-20:]
    stages: list[str] = []
    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)), MultinomialNB()
    )
    result = client.train(
        train_rows, pipeline, name="trained", label="label", progress=stages.append
    )
    assert result.model == "trained"
    assert result.task == "classification"
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert result.metrics["accuracy"] > 0.8, result
    assert result.n_test == round(len(train_rows) * 0.2 + 0.49)
    assert not result.promoted
    assert any("fitting on" in s for s in stages), stages
    version = client.model("trained").versions[0]
    assert version.version == result.version
    assert version.tags["maas.run_id"] == result.run_id
    assert version.tags["maas.data_sha256"] == result.data_sha256
    assert version.sha256  # digest-checked like any other version
    run = MlflowClient(live.mlflow_uri).get_run(result.run_id)
    assert run.data.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert run.data.params["n_test"] == str(result.n_test)
    staged = run.info.artifact_uri
    assert staged  # the inputs and the model are the run's artifacts
    client.deploy("trained", result.version, num_cpus=0.25)
    try:
        answers = client.predict("trained", test_rows["text"])
        assert len(answers) == 20
        right = sum(a == b for a, b in zip(answers, test_rows["label"], strict=True))
        assert right >= 16, answers
        framed = client.predict("trained", test_rows[["text"]].head(3))
        assert framed == answers[:3]
        # Drift is judged against the training data the platform kept in the run.
        deadline = time.monotonic() + 30
        while True:
            report = client.monitoring("trained")
            found = [v.drift for v in report.versions if v.drift and v.drift.reference]
            if found:
                break
            assert time.monotonic() < deadline, report
            time.sleep(1)
        assert found[0].reference == "training data"
        assert found[0].reference_rows == len(train_rows)
    finally:
        client.undeploy("trained")
    FIGURES.append(
        f"train (SDK, {len(train_rows)} reviews): version {result.version}, "
        f"accuracy {result.metrics['accuracy']:.3f}; served 20 held back, {right} right"
    )


def _config(tmp_path: Path, **extra: Any) -> Path:
    import yaml

    data = tmp_path / "wine.csv"
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame.to_csv(data, index=False)
    doc = {
        "kind": "MaasTraining",
        "name": "wine",
        "data": "wine.csv",  # relative to the file
        "pipeline": [
            {"sklearn.preprocessing.StandardScaler": {}},
            {"sklearn.linear_model.LogisticRegression": {"C": 0.01, "max_iter": 500}},
        ],
        **extra,
    }
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


WEAK = [{"sklearn.linear_model.LogisticRegression": {"C": 0.00001, "max_iter": 50}}]


def test_cli_train_from_a_file_then_promote_only_if_better(
    client: MaaS, env: dict[str, str], tmp_path: Path
) -> None:
    """A weak first version, promoted by hand; a stronger one trained with
    --promote-if-better beats it on the same held-out rows and is promoted. (The
    train API test below trains a weak one against it: kept.)"""
    weak = _config(tmp_path, pipeline=WEAK)
    first = json.loads(maas(env, "train", "--config", str(weak), "-o", "json").stdout)
    assert first["model"] == "wine"
    assert first["data_sha256"] == sha256((tmp_path / "wine.csv").read_bytes())
    assert first["promoted"] is False  # never without --promote-if-better
    client.promote("wine", first["version"])
    strong = _config(
        tmp_path,
        pipeline=[
            {"sklearn.preprocessing.StandardScaler": {}},
            {"sklearn.linear_model.LogisticRegression": {"C": 1.0, "max_iter": 500}},
        ],
    )
    proc = maas(env, "train", "-f", str(strong), "--promote-if-better", "f1")
    assert "promoted: f1 " in proc.stderr, proc.stderr
    assert f"v{first['version']}'s" in proc.stderr, proc.stderr
    assert f"v{first['version']} (@production)" in proc.stdout  # both side by side
    latest = client.model("wine").versions[0]
    assert client.model("wine").aliases["production"] == latest.version != first["version"]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"label": "nosuch"}, "no label column 'nosuch'"),
        ({"data": "missing.csv"}, "no such file"),
        ({"pipeline": "nosuchmodule:build"}, "cannot import nosuchmodule"),
        ({"pipeline": [{"sklearn.linear_model.NoSuch": {}}]}, "has no 'NoSuch'"),
        ({"test_size": 2}, "test_size"),
    ],
)
def test_cli_bad_training_is_one_line_and_changes_nothing(
    client: MaaS, env: dict[str, str], tmp_path: Path, edit: dict[str, Any], words: str
) -> None:
    before = _versions(client, "wine")
    jobs = len(client.jobs())
    proc = maas(env, "train", "--config", str(_config(tmp_path, **edit)), check=False)
    assert proc.returncode == 1, proc.stdout
    assert words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _versions(client, "wine") == before
    assert len(client.jobs()) == jobs  # refused before any cluster work


def test_ray_job_submit_of_the_train_entrypoint_registers(
    client: MaaS, live: Settings, tmp_path: Path
) -> None:
    config = _config(tmp_path, name="wine-job")
    proc = ray_job_submit(
        live,
        "python",
        "-m",
        "maas_ray.jobs.train",
        "--config",
        str(config),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MAAS_RESULT "))
    result = json.loads(line.removeprefix("MAAS_RESULT "))
    version = client.model("wine-job").versions[0]
    assert version.version == result["version"]
    assert version.tags["maas.run_id"] == result["run_id"]


def test_the_train_api_answers_202_and_jobs_tell_how_it_went(
    client: MaaS, live: Settings, tmp_path: Path
) -> None:
    """A weak pipeline for `wine` (whose @production the CLI test above made strong),
    with promote_if_better: trained, registered, not promoted."""
    import yaml

    config = _config(tmp_path, pipeline=WEAK, promote_if_better="f1")
    spec = {**yaml.safe_load(config.read_text()), "data": str(tmp_path / "wine.csv")}
    url = f"{live.serve_url}/v1/admin/train"
    reader = client.create_key(["metrics"]).key
    refused = httpx.post(url, json=spec, headers={"authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    bad = httpx.post(url, json={**spec, "pipeline": "nocolon"}, headers=auth(live))
    assert bad.status_code in (400, 422), bad.text
    production = client.model("wine").aliases["production"]
    resp = httpx.post(url, json=spec, headers=auth(live), timeout=60)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert (job["kind"], job["model"]) == ("train", "wine")
    assert job["run_id"]
    result = client.wait_job(client.job(job["id"]))
    assert result.model == "wine"
    assert not result.promoted
    assert result.promotion is not None
    assert result.promotion.startswith(f"kept v{production}: f1 "), result.promotion
    assert client.model("wine").aliases["production"] == production
    assert job["id"] in [j.id for j in client.jobs()]
    shown = httpx.get(
        f"{live.serve_url}/v1/admin/jobs/{job['id']}",
        headers={"authorization": f"Bearer {reader}"},
    )
    assert shown.status_code == 200
    assert shown.json()["status"] == "SUCCEEDED"
    assert "MAAS_RESULT" in client.job_logs(job["id"])
    # A job that fails on the cluster (its data has no such label) leaves the registry as it was.
    before = _versions(client, "wine")
    failing = httpx.post(url, json={**spec, "label": "nosuch"}, headers=auth(live), timeout=60)
    assert failing.status_code == 202
    with pytest.raises(MaasError) as info:
        client.wait_job(client.job(failing.json()["id"]))
    assert "no label column 'nosuch'" in info.value.message
    assert _versions(client, "wine") == before
    missing = httpx.get(f"{live.serve_url}/v1/admin/jobs/nosuchjob", headers=auth(live))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_cli_tune_searches_logs_trials_as_child_runs_and_registers_the_best(
    client: MaaS, live: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    """`maas tune --config` over a grid of two C values: two trials, each a child run
    of the search's run, the best on f1 registered, tagged with the trials."""
    import yaml

    config = _config(tmp_path, name="wine-tuned")
    doc = {
        **yaml.safe_load(config.read_text()),
        "kind": "MaasTuning",
        "search": {"logisticregression__C": [0.0001, 1.0]},
        "metric": "f1",
    }
    config.write_text(yaml.safe_dump(doc))
    proc = maas(env, "tune", "--config", str(config), "-o", "json")
    result = json.loads(proc.stdout)
    assert result["model"] == "wine-tuned"
    assert result["figures"]["trials"] == 2
    version = client.model("wine-tuned").versions[0]
    assert version.version == result["version"]
    assert version.tags["maas.run_id"] == result["run_id"]
    tracking = MlflowClient(live.mlflow_uri)
    run = tracking.get_run(result["run_id"])
    assert run.data.tags["maas.tune_trials"] == "2"
    chosen = float(run.data.params["best.logisticregression__C"])
    children = tracking.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{result['run_id']}'"
    )
    assert sorted(float(c.data.params["logisticregression__C"]) for c in children) == [
        0.0001,
        1.0,
    ]
    seen = [(c.data.params, c.data.metrics, c.data.tags.get("maas.error")) for c in children]
    assert all("f1" in c.data.metrics for c in children), (seen, proc.stderr)
    best = max(c.data.metrics["f1"] for c in children)
    assert result["metrics"]["f1"] == pytest.approx(best)
    winners = [c for c in children if c.data.metrics["f1"] == best]  # a tie may pick either
    assert chosen in [float(c.data.params["logisticregression__C"]) for c in winners], proc.stderr
    bad = {**doc, "search": {"logisticregression__nosuch": [1]}}
    config.write_text(yaml.safe_dump(bad))
    refused = maas(env, "tune", "--config", str(config), check=False)
    assert refused.returncode == 1
    assert "no parameter logisticregression__nosuch" in refused.stderr, refused.stderr
