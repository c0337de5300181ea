"""Explainers on real small models, saved and loaded as MLflow saves a registered
version: scikit-learn trees, linear models and others (SHAP), text pipelines (exact
token contributions), PyTorch modules (integrated gradients). Where the method
promises it, a row's attributions add up to its prediction minus the baseline."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from maas_ray.errors import BadRequest, NotExplainable
from maas_ray.explain import _select
from maas_ray.explain.answer import Explanations
from maas_ray.registry._logging import _skops_types
from maas_ray.registry.background import dump_background, load_background
from maas_ray.serving.runtime import ModelRuntime

TEXTS = [
    "the tenant shall pay rent monthly",
    "rent is due on the first day",
    "either party may terminate this agreement",
    "this agreement terminates on notice",
    "the landlord shall repair the roof",
    "termination requires written notice",
]
LABELS = ["payment", "payment", "termination", "termination", "payment", "termination"]


def _runtime(model: Any, tmp: Path, example: Any, background: Any = None) -> Any:
    """``model`` saved by MLflow (a version's folder), loaded as a replica loads it."""
    path = tmp / "model"
    if isinstance(model, mlflow.pyfunc.PythonModel):
        mlflow.pyfunc.save_model(
            str(path), python_model=model, input_example=example, pip_requirements=["torch"]
        )
    else:
        trusted = _skops_types(model)  # as Registry.register logs it
        mlflow.sklearn.save_model(
            model,
            str(path),
            input_example=example,
            skops_trusted_types=trusted,
            pip_requirements=["scikit-learn"],  # no inference: it reloads in a subprocess
        )
    if background is not None:
        (path / "maas_background.json").write_bytes(dump_background(background))
    runtime = ModelRuntime("m", "1", mlflow.pyfunc.load_model(str(path)))
    runtime.background = load_background(path)
    runtime.input_example = example
    return runtime


def _additive(answer: Explanations, tol: float) -> None:
    for row in answer.explanations:
        total = sum(a.value for a in row.attributions)
        assert total == pytest.approx(row.prediction - row.baseline, abs=tol), row
        ranked = [abs(a.value) for a in row.attributions]
        assert ranked == sorted(ranked, reverse=True)


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.mark.parametrize(
    "estimator",
    [GradientBoostingClassifier(n_estimators=20, random_state=0), RandomForestClassifier(
        n_estimators=10, max_depth=4, random_state=0)],
)  # fmt: skip
def test_trees_explain_the_predicted_class_probability_additively(
    estimator: Any, cancer: Any, tmp_path: Path
) -> None:
    X, y = cancer
    model = estimator.fit(X, y)
    runtime = _runtime(model, tmp_path, X.head(2), background=X.sample(40, random_state=0))
    answer = runtime.explain(X.iloc[[0, 1, 19, 20]])
    assert answer.method == "shap.TreeExplainer"
    assert (answer.output, answer.background_rows) == ("probability", 40)
    proba = model.predict_proba(X.iloc[[0, 1, 19, 20]])
    for row, p, label in zip(
        answer.explanations, proba, model.predict(X.iloc[[0, 1, 19, 20]]), strict=True
    ):
        assert row.label == str(label)
        assert row.prediction == pytest.approx(p.max())
        assert {a.feature for a in row.attributions} == set(X.columns)  # the schema's names
    _additive(answer, 1e-6)
    classes = {row.label for row in answer.explanations}
    assert classes == {"0", "1"}  # both the class-1 values and their complement checked


def test_a_linear_model_is_explained_on_its_decision_function(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    runtime = _runtime(model, tmp_path, X.head(3), background=X.sample(30, random_state=1))
    answer = runtime.explain(X.iloc[[0, 60, 120]])
    assert (answer.method, answer.output) == ("shap.LinearExplainer", "decision_function")
    assert [r.label for r in answer.explanations] == ["0", "1", "2"]
    decision = model.decision_function(X.iloc[[0, 60, 120]])
    for i, row in enumerate(answer.explanations):
        assert row.prediction == pytest.approx(decision[i, i])
        # the scaler keeps the columns: the input's names, not x0..x3
        assert {a.feature for a in row.attributions} == set(X.columns)
    _additive(answer, 1e-6)


def test_a_binary_linear_model_explains_class_zero_as_the_negative_margin(
    cancer: Any, tmp_path: Path
) -> None:
    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    runtime = _runtime(model, tmp_path, X.head(2))  # no background: the input example
    answer = runtime.explain(X.iloc[[0, 19]])  # a malignant (0) and a benign (1) row
    assert answer.background_rows == 2
    assert [r.label for r in answer.explanations] == ["0", "1"]
    margin = model.decision_function(X.iloc[[0, 19]])
    assert answer.explanations[0].prediction == pytest.approx(-margin[0])
    assert answer.explanations[1].prediction == pytest.approx(margin[1])
    _additive(answer, 1e-6)


def test_other_models_get_the_permutation_explainer_on_probabilities(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = KNeighborsClassifier(n_neighbors=5).fit(X, y)
    runtime = _runtime(model, tmp_path, X.head(2), background=X.sample(20, random_state=2))
    answer = runtime.explain(X.iloc[[0, 70]])
    assert (answer.method, answer.output) == ("shap.PermutationExplainer", "probability")
    proba = model.predict_proba(X.iloc[[0, 70]])
    for row, p in zip(answer.explanations, proba, strict=True):
        assert row.prediction == pytest.approx(p.max())
    _additive(answer, 1e-6)


@pytest.mark.parametrize("final", [LogisticRegression(C=10.0, max_iter=500), MultinomialNB()])
def test_text_pipelines_give_exact_token_contributions(final: Any, tmp_path: Path) -> None:
    model = Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2))), ("clf", final)])
    model.fit(TEXTS, LABELS)
    runtime = _runtime(model, tmp_path, np.array(TEXTS[:2], dtype=str))
    texts = ["the tenant shall pay rent", "terminate on written notice"]
    answer = runtime.explain(np.array(texts, dtype=str))
    assert answer.background_rows == 0
    assert [r.label for r in answer.explanations] == ["payment", "termination"]
    tokens = {a.feature for a in answer.explanations[0].attributions}
    assert {"rent", "tenant shall"} <= tokens
    assert "notice" not in tokens
    top = answer.explanations[1].attributions[0]
    assert top.feature in {"notice", "terminate", "written notice", "written"}
    assert top.value > 0
    if isinstance(final, LogisticRegression):
        assert answer.output == "decision_function"
        # binary: classes_[1] is termination; payment's margin is the negative
        margin = model.decision_function(texts)
        assert answer.explanations[0].prediction == pytest.approx(-margin[0])
        assert answer.explanations[0].baseline == pytest.approx(-final.intercept_[0])
    else:
        assert answer.output == "log_likelihood_vs_mean"
    _additive(answer, 1e-9)


class TinyMLP(nn.Module):
    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 16), nn.Tanh(), nn.Linear(16, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Packaged(mlflow.pyfunc.PythonModel):
    """The platform's torch packaging (examples/tabular/model.py): a standardisation,
    the module as ``model``, its output kind as ``finetune_loss``."""

    finetune_loss = "cross_entropy"

    def __init__(self, module: nn.Module, mean: np.ndarray, scale: np.ndarray) -> None:
        self.model, self.mean, self.scale = module, mean, scale
        self.classes = ["setosa", "versicolor", "virginica"]

    def finetune_inputs(self, rows: np.ndarray) -> np.ndarray:
        return (np.asarray(rows, dtype=np.float32) - self.mean) / self.scale

    def predict(self, context: Any, model_input: np.ndarray, params: Any = None) -> list[str]:
        x = torch.from_numpy(self.finetune_inputs(model_input))
        with torch.inference_mode():
            return [self.classes[int(i)] for i in self.model(x).argmax(dim=1)]


def _fitted_mlp(X: np.ndarray, y: np.ndarray) -> nn.Module:
    torch.manual_seed(0)
    module = TinyMLP(X.shape[1], 3)
    opt = torch.optim.Adam(module.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(module(xt), yt).backward()
        opt.step()
    return module.eval()


@pytest.mark.parametrize("background", [False, True])
def test_torch_integrated_gradients_are_complete(background: bool, tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    module = _fitted_mlp((X - mean) / scale, y.astype(np.int64))
    runtime = _runtime(
        Packaged(module, mean, scale), tmp_path, X[:2], background=X[::10] if background else None
    )
    answer = runtime.explain(X[[0, 60, 120]])
    assert answer.method == "captum.IntegratedGradients"
    assert answer.output == "probability"
    assert answer.background_rows == (15 if background else 0)
    assert [r.label for r in answer.explanations] == ["setosa", "versicolor", "virginica"]
    with torch.no_grad():
        proba = torch.softmax(module(torch.from_numpy((X[[0, 60, 120]] - mean) / scale)), 1)
    for row, p in zip(answer.explanations, proba.numpy(), strict=True):
        assert row.prediction == pytest.approx(float(p.max()), abs=1e-6)
        assert {a.feature for a in row.attributions} == {"x[0]", "x[1]", "x[2]", "x[3]"}
    _additive(answer, 2e-3)


def test_a_torch_model_of_rows_keeps_its_attributions_and_refuses_png(tmp_path: Path) -> None:
    import orjson

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    module = _fitted_mlp((X - mean) / scale, y.astype(np.int64))
    runtime = _runtime(Packaged(module, mean, scale), tmp_path, X[:2])
    body = orjson.dumps({"inputs": X[[0, 60]].tolist()})
    for fmt in (None, "json"):
        answer = orjson.loads(runtime.explain_bytes(body, "application/json", fmt=fmt))
        for row in answer["explanations"]:
            # The answer of a model without images is as before maps existed.
            assert set(row) == {"prediction", "baseline", "class", "attributions"}
            assert len(row["attributions"]) == 4
    with pytest.raises(BadRequest, match="takes no images") as refused:
        runtime.explain_bytes(body, "application/json", fmt="png")
    assert (refused.value.status_code, refused.value.code) == (400, "bad_request")


def test_rows_that_are_images_get_a_map_of_their_pixels(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    packaged = Packaged(_fitted_mlp((X - mean) / scale, y.astype(np.int64)), mean, scale)
    packaged.image_shape = (2, 2)  # type: ignore[attr-defined]
    runtime = _runtime(packaged, tmp_path, X[:2])
    answer = runtime.explain(X[[0, 60]], "png")
    for row in answer.explanations:
        assert row.saliency is not None
        assert np.asarray(row.saliency).shape == (2, 2)
        assert {a.feature for a in row.attributions} == {"(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)"}
        assert float(np.sum(row.saliency)) == pytest.approx(row.prediction - row.baseline, abs=2e-3)
        assert row.saliency_png is not None
    _additive(answer, 2e-3)


def test_png_on_a_scikit_learn_model_is_a_400(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    runtime = _runtime(LogisticRegression(max_iter=300).fit(X, y), tmp_path, X.head(5))
    with pytest.raises(BadRequest, match="format=png"):
        runtime.explain(X.head(1), "png")


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[int]:
        return [0] * len(model_input)


def test_a_model_no_explainer_fits_is_not_explainable(tmp_path: Path) -> None:
    runtime = _runtime(Constant(), tmp_path, pd.DataFrame({"a": [1.0]}))
    with pytest.raises(NotExplainable) as raised:
        runtime.explain(pd.DataFrame({"a": [2.0]}))
    assert raised.value.status_code == 422
    assert raised.value.code == "not_explainable"
    with pytest.raises(NotExplainable):  # remembered, not tried again
        runtime.explainer()


def test_the_explainer_is_built_once_under_concurrent_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    runtime = _runtime(LogisticRegression(max_iter=300).fit(X, y), tmp_path, X.head(5))
    built: list[int] = []
    real = _select.build

    def counting(*args: Any) -> Any:
        built.append(1)
        return real(*args)

    monkeypatch.setattr(_select, "build", counting)
    threads = [threading.Thread(target=runtime.explain, args=(X.head(1),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1]


def test_a_replica_module_does_not_import_shap_or_captum() -> None:
    code = (
        "import sys, maas_ray.serving.deployment, maas_ray.serving.shared, maas_ray.client;"
        "print(sorted(m for m in ('shap', 'captum') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_register_stores_the_background_inside_the_models_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas_ray.registry import Registry, artifact_digest

    monkeypatch.chdir(tmp_path)  # a SQLite store's artifacts land beside it
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        uri = registry.log("iris", model, input_example=X.head(2), background=X.head(7))
        folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "dl")))
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    stored = load_background(folder)
    pd.testing.assert_frame_equal(stored, X.head(7).reset_index(drop=True))
    before = artifact_digest(folder)
    (folder / "maas_background.json").write_bytes(dump_background(X.head(8)))
    assert artifact_digest(folder) != before  # the digest covers it


def test_a_torch_model_that_takes_text_is_not_explainable_rather_than_failing() -> None:
    """minilm holds a torch module but takes sentences: a 422 not_explainable up front,
    not an integrated-gradients run that fails on strings."""
    import pandas as pd
    from mlflow.models.signature import infer_signature

    from maas_ray.explain._select import _takes_text

    assert _takes_text(infer_signature(np.array(["a sentence"])).inputs)
    assert _takes_text(infer_signature(pd.DataFrame({"text": ["a"]})).inputs)
    assert not _takes_text(infer_signature(np.zeros((2, 3), dtype=np.float32)).inputs)
    assert not _takes_text(None)


class _Clock:
    """A virtual clock for the pacing's ``time``: sleeps and work only advance it, so
    the test checks the arithmetic, not how busy the machine is."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_explanations_are_paced_to_their_share_of_the_replicas_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an explain of t seconds the next waits t * (1 / share - 1): at a share of
    0.25, four back-to-back 20 ms explains take 4 x 20 + 3 x 60 ms."""
    from maas_ray.serving import explaining
    from maas_ray.serving.explaining import Paced

    clock = _Clock()
    monkeypatch.setattr(explaining, "time", clock)

    def work(seconds: float) -> str:
        clock.now += seconds  # the explain itself
        return "done"

    paced = Paced(0.25)
    started = clock.now
    for _ in range(4):
        assert paced(work, 0.02) == "done"
    assert clock.slept == [0.06, 0.06, 0.06]
    assert clock.now - started == pytest.approx(4 * 0.02 + 3 * 0.06)
    clock.now += 1.0  # idle for longer than the pause: the next explain runs at once
    paced(work, 0.02)
    assert clock.slept == [0.06, 0.06, 0.06]
    long = Paced(0.01)  # the pause has a ceiling: a slow first explain (building) is fine
    long(work, 0.05)
    long(work, 0.0)
    assert clock.slept[-1] == Paced.MAX_PAUSE_S
