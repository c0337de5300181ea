"""Seed example ``tabular``: PyTorch MLP on scikit-learn's breast-cancer dataset.

Logged with MLflow "models from code" (``model.py``): the trained ``state_dict`` and a
JSON scaler (mean, scale, class names) are the only artifacts, nothing is pickled.
Input: float32 rows of the 30 raw features. Output: ``"malignant"`` or ``"benign"``.

Run ``python -m examples.tabular.train`` from the repository root to train and register.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

from examples._common import (
    TrainedExample,
    artifact_dir,
    fit_minibatch,
    held_out_rows,
    main,
    stratified_split,
)
from examples.tabular.model import BreastCancerMLP

logger = logging.getLogger(__name__)

NAME = "tabular"
MODEL_CODE = str(Path(__file__).with_name("model.py"))
SEED = 0
TEST_SIZE = 0.2
EPOCHS = 60
BATCH_SIZE = 32
LR = 1e-3


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    data = load_breast_cancer()
    train_idx, test_idx = stratified_split(data.target, TEST_SIZE, SEED)
    return data.data, data.target, train_idx, test_idx, [str(c) for c in data.target_names]


def _sample_rows() -> list[list[float]]:
    """One held-out row of each class (malignant first), as plain Python floats."""
    x, y, _, test_idx, _ = _split()
    return held_out_rows(x, y, test_idx, (0, 1))


SAMPLE_INPUTS: list = _sample_rows()


def train() -> TrainedExample:
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x, y, train_idx, test_idx, classes = _split()
    x = x.astype(np.float32)
    mean = x[train_idx].mean(axis=0)
    scale = x[train_idx].std(axis=0)
    scale[scale == 0] = 1.0

    x_train = torch.from_numpy((x[train_idx] - mean) / scale)
    y_train = torch.from_numpy(y[train_idx].astype(np.float32))
    x_test = torch.from_numpy((x[test_idx] - mean) / scale)
    y_test = y[test_idx]

    model = BreastCancerMLP()
    optimiser = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    fit_minibatch(
        model.logits, loss_fn, optimiser, x_train, y_train,
        epochs=EPOCHS, batch_size=BATCH_SIZE, seed=SEED,
    )  # fmt: skip

    model.eval()
    with torch.inference_mode():
        pred = (model(x_test).numpy() >= 0.5).astype(int)
    accuracy = float((pred == y_test).mean())
    logger.info("tabular held-out accuracy %.4f on %d rows", accuracy, len(y_test))

    out = artifact_dir(NAME)
    weights = out / "weights.pt"
    scaler = out / "scaler.json"
    torch.save(model.state_dict(), weights)
    scaler.write_text(
        json.dumps(
            {
                "mean": mean.tolist(),
                "scale": scale.tolist(),
                "classes": classes,
                "features": [str(f) for f in load_breast_cancer().feature_names],
            }
        ),
        encoding="utf-8",
    )
    return TrainedExample(
        model=MODEL_CODE,
        input_example=np.asarray(SAMPLE_INPUTS, dtype=np.float32),
        artifacts={"weights": str(weights), "scaler": str(scaler)},
        # What `.../explain` compares a row with: 100 training rows, raw like the input.
        background=x[np.random.default_rng(SEED).choice(train_idx, 100, replace=False)],
        metrics={
            "test_accuracy": accuracy,
            "n_train": float(len(train_idx)),
            "n_test": float(len(test_idx)),
        },
        description=(
            "Breast-cancer diagnosis (sklearn load_breast_cancer): PyTorch MLP 30-64-32-1 "
            "with sigmoid output on standardised features. Input: float32 rows of the "
            "30 raw features. Output: 'malignant' or 'benign' per row."
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
