"""MLflow "models from code" definition for the ``tabular`` seed example.

This file is copied into the MLflow model directory and executed on load, so it must be
self-contained (only mlflow, numpy and torch). Nothing is pickled: the weights are a
``state_dict`` read with ``torch.load(..., weights_only=True)`` and the standardisation
parameters plus class names come from a JSON artifact.

Input: float32 array of shape (-1, 30), the raw breast-cancer features.
Output: list of class names (``"malignant"`` / ``"benign"``), one per row.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn

N_FEATURES = 30
DEFAULT_CLASSES = ("malignant", "benign")


class BreastCancerMLP(nn.Module):
    """30 -> 64 -> 32 -> 1 MLP; ``forward`` returns P(class 1) via a sigmoid."""

    def __init__(self, n_features: int = N_FEATURES) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 1),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class TabularClassifier(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: standardise, run the MLP, threshold at 0.5, map to class names."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        with open(context.artifacts["scaler"], encoding="utf-8") as fh:
            scaler = json.load(fh)
        self.mean = np.asarray(scaler["mean"], dtype=np.float32)
        self.scale = np.asarray(scaler["scale"], dtype=np.float32)
        self.classes = list(scaler.get("classes", DEFAULT_CLASSES))
        # The 30 columns' names, for explanations (`.../explain`); older versions have none.
        self.feature_names = scaler.get("features")
        self.model = BreastCancerMLP(n_features=self.mean.shape[0])
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    # Fine-tuning (`maas finetune`): the module above is `model`, its state_dict the
    # `weights` artifact; it outputs P(class 1). Rows are standardised as at predict
    # time; labels may be class names or 0/1.
    finetune_loss = "binary_probability"

    def finetune_inputs(self, rows: np.ndarray) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float32).reshape(-1, self.mean.shape[0])
        return (x - self.mean) / self.scale

    def finetune_targets(self, labels: np.ndarray) -> np.ndarray:
        index = {**{name: i for i, name in enumerate(self.classes)}, 0: 0, 1: 1}
        out = []
        for value in labels:
            key = value if isinstance(value, str) else int(value)
            if key not in index:
                raise ValueError(f"'{value}' is none of {', '.join(self.classes)}, 0, 1")
            out.append(index[key])
        return np.asarray(out, dtype=np.float32)

    # np.ndarray (not list[...]) on purpose: MLflow then infers the signature from the
    # float32 input example (a tensor spec) and the scoring server parses
    # {"inputs": [[...], ...]} into a float32 array before calling predict.
    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> list[str]:
        x = np.asarray(model_input, dtype=np.float32).reshape(-1, self.mean.shape[0])
        x = (x - self.mean) / self.scale
        with torch.inference_mode():
            proba = self.model(torch.from_numpy(x)).numpy()
        return [self.classes[int(p >= 0.5)] for p in proba]


mlflow.models.set_model(TabularClassifier())
