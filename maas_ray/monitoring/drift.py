"""Input drift: reference statistics per feature, and PSI of live inputs against them.

A version's reference is built from its training data, where the platform trained it
(the features of the run's staged ``input/data.*``), else from the first
``REFERENCE_ROWS`` inputs it logged; positional inputs take their names from the
version's signature, so the two line up. The live window is compared
with it feature by feature with the population stability index,

    PSI = sum over bins of (live% - ref%) * ln(live% / ref%)

numeric features binned at the reference's deciles (below its minimum and above
its maximum are bins of their own), categorical ones by their
frequencies (the reference's most common values, the rest as one bin), text by
the distribution of its length in characters and in tokens, and the share of
tokens the reference never saw. A feature drifts at PSI >= ``psi_max`` (0.2 by
default) with at least ``min_rows`` live rows.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import orjson
import pandas as pd

from maas_ray.monitoring.models import Drift, FeatureDrift

REFERENCE_ROWS = 500
BINS = 10
TOP_VALUES = 30
OTHER = "__other__"
EPSILON = 1e-4  # an empty bin counts as this share, so PSI stays finite
TEXT_MIN_CHARS = 16  # a string column with longer values on average is text
_TOKEN = re.compile(r"\w+", re.UNICODE)


def rows_of(inputs: str, content_type: str | None) -> pd.DataFrame:
    """A logged request body as a frame (columns as the caller named them, else 0, 1, ...)."""
    if content_type and content_type.split(";", 1)[0].strip().lower() == "text/csv":
        return pd.read_csv(io.StringIO(inputs))
    data = orjson.loads(inputs)
    if not isinstance(data, dict):
        return pd.DataFrame()
    if "dataframe_split" in data:
        split = data["dataframe_split"]
        return pd.DataFrame(split.get("data", []), columns=split.get("columns"))
    if "dataframe_records" in data:
        return pd.DataFrame(data["dataframe_records"])
    rows = data.get("inputs", data.get("instances"))
    if isinstance(rows, dict):
        return pd.DataFrame(rows)
    if not isinstance(rows, list):
        return pd.DataFrame()
    if all(isinstance(r, list) for r in rows):
        frame = pd.DataFrame(rows)
        frame.columns = [str(c) for c in frame.columns]
        return frame
    if all(isinstance(r, dict) for r in rows):
        return pd.DataFrame(rows)
    return pd.DataFrame({"input": rows})


def input_names(signature: dict[str, Any] | None) -> list[str]:
    """The column names a version's signature gives its inputs ([] for tensors)."""
    raw = (signature or {}).get("inputs")
    specs = orjson.loads(raw) if isinstance(raw, str) else raw or []
    names = [s.get("name") for s in specs if isinstance(s, dict)]
    return [str(n) for n in names] if names and all(names) else []


def named(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Positional columns (0, 1, ... or one unnamed ``input``) as the signature names them."""
    columns = [str(c) for c in frame.columns]
    positional = columns == [str(i) for i in range(len(columns))] or columns == ["input"]
    if names and positional and len(columns) == len(names):
        return frame.set_axis(names, axis=1)
    return frame


def frame_of(inputs: list[str], content_types: list[str | None]) -> pd.DataFrame:
    """Every logged body that parses, as one frame."""
    frames = []
    for text, ctype in zip(inputs, content_types, strict=True):
        try:
            frame = rows_of(text, ctype)
        except (orjson.JSONDecodeError, ValueError, TypeError, pd.errors.ParserError):
            continue
        if not frame.empty:
            frames.append(frame)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _kind(column: pd.Series) -> str:
    values = column.dropna()
    if values.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(values):
        return "categorical"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    text = values.astype(str)
    return "text" if text.str.len().mean() >= TEXT_MIN_CHARS else "categorical"


def reference(frame: pd.DataFrame) -> dict[str, Any]:
    """Per feature: its kind and what live inputs are binned against."""
    features: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        kind = _kind(column)
        values = column.dropna()
        if kind == "numeric":
            numbers = values.astype(float).to_numpy()
            edges = _edges(numbers)
            features[str(name)] = {
                "kind": kind,
                "edges": edges.tolist(),
                "shares": _numeric_shares(numbers, edges),
            }
        elif kind == "categorical":
            counts = values.astype(str).value_counts(normalize=True)
            top = counts.head(TOP_VALUES)
            shares = {str(k): float(v) for k, v in top.items()}
            shares[OTHER] = float(max(0.0, 1.0 - sum(shares.values())))
            features[str(name)] = {"kind": kind, "shares": shares}
        elif kind == "text":
            text = values.astype(str)
            chars = text.str.len().to_numpy(dtype=float)
            tokens = text.map(lambda t: len(_TOKEN.findall(t))).to_numpy(dtype=float)
            char_edges, token_edges = _edges(chars), _edges(tokens)
            vocabulary = sorted({w.lower() for t in text for w in _TOKEN.findall(t)})
            features[str(name)] = {
                "kind": kind,
                "char_edges": char_edges.tolist(),
                "char_shares": _numeric_shares(chars, char_edges),
                "token_edges": token_edges.tolist(),
                "token_shares": _numeric_shares(tokens, token_edges),
                "vocabulary": vocabulary[:20_000],
            }
    return {"rows": int(len(frame)), "features": features}


def _edges(values: np.ndarray) -> np.ndarray:
    """Bin edges at the deciles, the minimum and the maximum included (unique)."""
    return np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)))


def _numeric_shares(values: np.ndarray, edges: np.ndarray | list[float]) -> list[float]:
    """Shares of ``values`` per bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    bins = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return (counts / max(1, len(values))).tolist()


def psi(expected: list[float], actual: list[float]) -> float:
    """The population stability index of two distributions over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(
    ref: dict[str, Any], live: pd.DataFrame, psi_max: float = 0.2, min_rows: int = 200
) -> Drift:
    """Each reference feature's PSI over the live rows; drifted where PSI >= ``psi_max``."""
    source = ref.get("source")
    if len(live) < min_rows:
        return Drift(
            status="not enough data",
            reference=source,
            reference_rows=ref["rows"],
            live_rows=len(live),
        )
    out = []
    for name, feature in ref["features"].items():
        column = live[name].dropna() if name in live.columns else pd.Series(dtype=object)
        kind = feature["kind"]
        if kind == "numeric":
            numbers = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
            value = psi(feature["shares"], _numeric_shares(numbers, feature["edges"]))
            out.append(FeatureDrift(feature=name, kind=kind, psi=round(value, 4)))
        elif kind == "categorical":
            counts = column.astype(str).value_counts(normalize=True)
            known = feature["shares"]
            actual = [float(counts.get(k, 0.0)) for k in known if k != OTHER]
            actual.append(float(max(0.0, 1.0 - sum(actual))))
            value = psi(list(known.values()), actual)
            out.append(FeatureDrift(feature=name, kind=kind, psi=round(value, 4)))
        elif kind == "text":
            text = column.astype(str)
            chars = text.str.len().to_numpy(dtype=float)
            tokens_per = [_TOKEN.findall(t) for t in text]
            counts_ = np.array([len(t) for t in tokens_per], dtype=float)
            value = max(
                psi(feature["char_shares"], _numeric_shares(chars, feature["char_edges"])),
                psi(feature["token_shares"], _numeric_shares(counts_, feature["token_edges"])),
            )
            vocabulary = set(feature["vocabulary"])
            words = [w.lower() for t in tokens_per for w in t]
            unseen = sum(w not in vocabulary for w in words) / len(words) if words else 0.0
            out.append(
                FeatureDrift(
                    feature=name, kind=kind, psi=round(value, 4), unseen_tokens=round(unseen, 4)
                )
            )
    for f in out:
        f.drifted = math.isfinite(f.psi) and f.psi >= psi_max
    drifted = any(f.drifted for f in out)
    return Drift(
        status="drifting" if drifted else "ok",
        reference=source,
        reference_rows=ref["rows"],
        live_rows=len(live),
        features=out,
    )
