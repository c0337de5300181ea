"""The split and the fit: rows chosen on the driver, the fit run as a Ray task.

The split is stratified for classification and seeded, so the same data and seed
give the same held-out rows: what ``promote_if_better`` scores both versions on.
The version registered is the one fit on the training rows, so its held-out
scores are honest (no refit on every row).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from maas_ray.errors import BadRequest
from maas_ray.training.data import model_input, take
from maas_ray.training.evaluate import positive_scores, scores


def split_rows(y: pd.Series, task: str, test_size: float, seed: int) -> tuple[Any, Any]:
    """Training and held-out row positions; checked before any cluster work."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_test = int(np.ceil(n * test_size))
    if n < 2 or n_test < 1 or n - n_test < 1:
        raise BadRequest(f"{n} rows cannot be split with test_size {test_size}: give more rows")
    stratify = None
    if task == "classification":
        counts = y.astype(str).value_counts()
        if len(counts) < 2:
            raise BadRequest(f"the label has one class only ({counts.index[0]}): nothing to learn")
        if counts.min() < 2:
            rare = ", ".join(counts[counts < 2].index[:5])
            raise BadRequest(f"classes with one row cannot be split stratified: {rare}")
        if n_test < len(counts):
            raise BadRequest(
                f"test_size {test_size} holds out {n_test} rows for {len(counts)} classes: "
                "raise test_size or give more rows"
            )
        stratify = y.astype(str)
    rows = np.arange(n)
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def seeded(estimator: Any, seed: int) -> Any:
    """Give every unset ``random_state`` of the estimator (and its steps) the seed."""
    try:
        params = estimator.get_params(deep=True)
    except Exception:  # not a scikit-learn estimator: leave it as it is
        return estimator
    unset = {k: seed for k, v in params.items() if k.endswith("random_state") and v is None}
    if unset:
        estimator.set_params(**unset)
    return estimator


@dataclass
class Fitted:
    """What the fit task gives back to the driver."""

    estimator: Any
    metrics: dict[str, float]
    fit_s: float


def fit_and_score(
    estimator: Any,
    X: pd.DataFrame,
    y: pd.Series,
    train: Any,
    test: Any,
    task: str,
    array: bool = False,
) -> Fitted:
    """Fit on the training rows, score on the held-out rows (runs as a Ray task;
    ``array``: fit on a 2-D array, see ``data.model_input``)."""
    data = model_input(X, array)
    labels = y.to_numpy()
    started = time.perf_counter()
    estimator.fit(take(data, train), labels[train])
    fit_s = time.perf_counter() - started
    held_out = take(data, test)
    predicted = estimator.predict(held_out)
    score = positive_scores(estimator, held_out) if task == "classification" else None
    return Fitted(estimator, scores(task, labels[test], predicted, score), fit_s)
