"""MLflow "models from code" definition for the ``digits`` seed example.

This file is copied into the MLflow model directory and executed on load, so it must be
self-contained (only mlflow, numpy and torch). Nothing is pickled: the weights are a
``state_dict`` read with ``torch.load(..., weights_only=True)``.

Input: float32 array of shape (-1, 64), 8x8 images flattened row-major, pixels 0..16.
Output: list of predicted digits (int), one per row.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn

N_PIXELS = 64
MAX_PIXEL = 16.0


class DigitsCNN(nn.Module):
    """Small CNN for 8x8 digits; takes (N, 64) raw pixels, returns (N, 10) logits."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 8, 8) / MAX_PIXEL
        return self.classifier(self.features(x))


class DigitsClassifier(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: run the CNN and return the arg-max digit per row."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model = DigitsCNN()
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    # Fine-tuning (`maas finetune`): the CNN is `model`, its state_dict the `weights`
    # artifact; it takes raw pixels and outputs one logit per digit.
    finetune_loss = "cross_entropy"
    # Explanations: a row is an 8x8 image, so each gets its saliency map (8 x 8).
    image_shape = (8, 8)

    # np.ndarray (not list[...]) on purpose: MLflow then infers the signature from the
    # float32 input example (a tensor spec) and the scoring server parses
    # {"inputs": [[...], ...]} into a float32 array before calling predict.
    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> list[int]:
        x = np.asarray(model_input, dtype=np.float32).reshape(-1, N_PIXELS)
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(x))
        return [int(d) for d in logits.argmax(dim=1).tolist()]


mlflow.models.set_model(DigitsClassifier())
