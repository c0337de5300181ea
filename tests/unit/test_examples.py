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


@pytest.mark.parametrize("name", ["sentiment", "tabular", "digits", "minilm"])
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
