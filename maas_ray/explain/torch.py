"""Captum's integrated gradients for the platform's PyTorch models.

Two packagings (as ``training/torch_model.py`` reads them): a models-from-code
``PythonModel`` holding its module as ``model``, whose ``finetune_loss`` says what
the module outputs and whose ``finetune_inputs`` (if any) turns raw rows into what
it takes (a standardisation: the attributions keep the raw columns' names); or a
module logged with ``mlflow.pytorch``, which takes the rows as float32.

The explained output is the predicted class's probability (a classifier whose
output says so), else the module's output. The reference input is the
background's mean where ``register(background=...)`` stored one, else zeros (in
the module's input space). Integrated gradients' completeness: a row's
attributions add up to its output minus the reference's, up to the integral's
error (``STEPS`` points).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas_ray.explain.answer import Explained, RowExplanation, row

STEPS = 128  # Gauss-Legendre points of the path integral: error ~1e-4 on small MLPs


class TorchExplainer:
    """Integrated gradients of a torch module (see the module's docstring)."""

    method = "captum.IntegratedGradients"

    def __init__(
        self,
        module: Any,
        loss: str | None,
        prepare: Any,
        background: Any,
        columns: list[str] | None,
        classes: list[Any] | None = None,
    ) -> None:
        import torch
        from captum.attr import IntegratedGradients

        self.torch = torch
        self.module = module
        self.loss = loss
        self.prepare = prepare  # raw rows -> the module's float32 input (numpy)
        self.classes = classes
        self.columns = columns
        self.ig = IntegratedGradients(self._forward)
        self.reference: np.ndarray | None = None
        self.background_rows = 0
        if background is not None:
            prepared = self._prepared(background)
            self.reference = prepared.mean(axis=0, keepdims=True)
            self.background_rows = int(prepared.shape[0])
        self.output = "value" if loss == "mse" else "probability"

    def _prepared(self, data: Any) -> np.ndarray:
        values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        x = np.asarray(values, dtype=np.float32)
        x = x.reshape(len(x), -1) if x.ndim != 2 else x
        return np.asarray(self.prepare(x) if self.prepare else x, dtype=np.float32)

    def _forward(self, x: Any) -> Any:
        """The module's output as one column per explainable output (per class)."""
        torch = self.torch
        out = self.module(x)
        out = out.reshape(out.shape[0], -1)
        if self.loss == "binary_probability" or self.loss == "binary_logits":
            p = torch.sigmoid(out[:, 0]) if self.loss == "binary_logits" else out[:, 0]
            return torch.stack([1 - p, p], dim=1)
        if self.loss == "mse" or out.shape[1] == 1:
            return out[:, :1]
        return torch.softmax(out, dim=1)  # cross_entropy, or a module with one logit per class

    def explain(self, data: Any) -> Explained:
        torch = self.torch
        x = torch.from_numpy(self._prepared(data))
        reference = (
            torch.zeros_like(x)
            if self.reference is None
            else torch.from_numpy(self.reference).expand_as(x).contiguous()
        )
        with torch.no_grad():
            outputs = self._forward(x).numpy()
            baselines = self._forward(reference).numpy()
        targets = outputs.argmax(axis=1).tolist() if outputs.shape[1] > 1 else [0] * len(x)
        attributions = self.ig.attribute(
            x, baselines=reference, target=targets, n_steps=STEPS, internal_batch_size=4096
        )
        values = attributions.detach().numpy()
        names = self.columns or []
        if len(names) != x.shape[1]:
            names = [f"x[{i}]" for i in range(x.shape[1])]
        rows: list[RowExplanation] = []
        for i, k in enumerate(targets):
            label = None
            if outputs.shape[1] > 1:
                label = self.classes[k] if self.classes and k < len(self.classes) else k
            rows.append(row(outputs[i, k], baselines[i, k], names, values[i], label))
        return Explained(self.method, self.output, self.background_rows, rows)
