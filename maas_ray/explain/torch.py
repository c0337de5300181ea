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

Images (see ``_select.py`` for how a model says it takes them): a PythonModel's
``explain_images(rows)`` turns the request's rows (encoded images) into the
module's N x C x H x W input; the reference is then a black image (zeros: the blank
background of a model whose input is ink bright on dark), or the background's mean
image, and each row also gets its saliency map, the attributions summed over the
channels (H x W). A module taking flat rows that are images (``image_shape``, e.g.
8 x 8 digits) gets the map of its pixels' attributions reshaped so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas_ray.explain.answer import Explained, RowExplanation, row

STEPS = 128  # Gauss-Legendre points of the path integral: error ~1e-4 on small MLPs
# Path points per backward pass: rows of features are small, images are not (a
# ResNet's activations at 4096 32x32 images would take GBs).
INTERNAL_BATCH = 4096
INTERNAL_BATCH_IMAGES = 256


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
        images: Any = None,
        image_shape: tuple[int, int] | None = None,
    ) -> None:
        import torch
        from captum.attr import IntegratedGradients

        self.torch = torch
        self.module = module
        self.loss = loss
        self.prepare = prepare  # raw rows -> the module's float32 input (numpy)
        self.classes = classes
        self.columns = columns
        self.images = images  # rows -> N x C x H x W tensor (explain_images), or None
        self.image_shape = image_shape  # flat rows that are H x W images, or None
        self.ig = IntegratedGradients(self._forward)
        self.reference: Any = None  # a tensor of one input's shape, or None: zeros
        self.background_rows = 0
        if background is not None:
            prepared = self._inputs(background)
            self.reference = prepared.mean(dim=0, keepdim=True).detach()
            self.background_rows = int(prepared.shape[0])
        self.output = "value" if loss == "mse" else "probability"

    def _prepared(self, data: Any) -> np.ndarray:
        values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        x = np.asarray(values, dtype=np.float32)
        x = x.reshape(len(x), -1) if x.ndim != 2 else x
        return np.asarray(self.prepare(x) if self.prepare else x, dtype=np.float32)

    def _inputs(self, data: Any) -> Any:
        """Rows as the module's float32 input tensor, on the module's device."""
        torch = self.torch
        if self.images is not None:
            x = self.images(np.asarray(data, dtype=object).ravel())
            x = torch.as_tensor(x, dtype=torch.float32)
        else:
            x = torch.from_numpy(self._prepared(data))
        device = next((p.device for p in self.module.parameters()), None)
        return x if device is None else x.to(device)

    def has_maps(self) -> bool:
        """Whether its rows get saliency maps (an image model)."""
        return self.images is not None or self.image_shape is not None

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
        x = self._inputs(data)
        reference = (
            torch.zeros_like(x)
            if self.reference is None
            else self.reference.expand_as(x).contiguous()
        )
        with torch.no_grad():
            outputs = self._forward(x).cpu().numpy()
            baselines = self._forward(reference).cpu().numpy()
        targets = outputs.argmax(axis=1).tolist() if outputs.shape[1] > 1 else [0] * len(x)
        batch = INTERNAL_BATCH_IMAGES if self.images is not None else INTERNAL_BATCH
        attributions = self.ig.attribute(
            x, baselines=reference, target=targets, n_steps=STEPS, internal_batch_size=batch
        )
        values = attributions.detach().cpu().numpy().astype(np.float64)
        maps = self._maps(values)
        values = values.reshape(len(values), -1)
        names = self.columns or []
        if len(names) != values.shape[1]:
            names = [f"x[{i}]" for i in range(values.shape[1])]
        rows: list[RowExplanation] = []
        for i, k in enumerate(targets):
            label = None
            if outputs.shape[1] > 1:
                label = self.classes[k] if self.classes and k < len(self.classes) else k
            saliency = None if maps is None else maps[i]
            rows.append(row(outputs[i, k], baselines[i, k], names, values[i], label, saliency))
        return Explained(self.method, self.output, self.background_rows, rows)

    def _maps(self, values: np.ndarray) -> np.ndarray | None:
        """Per row, the H x W saliency map of its attributions (None: not images)."""
        if self.images is not None:
            if values.ndim != 4:
                raise ValueError(
                    f"explain_images gave inputs of shape {values.shape[1:]}: expected C x H x W"
                )
            return values.sum(axis=1)
        if self.image_shape is not None:
            h, w = self.image_shape
            if int(np.prod(values.shape[1:])) == h * w:
                return values.reshape(len(values), h, w)
        return None
