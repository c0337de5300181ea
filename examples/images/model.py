"""MLflow "models from code" definition for the ``images`` example: a small ResNet.

This file is copied into the MLflow model directory and executed on load, so it must be
self-contained (only mlflow, numpy, torch and Pillow). Nothing is pickled: the weights
are a ``state_dict`` read with ``torch.load(..., weights_only=True)``; the class labels
come from a JSON artifact (``labels``).

Input: a list / 1-D array of images, each a base64 string of PNG or JPEG bytes (any
format Pillow opens), or the bytes themselves. Output: one ``{"top": [{"label": ...,
"probability": ...}, ...]}`` per image, the ``TOP_K`` likeliest classes first.

Every image goes through :func:`normalise` (training images too): grayscale, ink
bright on a dark background whatever the image had (see there), cropped to the ink,
and scaled into a 32x32 square.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - torch's own spelling

SIZE = 32  # the network's input: SIZE x SIZE, one channel, 0..1, ink high
MARGIN = 2  # pixels of background around the ink's box in the SIZE x SIZE input
TOP_K = 3
INK = 0.25  # after contrast stretching, a pixel brighter than this is ink
# The ink's square is averaged down to DETAIL x DETAIL before it is scaled up to the
# input: load_digits was made so (32x32 bitmaps counted in 4x4 blocks), and a crisp
# drawing with thin strokes then looks like the digits the network learnt (a drawn 7
# read as a 3 without it). 0 keeps every detail the input size holds.
DETAIL = 8
MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)
BATCH = 256  # images through the network at once

logger = logging.getLogger(__name__)


def pick_device() -> str:
    """``cuda`` when this process sees a GPU (a replica given ``num_gpus``), else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


# -- the network ------------------------------------------------------------------------


class Block(nn.Module):
    """A ResNet basic block: two 3x3 convolutions plus the input (projected by a 1x1
    convolution where the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """(N, 1, 32, 32) images in 0..1 -> (N, n_classes) logits.

    A 3x3 stem then three stages of basic blocks at 16x16, 8x8 and 4x4 (the stem's
    stride halves the input first: the digits carry no detail finer than that), global
    average pooling and one linear layer; about 80k parameters.
    """

    def __init__(self, n_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(1, w1, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w1), nn.ReLU()
        )
        self.stages = nn.Sequential(Block(w1, w1), Block(w1, w2, 2), Block(w2, w3, 2))
        self.head = nn.Linear(w3, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x.reshape(-1, 1, SIZE, SIZE)))
        return self.head(x.mean(dim=(2, 3)))


# -- images in ----------------------------------------------------------------------------


def normalise(gray: np.ndarray) -> np.ndarray:
    """A 2-D grayscale image (any size and range) as the network's SIZE x SIZE input.

    Polarity: load_digits' digits are light on dark; a photo or a drawing of a digit is
    usually dark on light. The border decides: where the outermost pixels are brighter
    than the image's middle value, the image is inverted, so either kind gives bright
    ink on a dark background. Then the contrast is stretched to 0..1, the image cropped
    to the box of its ink, padded to a square and scaled to fit inside ``MARGIN``.
    """
    from PIL import Image

    g = np.asarray(gray, dtype=np.float32)
    lo, hi = float(g.min()), float(g.max())
    if hi - lo < 1e-6:  # one colour: nothing to see
        return np.zeros((SIZE, SIZE), dtype=np.float32)
    g = (g - lo) / (hi - lo)
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if float(np.median(border)) > 0.5:
        g = 1.0 - g
    rows, cols = np.nonzero(g > INK)
    g = g[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    side = max(g.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - g.shape[0]) // 2, (side - g.shape[1]) // 2
    square[top : top + g.shape[0], left : left + g.shape[1]] = g
    inner = SIZE - 2 * MARGIN
    img = Image.fromarray(square)
    if DETAIL and side > DETAIL:
        img = img.resize((DETAIL, DETAIL), Image.Resampling.BOX)
        small = np.asarray(img)
        img = Image.fromarray(small / max(float(small.max()), 1e-6))
    scaled = img.resize((inner, inner), Image.Resampling.BILINEAR)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[MARGIN : MARGIN + inner, MARGIN : MARGIN + inner] = np.clip(np.asarray(scaled), 0, 1)
    return out


def image_bytes(item: Any) -> bytes:
    """The encoded image one input holds: bytes as they are, a string as base64
    (a ``data:image/...;base64,`` prefix and whitespace allowed)."""
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if not isinstance(item, str):
        raise TypeError(f"expected a base64 string or bytes, got {type(item).__name__}")
    text = item.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from None


def decode(data: bytes) -> np.ndarray:
    """Encoded image bytes as a 2-D grayscale array (0..255); transparency is laid on
    white, a JPEG's EXIF orientation applied."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(
                    f"{img.width}x{img.height} pixels is over the limit of {MAX_PIXELS:,}"
                )
            img.draft("L", (4 * SIZE, 4 * SIZE))  # a big JPEG decodes at a fraction
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            return np.asarray(img.convert("L"), dtype=np.float32)
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read (PNG, JPEG, ...)") from None
    except (OSError, SyntaxError) as exc:  # truncated or corrupt files
        raise ValueError(f"cannot decode the image: {exc}") from None


def to_batch(items: Iterable[Any]) -> np.ndarray:
    """Inputs (base64 strings or bytes) as an (N, SIZE, SIZE) float32 array; the error
    names the input that failed."""
    images = []
    for i, item in enumerate(items):
        try:
            images.append(normalise(decode(image_bytes(item))))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input {i} is not a usable image: {exc}") from None
    return np.stack(images) if images else np.zeros((0, SIZE, SIZE), dtype=np.float32)


def top_k(probabilities: np.ndarray, labels: list[str], k: int = TOP_K) -> list[dict[str, Any]]:
    """One ``{"top": [{"label", "probability"}, ...]}`` per row, likeliest first."""
    k = min(k, len(labels))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        {
            "top": [
                {"label": labels[j], "probability": round(float(row[j]), 6)}
                for j in order_row.tolist()
            ]
        }
        for row, order_row in zip(probabilities, order, strict=True)
    ]


# -- the served model ---------------------------------------------------------------------


class ImageClassifier(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: decode, normalise, run the ResNet, answer the top classes."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        started = time.perf_counter()
        with open(context.artifacts["labels"], encoding="utf-8") as fh:
            spec = json.load(fh)
        self.labels = [str(label) for label in spec["labels"]]
        self.classes = self.labels  # what the explainer names the predicted class
        self.device = pick_device()
        model = SmallResNet(len(self.labels), tuple(spec.get("widths", (16, 32, 64))))
        state = torch.load(
            context.artifacts["weights"], map_location=self.device, weights_only=True
        )
        model.load_state_dict(state)
        self.model = model.to(self.device).eval()
        logger.info("loaded images on %s in %.2fs", self.device, time.perf_counter() - started)

    def explain_images(self, model_input: np.ndarray) -> torch.Tensor:
        """The platform's explainer asks this (``maas_ray/explain/_select.py``): the
        inputs as the network's (N, 1, SIZE, SIZE) input, decoded as ``predict`` does,
        so each gets a saliency map against a black (blank) image."""
        items = np.asarray(model_input, dtype=object).ravel().tolist()
        return torch.from_numpy(to_batch(items)).unsqueeze(1).to(self.device)

    # np.ndarray (not list[str]) on purpose: MLflow then infers a Tensor('str', (-1,))
    # signature from the input example (base64 strings), as for the text examples, and
    # the platform's text check refuses numbers before they reach Pillow.
    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        items = np.asarray(model_input, dtype=object).ravel().tolist()
        x = to_batch(items)
        probabilities = []
        with torch.inference_mode():
            for start in range(0, len(x), BATCH):
                batch = torch.from_numpy(x[start : start + BATCH]).to(self.device)
                probabilities.append(F.softmax(self.model(batch), dim=1).cpu().numpy())
        if not probabilities:
            return []
        return top_k(np.concatenate(probabilities), self.labels)


mlflow.models.set_model(ImageClassifier())
