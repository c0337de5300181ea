"""Figures from the monitoring tables: operational, and quality from joined labels.

Pure functions of the tables (no MLflow, no Ray), so they are unit-tested with
the exact figures scikit-learn gives. A label joins the logged prediction with
the same request id: a scalar label to a one-row answer, a list of labels row by
row. The last label sent for a request id wins.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from maas_ray.monitoring.models import (
    Arm,
    ClassFigures,
    Confusion,
    Figures,
    Point,
    VersionFigures,
)
from maas_ray.spec import LOWER_IS_BETTER, QualityCheck

ARMS: tuple[Arm, ...] = ("production", "canary", "shadow")
POINT_FIGURES = set(Point.model_fields) - {"start"}  # what a series point copies


def latest_labels(labels: pa.Table) -> dict[str, Any]:
    """request id -> label, the last one sent for each id."""
    out: dict[str, Any] = {}
    if labels.num_rows == 0:
        return out
    order = np.argsort(np.asarray(labels.column("time").to_numpy()), kind="stable")
    ids = labels.column("request_id").to_pylist()
    values = labels.column("label").to_pylist()
    for i in order:
        out[ids[i]] = orjson.loads(values[i])
    return out


def _row_values(answer: str) -> list[Any] | None:
    """The per-row predictions of a logged answer (None: not a predictions answer)."""
    try:
        parsed = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("predictions"), list):
        return None
    rows = []
    for row in parsed["predictions"]:
        if isinstance(row, dict):  # a model answering {"label": ..., "score": ...} per row
            row = row.get("label", row.get("prediction"))
        rows.append(row)
    return rows


def pairs(
    outputs: list[str], request_ids: list[str], labels: dict[str, Any]
) -> list[tuple[Any, Any]]:
    """(label, prediction) per labelled row of the logged answers."""
    out: list[tuple[Any, Any]] = []
    for rid, answer in zip(request_ids, outputs, strict=True):
        if rid not in labels:
            continue
        rows = _row_values(answer)
        if rows is None:
            continue
        label = labels[rid]
        truths = label if isinstance(label, list) else [label]
        if len(truths) != len(rows):
            continue  # a label that does not fit the answer's rows is not joined
        out.extend((t, p) for t, p in zip(truths, rows, strict=True) if _scalar(t) and _scalar(p))
    return out


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


def task_of(joined: list[tuple[Any, Any]]) -> str | None:
    """classification, unless every value is a number and some are fractional."""
    if not joined:
        return None
    values = [v for pair in joined for v in pair]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numbers and any(isinstance(v, float) and not float(v).is_integer() for v in values):
        return "regression"
    return "classification"


def quality(joined: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per class and confusion; or MAE and RMSE."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    task = task_of(joined)
    if task is None:
        return {}
    if task == "regression":
        truth = np.array([float(t) for t, _ in joined])
        pred = np.array([float(p) for _, p in joined])
        error = pred - truth
        return {
            "task": task,
            "mae": float(np.mean(np.abs(error))),
            "rmse": float(np.sqrt(np.mean(error**2))),
        }
    truth_s = [_name(t) for t, _ in joined]
    pred_s = [_name(p) for _, p in joined]
    classes = sorted(set(truth_s) | set(pred_s))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth_s, pred_s, labels=classes, zero_division=0
    )
    matrix = confusion_matrix(truth_s, pred_s, labels=classes)
    return {
        "task": task,
        "accuracy": float(np.mean([t == p for t, p in zip(truth_s, pred_s, strict=True)])),
        "precision": float(np.mean(precision)),
        "recall": float(np.mean(recall)),
        "f1": float(np.mean(f1)),
        "per_class": {
            c: ClassFigures(
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                support=int(support[i]),
            )
            for i, c in enumerate(classes)
        },
        "confusion": Confusion(labels=classes, matrix=matrix.astype(int).tolist()),
    }


def _name(value: Any) -> str:
    """A class as text: 1 and 1.0 and "1" are the same class."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _percentile(latencies: list[float], weights: list[float], q: float) -> float | None:
    if not latencies:
        return None
    order = np.argsort(latencies)
    values = np.asarray(latencies)[order]
    cumulative = np.cumsum(np.asarray(weights)[order])
    index = int(np.searchsorted(cumulative, q / 100.0 * cumulative[-1]))
    return round(float(values[min(index, len(values) - 1)]), 3)


def figures(predictions: pa.Table, ops: pa.Table, labels: dict[str, Any]) -> Figures:
    """The figures of one version and arm over the rows given (already cut to a span)."""
    requests = int(pc.sum(ops.column("requests")).as_py() or 0) if ops.num_rows else 0
    errors = int(pc.sum(ops.column("errors")).as_py() or 0) if ops.num_rows else 0
    batches = int(pc.sum(ops.column("batches")).as_py() or 0) if ops.num_rows else 0
    batched = int(pc.sum(ops.column("batched")).as_py() or 0) if ops.num_rows else 0
    latencies: list[float] = []
    weights: list[float] = []
    for n, sample in zip(
        ops.column("requests").to_pylist(), ops.column("latency_ms").to_pylist(), strict=True
    ):
        if sample:
            latencies.extend(sample)
            weights.extend([n / len(sample)] * len(sample))  # a sample stands for its interval
    outputs = predictions.column("outputs").to_pylist()
    ids = predictions.column("request_id").to_pylist()
    rows = sum(len(r) for r in map(_row_values, outputs) if r is not None)
    joined = pairs(outputs, ids, labels)
    return Figures(
        requests=requests,
        errors=errors,
        error_rate=round(errors / requests, 6) if requests else None,
        p50_ms=_percentile(latencies, weights, 50),
        p95_ms=_percentile(latencies, weights, 95),
        p99_ms=_percentile(latencies, weights, 99),
        batch_size=round(batched / batches, 3) if batches else None,
        logged=predictions.num_rows,
        labelled=len(joined),
        labelled_share=round(len(joined) / rows, 6) if rows else None,
        **quality(joined),
    )


def _where(
    data: pa.Table, arm: str | None, since: float | None, until: float | None = None
) -> pa.Table:
    """The rows of ``arm`` (None: any) with ``since <= time < until`` (None: unbounded)."""
    times = data.column("time")
    mask = pc.is_valid(times)
    if arm is not None:
        mask = pc.and_(mask, pc.equal(data.column("arm"), arm))
    if since is not None:
        mask = pc.and_(mask, pc.greater_equal(times, since))
    if until is not None:
        mask = pc.and_(mask, pc.less(times, until))
    return data.filter(mask)


def series(
    predictions: pa.Table,
    ops: pa.Table,
    labels: dict[str, Any],
    since: float,
    bucket_s: float,
    buckets: int,
) -> list[Point]:
    """The figures of ``buckets`` equal spans from ``since`` on (tables of one arm)."""
    points = []
    for i in range(buckets):
        start = since + i * bucket_s
        end = start + bucket_s
        f = figures(_where(predictions, None, start, end), _where(ops, None, start, end), labels)
        points.append(Point(start=start, **f.model_dump(include=POINT_FIGURES)))
    return points


def report(
    version: str,
    predictions: pa.Table,
    ops: pa.Table,
    labels: dict[str, Any],
    since: float,
    buckets: int = 0,
    until: float | None = None,
) -> list[VersionFigures]:
    """One entry per arm this version answered in: the window next to all time.

    ``buckets`` > 0 also splits the window (``since`` to ``until``) into that many
    equal spans, each with its own figures (a chart's points).
    """
    arms = set(ops.column("arm").to_pylist()) | set(predictions.column("arm").to_pylist())
    out = []
    for arm in [a for a in ARMS if a in arms]:
        mine, counted = _where(predictions, arm, None), _where(ops, arm, None)
        entry = VersionFigures(
            version=version,
            arm=arm,
            window=figures(_where(predictions, arm, since), _where(ops, arm, since), labels),
            all_time=figures(mine, counted, labels),
        )
        if buckets > 0 and until is not None:
            bucket_s = (until - since) / buckets
            entry.series = series(mine, counted, labels, since, bucket_s, buckets)
        out.append(entry)
    return out


EMPTY = Figures(
    requests=0,
    errors=0,
    error_rate=None,
    p50_ms=None,
    p95_ms=None,
    p99_ms=None,
    logged=0,
    labelled=0,
    labelled_share=None,
)


def verdict(check: QualityCheck | None, f: Figures) -> str:
    """A status cell: the check's outcome with its figure, or the figure alone."""
    metric = check.metric if check is not None else ("f1" if f.task != "regression" else "rmse")
    value = getattr(f, metric)
    shown = "-" if value is None else f"{metric} {value:.3f} (n={f.labelled})"
    if check is None:
        return shown
    if f.labelled < check.min_labels or value is None:
        return f"not enough labels ({f.labelled}/{check.min_labels})"
    if metric in LOWER_IS_BETTER:
        bad = check.max is not None and value > check.max
    else:
        bad = check.min is not None and value < check.min
    return f"{'degraded' if bad else 'ok'}: {shown}"
