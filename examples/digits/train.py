"""Seed example ``digits``: small PyTorch CNN on scikit-learn's 8x8 digits dataset.

Logged with MLflow "models from code" (``model.py``): the trained ``state_dict`` is the
only artifact, nothing is pickled.
Input: float32 rows of 64 pixel values (0..16). Output: the predicted digit (int).

Run ``python -m examples.digits.train`` from the repository root to train and register.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from examples._common import (
    TrainedExample,
    artifact_dir,
    fit_minibatch,
    held_out_rows,
    main,
    stratified_split,
)
from examples.digits.model import DigitsCNN

logger = logging.getLogger(__name__)

NAME = "digits"
MODEL_CODE = str(Path(__file__).with_name("model.py"))
SEED = 0
TEST_SIZE = 0.2
EPOCHS = 15
BATCH_SIZE = 64
LR = 3e-3


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = load_digits()
    train_idx, test_idx = stratified_split(data.target, TEST_SIZE, SEED)
    return data.data, data.target, train_idx, test_idx


def _sample_rows() -> list[list[float]]:
    """Two held-out rows (a 3 and an 8), as plain Python floats."""
    x, y, _, test_idx = _split()
    return held_out_rows(x, y, test_idx, (3, 8))


SAMPLE_INPUTS: list = _sample_rows()


def train() -> TrainedExample:
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x, y, train_idx, test_idx = _split()
    x = x.astype(np.float32)
    x_train = torch.from_numpy(x[train_idx])
    y_train = torch.from_numpy(y[train_idx].astype(np.int64))
    x_test = torch.from_numpy(x[test_idx])
    y_test = y[test_idx]

    model = DigitsCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    fit_minibatch(
        model, loss_fn, optimiser, x_train, y_train,
        epochs=EPOCHS, batch_size=BATCH_SIZE, seed=SEED,
    )  # fmt: skip

    model.eval()
    with torch.inference_mode():
        pred = model(x_test).argmax(dim=1).numpy()
    accuracy = float((pred == y_test).mean())
    logger.info("digits held-out accuracy %.4f on %d images", accuracy, len(y_test))

    out = artifact_dir(NAME)
    weights = out / "weights.pt"
    torch.save(model.state_dict(), weights)
    return TrainedExample(
        model=MODEL_CODE,
        input_example=np.asarray(SAMPLE_INPUTS, dtype=np.float32),
        artifacts={"weights": str(weights)},
        metrics={
            "test_accuracy": accuracy,
            "n_train": float(len(train_idx)),
            "n_test": float(len(test_idx)),
        },
        description=(
            "Handwritten digit recognition (sklearn load_digits, 8x8): small PyTorch CNN. "
            "Input: float32 rows of 64 pixel values in 0..16 (row-major 8x8). "
            "Output: the predicted digit 0-9 (int) per row."
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
