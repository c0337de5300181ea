"""Dynamic batching: join parsed requests into one model call, split the answer back.

Pure functions; the Serve deployment calls them from a ``@serve.batch`` method.
Requests join only when their inputs are the same kind (arrays of one dtype and
row shape, or frames with the same columns) and their params are equal (one model
call takes one set); anything else is predicted alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def combine(
    items: list[Any], params: list[dict[str, Any] | None] | None = None
) -> tuple[Any, list[int]] | None:
    """One input holding every item's rows, and the row count of each; None if unjoinable
    (``params``: each item's request params; items with different ones never join)."""
    if len(items) < 2:
        return None
    if params is not None and not all(_same(p, params[0]) for p in params):
        return None
    first = items[0]
    if isinstance(first, np.ndarray) and first.ndim >= 1:
        if all(
            isinstance(x, np.ndarray)
            and x.ndim == first.ndim
            and _same_kind(x.dtype, first.dtype)
            and x.shape[1:] == first.shape[1:]
            for x in items
        ):
            return np.concatenate(items), [len(x) for x in items]
        return None
    if isinstance(first, pd.DataFrame):
        cols = list(first.columns)
        if all(isinstance(x, pd.DataFrame) and list(x.columns) == cols for x in items):
            frame = pd.concat(items, ignore_index=True)
            if any(frame[c].dtype != first[c].dtype for c in cols):
                return None  # joining changed a column's type: predict them apart
            return frame, [len(x) for x in items]
    return None


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal params (none and empty alike); arrays that cannot be compared: different."""
    try:
        return bool((a or None) == (b or None))
    except ValueError:  # NumPy arrays as values: == is elementwise
        return False


def _same_kind(a: np.dtype[Any], b: np.dtype[Any]) -> bool:
    """Equal dtypes, or both text: ``<U6`` and ``<U10`` join (concatenate widens)."""
    return a == b or (a.kind == b.kind and a.kind in "US")


def split(output: Any, lengths: list[int]) -> list[Any] | None:
    """Cut a joined model output into per-request parts; None if it has no row per input."""
    total = sum(lengths)
    if isinstance(output, pd.DataFrame | pd.Series | np.ndarray | list) and len(output) == total:
        parts = []
        start = 0
        for n in lengths:
            part = (
                output.iloc[start : start + n]
                if hasattr(output, "iloc")
                else output[start : start + n]
            )
            parts.append(part)
            start += n
        return parts
    return None
