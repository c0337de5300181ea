"""Training data: read it, fingerprint it, check it, split off the label.

Accepted: a pandas DataFrame (the label in column ``label``, default ``target``),
a list of ``(features, label)`` pairs (features: a text, a sequence of numbers or a
mapping of column to value), or the path of a CSV or Parquet file. Every check
here runs before any cluster work, and fails with one line that says what to fix.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maas_ray.errors import BadRequest

SUFFIXES = (".csv", ".parquet", ".pq")
TEXT_COLUMN = "text"  # the feature column of (text, label) pairs


def sha256(data: bytes) -> str:
    """The data's fingerprint, as the registered version's ``maas.data_sha256`` tag."""
    return hashlib.sha256(data).hexdigest()


def read_file(path: str | Path) -> tuple[pd.DataFrame, bytes]:
    """A CSV or Parquet file as a frame, with the bytes it was read from."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise BadRequest(f"got '{path}' for data: give a .csv or .parquet file")
    if not path.is_file():
        raise BadRequest(f"got '{path}' for data: no such file")
    raw = path.read_bytes()
    return parse(raw, path.suffix.lower(), str(path)), raw


def parse(raw: bytes, suffix: str, where: str) -> pd.DataFrame:
    """Bytes of a CSV or Parquet file as a frame; a file that does not parse is a 400."""
    try:
        if suffix == ".csv":
            return pd.read_csv(io.BytesIO(raw))
        return pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # pandas raises many kinds; all mean the same here
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadRequest(f"could not read {where} as {suffix.lstrip('.')}: {first}") from exc


def to_frame(data: Any, label: str) -> tuple[pd.DataFrame, bytes, str]:
    """Any accepted form as ``(frame, bytes, suffix)``: the bytes are what the data's
    SHA-256 is taken over (a file's own bytes; in-memory data as CSV, no index)."""
    if isinstance(data, str | Path):
        frame, raw = read_file(data)
        return frame, raw, Path(data).suffix.lower()
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True)
    elif isinstance(data, Sequence) and not isinstance(data, bytes):
        frame = _pairs(data, label)
    else:
        raise BadRequest(
            f"got {type(data).__name__} for data: give a DataFrame, (features, label) "
            "pairs, or a .csv/.parquet path"
        )
    raw = frame.to_csv(index=False).encode()
    return frame, raw, ".csv"


def _pairs(pairs: Sequence[Any], label: str) -> pd.DataFrame:
    rows = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise BadRequest(f"data[{i}]: give a (features, label) pair, got {pair!r:.80}")
        features, target = pair
        if isinstance(features, str):
            row = {TEXT_COLUMN: features}
        elif isinstance(features, Mapping):
            row = {str(k): v for k, v in features.items()}
        elif isinstance(features, Sequence | np.ndarray):
            row = {f"x{j}": v for j, v in enumerate(features)}
        else:
            row = {"x0": features}
        if label in row:
            raise BadRequest(f"data[{i}]: a feature is named '{label}', like the label")
        rows.append({**row, label: target})
    return pd.DataFrame(rows)


def split_label(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and label, checked: rows present, label present and never missing,
    at least one feature column, and no column that is entirely empty."""
    if frame.empty:
        raise BadRequest("the data has no rows")
    if label not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise BadRequest(f"no label column '{label}' in the data (columns: {columns})")
    y = frame[label]
    missing = int(y.isna().sum())
    if missing:
        raise BadRequest(f"the label column '{label}' is empty in {missing} rows")
    X = frame.drop(columns=[label])
    if X.shape[1] == 0:
        raise BadRequest(f"the data has no feature columns besides the label '{label}'")
    empty = [str(c) for c in X.columns if X[c].isna().all()]
    if empty:
        raise BadRequest(f"feature columns with no values: {', '.join(empty[:10])}")
    return X, y


def model_input(X: pd.DataFrame, array: bool = False) -> pd.DataFrame | np.ndarray:
    """What the pipeline is fit on and the served version takes: one text column is a
    1-D array of strings (what a TF-IDF step expects, and ``{"inputs": ["..."]}``
    at predict time); anything else keeps its named columns, or with ``array`` is a
    2-D array (``{"inputs": [[...]]}``, like a model registered from NumPy)."""
    if array and X.shape[1] > 1:
        return X.to_numpy()
    if X.shape[1] == 1 and (
        X.iloc[:, 0].dtype == object or pd.api.types.is_string_dtype(X.iloc[:, 0])
    ):
        return X.iloc[:, 0].astype(str).to_numpy()
    return X


def take(data: pd.DataFrame | np.ndarray, rows: np.ndarray) -> pd.DataFrame | np.ndarray:
    """Rows of a model input by position."""
    if isinstance(data, pd.DataFrame):
        return data.iloc[rows].reset_index(drop=True)
    return data[rows]
