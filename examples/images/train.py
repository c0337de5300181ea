"""Example ``images``: image classification with a small ResNet (PyTorch).

Trained on scikit-learn's ``load_digits`` (8x8 digits, 0..16), each digit put through
the served model's own :func:`~examples.images.model.normalise` (cropped to its ink
and scaled to 32x32), with light augmentation: a random small rotation, scale and
shift per image and epoch. A stratified fifth is held out; its accuracy goes into the
metrics (the version's tags), once on the 32x32 arrays and once through the served
path: each held-out digit written as a dark-on-light PNG, decoded by Pillow.

Logged with MLflow "models from code" (``model.py``): a ``state_dict`` (``weights``)
and a JSON file of the class labels and layer widths (``labels``); nothing is pickled.
Input: a list / 1-D array of base64 PNG or JPEG strings. Output: the top classes with
their probabilities per image.

Run ``python -m examples.images.train`` from the repository root to train and register.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F  # noqa: N812 - torch's own spelling

from examples._common import TrainedExample, artifact_dir, main, stratified_split
from examples.images.model import SIZE, SmallResNet, normalise, to_batch

logger = logging.getLogger(__name__)

NAME = "images"
MODEL_CODE = str(Path(__file__).with_name("model.py"))
SEED = 0
TEST_SIZE = 0.2
EPOCHS = 12
BATCH_SIZE = 64
LR = 3e-3
WIDTHS = (16, 32, 64)
LABELS = [str(d) for d in range(10)]
MAX_ROTATION_DEG = 10.0
SCALES = (0.9, 1.1)
MAX_SHIFT_PX = 1.5
SAMPLE_SIZE_PX = 64  # the side of a sample PNG


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """load_digits' 8x8 images (0..16), their labels, and the train / held-out indices."""
    data = load_digits()
    train_idx, test_idx = stratified_split(data.target, TEST_SIZE, SEED)
    return data.images, data.target, train_idx, test_idx


def render(digit: np.ndarray, size: int = SAMPLE_SIZE_PX, fmt: str = "PNG") -> bytes:
    """An 8x8 load_digits image as a picture of it: dark ink on white, ``size`` pixels
    square (bicubic), encoded as PNG or JPEG."""
    from PIL import Image

    ink = np.clip(np.asarray(digit, dtype=np.float32) / 16.0, 0, 1)
    img = Image.fromarray((255 * (1 - ink)).round().astype(np.uint8))
    img = img.resize((size, size), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def held_out_digit(label: int, nth: int = 0) -> np.ndarray:
    """The ``nth`` held-out 8x8 image of ``label`` (never trained on)."""
    images, target, _, test_idx = split()
    rows = [int(i) for i in test_idx if target[i] == label]
    return images[rows[nth]]


def _sample_inputs() -> list[str]:
    """Two held-out digits (a 3 and an 8) as base64 PNGs, as a client sends them."""
    return [base64.b64encode(render(held_out_digit(d))).decode("ascii") for d in (3, 8)]


SAMPLE_INPUTS: list = _sample_inputs()


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random rotation, scale and shift of each (N, 1, SIZE, SIZE) image."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION_DEG)
    scale = SCALES[0] + torch.rand(n, generator=generator) * (SCALES[1] - SCALES[0])
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * MAX_SHIFT_PX / SIZE)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int = SEED
) -> list[float]:
    """Adam with a one-cycle learning rate, augmented mini-batches; each epoch's mean loss."""
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / BATCH_SIZE)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=LR, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimiser.zero_grad()
            loss = loss_fn(model(augment(x[batch], generator)), y[batch])
            loss.backward()
            optimiser.step()
            scheduler.step()
            total += loss.item() * len(batch)
        losses.append(total / len(order))
        logger.info("images epoch %d/%d loss %.4f", epoch + 1, epochs, losses[-1])
    return losses


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Share of rows of (N, SIZE, SIZE) inputs whose arg-max class is ``y``."""
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(x).unsqueeze(1)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def train(epochs: int = EPOCHS, limit: int | None = None, seed: int = SEED) -> TrainedExample:
    """Train on the digits and score the held-out split.

    ``limit`` keeps only the first ``limit`` training and ``limit // 4`` held-out
    images (a quick run, e.g. for unit tests).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    # At most two threads (as the other examples); fewer where OMP_NUM_THREADS says so.
    torch.set_num_threads(min(2, torch.get_num_threads()))
    images, target, train_idx, test_idx = split()
    if limit is not None:
        train_idx, test_idx = train_idx[:limit], test_idx[: max(1, limit // 4)]
    x = np.stack([normalise(img) for img in images])
    y = target.astype(np.int64)
    model = SmallResNet(len(LABELS), WIDTHS)
    losses = fit(
        model,
        torch.from_numpy(x[train_idx]).unsqueeze(1),
        torch.from_numpy(y[train_idx]),
        epochs=epochs,
        seed=seed,
    )
    train_s = time.perf_counter() - started

    test_accuracy = accuracy(model, x[test_idx], y[test_idx])
    # The served path: held-out digits as PNG pictures, decoded and normalised by model.py.
    pictures = to_batch([render(images[i]) for i in test_idx])
    png_accuracy = accuracy(model, pictures, y[test_idx])
    metrics = {
        "test_accuracy": test_accuracy,
        "test_accuracy_png": png_accuracy,
        "final_train_loss": losses[-1] if losses else float("nan"),
        "n_train": float(len(train_idx)),
        "n_test": float(len(test_idx)),
        "n_params": float(sum(p.numel() for p in model.parameters())),
        "train_seconds": train_s,
    }
    logger.info(
        "images held-out accuracy %.4f (%.4f as PNGs) on %d images (%.0fs training)",
        test_accuracy, png_accuracy, len(test_idx), train_s,
    )  # fmt: skip

    out = artifact_dir(NAME)
    weights = out / "weights.pt"
    labels = out / "labels.json"
    torch.save(model.state_dict(), weights)
    labels.write_text(json.dumps({"labels": LABELS, "widths": list(WIDTHS)}), encoding="utf-8")
    return TrainedExample(
        model=MODEL_CODE,
        input_example=np.array(SAMPLE_INPUTS, dtype=str),
        artifacts={"weights": str(weights), "labels": str(labels)},
        metrics=metrics,
        description=(
            "Image classification: a small ResNet (about 80k parameters) trained on "
            "scikit-learn's load_digits scaled to 32x32. Input: list of base64 PNG or "
            "JPEG strings (or an image/png or image/jpeg body). Output per image: "
            '{"top": [{"label", "probability"}, ...]}, the 3 likeliest digits.'
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
