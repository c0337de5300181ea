"""Unit tests for the seed example models (no Ray, no MLflow server).

Each example is trained, saved with MLflow into ``tmp_path``, loaded back as a pyfunc and
fed ``{"inputs": SAMPLE_INPUTS}`` parsed exactly as MLflow's scoring server parses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.pyfunc.scoring_server import infer_and_parse_data
from mlflow.types.schema import TensorSpec
from sklearn.datasets import load_breast_cancer, load_digits

from examples._common import TrainedExample


def _serve(model_dir: Path, inputs: list) -> tuple[Any, mlflow.pyfunc.PyFuncModel]:
    """Load the saved model and predict on a JSON request, as the scoring server does."""
    model = mlflow.pyfunc.load_model(str(model_dir))
    parsed = infer_and_parse_data({"inputs": inputs}, model.metadata.get_input_schema())
    return model.predict(parsed), model


def _true_labels(data: Any, rows: list[list[float]]) -> list[int]:
    """Look the sample rows up in the dataset and return their targets."""
    labels = []
    for row in rows:
        (matches,) = np.nonzero((data.data == np.asarray(row)).all(axis=1))
        assert len(matches) >= 1
        labels.append(int(data.target[matches[0]]))
    return labels


def _save_code_model(ex: TrainedExample, path: Path) -> None:
    assert isinstance(ex.model, str)
    assert ex.model.endswith("model.py")
    assert Path(ex.model).is_file()
    assert ex.artifacts
    assert all(Path(p).is_file() for p in ex.artifacts.values())
    mlflow.pyfunc.save_model(
        str(path),
        python_model=ex.model,
        artifacts=ex.artifacts,
        input_example=ex.input_example,
    )


def _assert_tensor_input(model: mlflow.pyfunc.PyFuncModel, dtype: str, shape: tuple) -> None:
    (spec,) = model.metadata.get_input_schema().inputs
    assert isinstance(spec, TensorSpec)
    assert spec.type == np.dtype(dtype)
    assert spec.shape == shape


def test_sentiment(tmp_path: Path) -> None:
    from examples.sentiment import train as sentiment

    ex = sentiment.train()
    assert ex.artifacts is None
    assert ex.description
    assert ex.metrics["test_accuracy"] >= 0.8
    assert ex.input_example.ndim == 1
    assert ex.input_example.dtype.kind == "U"
    assert sentiment.SAMPLE_INPUTS == ["这本书很好看", "this book is terrible"]

    texts, labels = sentiment.load_data()
    assert len(texts) >= 300
    assert set(labels) == {"positive", "negative"}
    assert abs(labels.count("positive") - labels.count("negative")) <= 10

    mlflow.sklearn.save_model(ex.model, str(tmp_path / "model"), input_example=ex.input_example)
    out, model = _serve(tmp_path / "model", sentiment.SAMPLE_INPUTS)
    _assert_tensor_input(model, "str", (-1,))
    assert list(out) == ["positive", "negative"]


def test_tabular(tmp_path: Path) -> None:
    from examples.tabular import train as tabular

    ex = tabular.train()
    assert ex.metrics["test_accuracy"] >= 0.93
    assert set(ex.artifacts or {}) == {"weights", "scaler"}
    assert ex.input_example.dtype == np.float32
    assert ex.input_example.shape == (2, 30)
    assert all(isinstance(v, float) for row in tabular.SAMPLE_INPUTS for v in row)

    _save_code_model(ex, tmp_path / "model")
    out, model = _serve(tmp_path / "model", tabular.SAMPLE_INPUTS)
    _assert_tensor_input(model, "float32", (-1, 30))

    data = load_breast_cancer()
    expected = [str(data.target_names[t]) for t in _true_labels(data, tabular.SAMPLE_INPUTS)]
    assert expected == ["malignant", "benign"]
    assert out == expected
    assert all(type(label) is str for label in out)


def test_digits(tmp_path: Path) -> None:
    from examples.digits import train as digits

    ex = digits.train()
    assert ex.metrics["test_accuracy"] >= 0.9
    assert set(ex.artifacts or {}) == {"weights"}
    assert ex.input_example.dtype == np.float32
    assert ex.input_example.shape == (2, 64)
    assert all(isinstance(v, float) for row in digits.SAMPLE_INPUTS for v in row)

    _save_code_model(ex, tmp_path / "model")
    out, model = _serve(tmp_path / "model", digits.SAMPLE_INPUTS)
    _assert_tensor_input(model, "float32", (-1, 64))

    assert out == _true_labels(load_digits(), digits.SAMPLE_INPUTS)
    assert all(type(label) is int for label in out)


@pytest.fixture(scope="module")
def legal_example() -> TrainedExample:
    from examples.legal import train as legal

    return legal.train()


def test_legal(legal_example: TrainedExample, tmp_path: Path) -> None:
    import skops.io

    from examples.legal import train as legal

    ex = legal_example
    assert ex.artifacts is None
    assert ex.description
    # Out-of-family figures (0.714 / 0.714 when written): no template seen in training.
    assert ex.metrics["test_accuracy"] >= 0.6
    assert ex.metrics["test_f1_macro"] >= 0.6
    assert ex.metrics["n_rows"] >= 600
    assert ex.input_example.ndim == 1
    assert ex.input_example.dtype.kind == "U"

    # Saved as the registry saves it (skops, the pipeline's own types trusted).
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(ex.model)) or None
    mlflow.sklearn.save_model(
        ex.model,
        str(tmp_path / "model"),
        input_example=ex.input_example,
        skops_trusted_types=trusted,
    )
    out, model = _serve(tmp_path / "model", legal.SAMPLE_INPUTS)
    _assert_tensor_input(model, "str", (-1,))
    assert list(out) == ["termination", "governing_law"]


def test_legal_dataset_is_the_generators_and_balanced() -> None:
    from examples.legal import make_data
    from examples.legal import train as legal

    texts, labels = legal.load_data()
    clauses = make_data.generate()
    assert texts == [c.text for c in clauses]  # make_data.py rewrites the committed CSV
    assert labels == [c.label for c in clauses]
    assert len(texts) >= 600
    assert len(set(texts)) == len(texts)
    counts = {label: labels.count(label) for label in set(labels)}
    assert len(counts) >= 8
    assert min(counts.values()) >= 60


def test_legal_folds_hold_out_whole_template_families() -> None:
    from examples.legal import make_data
    from examples.legal import train as legal

    texts, labels = legal.load_data()
    folds = legal.family_folds(texts, labels)
    family = make_data.families()
    fold_of: dict[str, set[int]] = {}
    for text, fold in zip(texts, folds, strict=True):
        fold_of.setdefault(family[text], set()).add(int(fold))
    assert all(len(f) == 1 for f in fold_of.values())
    for label in set(labels):
        assert {int(f) for f, y in zip(folds, labels, strict=True) if y == label} == set(
            range(legal.FOLDS)
        )


def test_legal_top_words_add_up_to_the_decision_function(
    legal_example: TrainedExample,
) -> None:
    from examples.legal import train as legal

    model = legal_example.model
    text = (
        "The Customer may terminate this agreement for convenience on thirty days "
        "written notice, and upon termination all fees accrued become due."
    )
    assert model.predict([text])[0] == "termination"
    words = legal.top_words(model, text, k=5)
    assert len(words) == 5
    assert any("terminat" in w for w, _ in words)
    assert [c for _, c in words] == sorted((c for _, c in words), reverse=True)
    assert all(c > 0 for _, c in words)

    label, intercept, terms = legal.contributions(model, text)
    assert label == "termination"
    row = list(model.classes_).index(label)
    decision = model.decision_function([text])[0][row]
    assert intercept + sum(c for _, c in terms) == pytest.approx(decision, abs=1e-6)
    assert legal.top_words(model, text, k=2) == words[:2]


@pytest.mark.parametrize("name", ["sentiment", "tabular", "digits", "minilm", "legal"])
def test_train_module_interface(name: str) -> None:
    import importlib

    module = importlib.import_module(f"examples.{name}.train")
    assert module.NAME == name
    assert isinstance(module.SAMPLE_INPUTS, list)
    assert len(module.SAMPLE_INPUTS) == 2
    assert callable(module.train)
    assert callable(module.main)


def test_seed_summary_shows_vectors_as_shape_and_first_values() -> None:
    from examples.seed import preview

    embeddings = [[0.5, -0.25, 0.125] + [0.0] * 381, [1.0] * 384]
    assert preview(embeddings) == "2 x 384 values; row 0: [0.5000, -0.2500, 0.1250, ...]"
    assert preview(["positive", "negative"]) == '["positive", "negative"]'
    assert preview([[1, 2]]) == "[[1, 2]]"
