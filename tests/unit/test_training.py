"""The pure parts of training: reading and checking data, building pipelines from
specs, the split, the fit and its scores, which score is better."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from maas_ray.errors import BadRequest
from maas_ray.training import data as datamod
from maas_ray.training.estimators import build, task_of
from maas_ray.training.evaluate import better, scores
from maas_ray.training.fit import fit_and_score, seeded, split_rows
from maas_ray.training_spec import TrainingSpec

TEXTS = [("good film", "pos"), ("bad film", "neg")] * 10


def test_pairs_of_text_become_one_text_column_fed_as_1d_strings() -> None:
    frame, raw, suffix = datamod.to_frame(TEXTS, "target")
    assert list(frame.columns) == ["text", "target"]
    assert suffix == ".csv"
    assert raw.startswith(b"text,target\n")
    X, y = datamod.split_label(frame, "target")
    fed = datamod.model_input(X)
    assert isinstance(fed, np.ndarray)
    assert fed.ndim == 1
    assert fed[0] == "good film"


def test_numeric_and_mapping_pairs_keep_columns() -> None:
    frame, _, _ = datamod.to_frame([([1.0, 2.0], 0), ([3.0, 4.0], 1)], "y")
    assert list(frame.columns) == ["x0", "x1", "y"]
    frame, _, _ = datamod.to_frame([({"a": 1, "b": 2}, 0)], "y")
    assert list(frame.columns) == ["a", "b", "y"]
    X, _ = datamod.split_label(frame, "y")
    assert isinstance(datamod.model_input(X), pd.DataFrame)


def test_a_file_is_fingerprinted_by_its_own_bytes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,target\n1,x\n2,y\n")
    frame, raw, suffix = datamod.to_frame(path, "target")
    assert raw == path.read_bytes()
    assert suffix == ".csv"
    assert datamod.sha256(raw) == datamod.sha256(path.read_bytes())
    parquet = tmp_path / "d.parquet"
    frame.to_parquet(parquet)
    again, _, _ = datamod.to_frame(str(parquet), "target")
    assert again.equals(frame)


@pytest.mark.parametrize(
    ("data", "label", "words"),
    [
        (pd.DataFrame({"a": [], "target": []}), "target", "no rows"),
        (pd.DataFrame({"a": [1, 2]}), "target", "no label column 'target'"),
        (pd.DataFrame({"a": [1, 2], "target": [1, None]}), "target", "empty in 1 rows"),
        (pd.DataFrame({"target": [1, 2]}), "target", "no feature columns"),
        (pd.DataFrame({"a": [None, None], "target": [1, 2]}), "target", "with no values: a"),
        ([("x", 1, 2)], "target", "(features, label) pair"),
        (42, "target", "give a DataFrame"),
        ("missing.csv", "target", "no such file"),
        ("data.txt", "target", ".csv or .parquet"),
    ],
)
def test_bad_data_is_one_line_before_any_cluster_work(data: object, label: str, words: str) -> None:
    def check() -> None:
        frame, _, _ = datamod.to_frame(data, label)
        datamod.split_label(frame, label)

    with pytest.raises(BadRequest) as info:
        check()
    assert words in info.value.message
    assert "\n" not in info.value.message


def test_a_file_that_does_not_parse_is_a_400(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(BadRequest) as info:
        datamod.to_frame(path, "target")
    assert "could not read" in info.value.message


def test_estimator_steps_and_factories_build_unfitted_pipelines() -> None:
    steps = [
        {"sklearn.feature_extraction.text.TfidfVectorizer": {"ngram_range": [1, 2]}},
        {"sklearn.naive_bayes.MultinomialNB": {"alpha": 0.5}},
    ]
    pipe = build(steps)
    assert pipe.steps[0][1].ngram_range == (1, 2)  # lists become tuples
    assert pipe.steps[1][1].alpha == 0.5
    single = build([{"sklearn.linear_model.LogisticRegression": {"C": 2.0}}])
    assert type(single).__name__ == "LogisticRegression"
    assert type(build("sklearn.linear_model:LinearRegression")).__name__ == "LinearRegression"


@pytest.mark.parametrize(
    ("pipeline", "words"),
    [
        ("nosuchmodule.x:build", "cannot import nosuchmodule"),
        ("sklearn.linear_model:NoSuch", "has no 'NoSuch'"),
        ([{"sklearn.linear_model.LogisticRegression": {"nope": 1}}], "unexpected keyword"),
        ("json:dumps", "failed: TypeError"),  # a factory that raises
        ("json:JSONDecoder", "gave JSONDecoder: expected an unfitted"),  # not an estimator
        ("json:__doc__", "is not callable"),
    ],
)
def test_a_pipeline_that_does_not_build_is_a_400(pipeline: object, words: str) -> None:
    with pytest.raises(BadRequest) as info:
        build(pipeline)
    assert words in info.value.message


def test_spec_validation_names_what_is_wrong() -> None:
    ok = TrainingSpec(name="m", data="d.csv", pipeline="pkg.mod:build")
    assert (ok.label, ok.test_size, ok.kind) == ("target", 0.2, "MaasTraining")
    staged = "runs:/" + "a" * 32 + "/input/pipeline.pkl"
    assert TrainingSpec(name="m", data="d.csv", pipeline=staged).pipeline == staged
    for bad in (
        {"pipeline": "nocolon"},
        {"pipeline": [{"NoDot": {}}]},
        {"pipeline": []},
        {"pipeline": "a:b", "test_size": 1.0},
        {"pipeline": "a:b", "promote_if_better": "auc"},
        {"pipeline": "a:b", "kind": "MaasDeployments"},
        {"pipeline": "a:b", "extra": 1},
    ):
        with pytest.raises(ValidationError):
            TrainingSpec.model_validate({"name": "m", "data": "d.csv", **bad})


def test_split_is_stratified_seeded_and_checked() -> None:
    y = pd.Series(["a"] * 5 + ["b"] * 5)
    train, test = split_rows(y, "classification", 0.2, 0)
    assert len(test) == 2
    assert sorted(y.iloc[test]) == ["a", "b"]  # stratified: each class held out
    assert len(train) == 8
    again = split_rows(y, "classification", 0.2, 0)
    assert (again[1] == test).all()
    with pytest.raises(BadRequest, match="one class only"):
        split_rows(pd.Series(["a"] * 5), "classification", 0.2, 0)
    with pytest.raises(BadRequest, match="one row"):
        split_rows(pd.Series(["a"] * 5 + ["b"]), "classification", 0.2, 0)
    with pytest.raises(BadRequest, match="raise test_size"):
        split_rows(pd.Series(["a", "b", "c"] * 3), "classification", 0.1, 0)
    assert len(split_rows(pd.Series(np.arange(10.0)), "regression", 0.3, 0)[1]) == 3


def test_fit_scores_classification_and_regression() -> None:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    clf = seeded(build("sklearn.ensemble:RandomForestClassifier"), 7)
    assert clf.random_state == 7
    task = task_of(clf, y)
    train, test = split_rows(y, task, 0.2, 0)
    fitted = fit_and_score(clf, X, y, train, test, task)
    assert set(fitted.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert fitted.metrics["accuracy"] > 0.9
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    reg = build([{"sklearn.linear_model.Ridge": {}}])
    assert task_of(reg, y) == "regression"
    train, test = split_rows(y, "regression", 0.2, 0)
    fitted = fit_and_score(reg, X, y, train, test, "regression")
    assert set(fitted.metrics) == {"mae", "rmse", "r2"}
    assert fitted.metrics["rmse"] >= fitted.metrics["mae"] > 0


def test_scores_macro_for_many_classes_and_which_is_better() -> None:
    got = scores("classification", ["a", "b", "c", "c"], ["a", "b", "c", "a"])
    assert got["accuracy"] == 0.75
    assert "roc_auc" not in got
    assert got["recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert better("accuracy", 0.9, 0.8)
    assert not better("accuracy", 0.8, 0.8)  # a tie keeps what serves
    assert better("rmse", 1.0, 2.0)
    assert not better("mae", 3.0, 2.0)
    assert better("f1", 0.1, None)
    assert not better("f1", float("nan"), 0.5)


def test_staged_data_is_read_from_the_tracking_server_named_not_mlflows_default(
    tmp_path: Path,
) -> None:
    """The management application reads a fine-tune's staged `runs:/` data from the
    platform's MLflow: a fresh replica has never set MLflow's current tracking URI, and
    MLflow's default store there has no such run (a user's first `maas finetune` after
    `maas up` restored the platform answered "Run ... not found")."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from maas_ray.training.run import load

    store = f"sqlite:///{tmp_path / 'store.db'}"
    client = MlflowClient(store)
    experiment = client.create_experiment("staged", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    rows = tmp_path / "data.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "target": [0, 1, 0]}).to_csv(rows, index=False)
    client.log_artifact(run_id, str(rows), artifact_path="input")
    spec = TrainingSpec(name="m", data=f"runs:/{run_id}/input/data.csv", pipeline="pkg.mod:build")

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")  # MLflow's default: no run
    try:
        with pytest.raises(Exception, match="not found"):
            load(spec)
        frame, digest = load(spec, tracking_uri=store)
    finally:
        mlflow.set_tracking_uri(before)
    assert frame["target"].tolist() == [0, 1, 0]
    assert digest == datamod.sha256(rows.read_bytes())
