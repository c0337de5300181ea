"""Saliency maps drawn as PNG heat maps (``?format=png`` on an explain call).

Diverging colours on white: red where a pixel raised the explained output, blue
where it lowered it, the strongest pixel (by |value|) in full colour; each map
pixel becomes a square of ``scale`` x ``scale`` image pixels so that a 32 x 32
map is seen at 256 x 256. Pillow draws it (loaded on the first map).
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

MIN_SIDE_PX = 256  # the PNG's longer side is at least this (whole multiples of the map)


def scale_of(height: int, width: int) -> int:
    """Image pixels per map pixel along each side."""
    return max(1, math.ceil(MIN_SIDE_PX / max(height, width, 1)))


def heat_png(saliency: np.ndarray) -> bytes:
    """The H x W map as PNG bytes (RGB, ``scale_of(H, W)`` times its size)."""
    from PIL import Image

    values = np.asarray(saliency, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"got a map of shape {values.shape}: expected H x W")
    peak = float(np.abs(values).max()) if values.size else 0.0
    level = values / peak if peak > 0 and math.isfinite(peak) else np.zeros_like(values)
    fade = (255 * (1 - np.abs(level))).round().astype(np.uint8)  # 255: no contribution
    full = np.full_like(fade, 255)
    red = np.where(level >= 0, full, fade)
    blue = np.where(level <= 0, full, fade)
    rgb = np.stack([red, fade, blue], axis=-1)
    h, w = values.shape
    k = scale_of(h, w)
    img = Image.fromarray(rgb).resize((w * k, h * k), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def heat_png_base64(saliency: np.ndarray | list[list[float]]) -> str:
    """``heat_png`` as base64 text, as an explain answer carries it."""
    return base64.b64encode(heat_png(np.asarray(saliency))).decode("ascii")
