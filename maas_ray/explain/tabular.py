"""SHAP for scikit-learn models on table rows.

The final estimator picks the explainer: a tree ensemble gets
``shap.TreeExplainer`` (for a classifier, on the predicted class's probability,
interventional against the background), a linear model ``shap.LinearExplainer``
(on its decision function: log-odds for a logistic regression), anything else
``shap.PermutationExplainer`` over the whole model's ``predict_proba`` or
``predict``. A pipeline's preprocessing runs first and the tree or linear
explainer sees its output; its columns keep the input's names where it keeps
their number (scalers, imputers), else take the names it gives them.

Every one of them is additive: a row's attributions add up to its prediction
minus the baseline (the background's mean output).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from maas_ray.explain.answer import Explained, RowExplanation, row

logger = logging.getLogger(__name__)

# SHAP's cost grows with the background: the tree and linear explainers take up to
# this many of its rows, the permutation explainer (a model call per row per
# evaluation) fewer.
MAX_BACKGROUND = 100
MAX_BACKGROUND_PERMUTATION = 50
_TREES = (
    "DecisionTree",
    "ExtraTree",
    "RandomForest",
    "ExtraTrees",
    "GradientBoosting",
    "HistGradientBoosting",
    "XGB",
    "LGBM",
    "CatBoost",
)


class TabularExplainer:
    """Explains a fitted scikit-learn estimator or pipeline on rows of numbers."""

    def __init__(self, estimator: Any, background: Any, columns: list[str] | None) -> None:
        import shap

        self.estimator = estimator
        self.classifier = hasattr(estimator, "classes_") and hasattr(estimator, "predict_proba")
        steps = getattr(estimator, "steps", None)
        self.final = steps[-1][1] if steps else estimator
        self.pre = estimator[:-1] if steps and len(steps) > 1 else None
        frame = _as_matrix(background)
        self.columns = columns or [f"x[{i}]" for i in range(frame.shape[1])]
        kind = type(self.final).__name__
        if any(kind.startswith(t) for t in _TREES):
            self.kind = "tree"
            bg = self._transform(_sample(frame, MAX_BACKGROUND))
            output = "probability" if self.classifier else "raw"
            self.explainer: Any = shap.TreeExplainer(
                self.final, data=bg, model_output=output, feature_perturbation="interventional"
            )
            self.output = "probability" if self.classifier else "value"
        elif hasattr(self.final, "coef_") and hasattr(self.final, "intercept_"):
            self.kind = "linear"
            bg = self._transform(_sample(frame, MAX_BACKGROUND))
            self.explainer = shap.LinearExplainer(self.final, bg)
            self.output = "decision_function" if self.classifier else "value"
        else:
            self.kind = "permutation"
            bg = _sample(frame, MAX_BACKGROUND_PERMUTATION)
            self.explainer = shap.PermutationExplainer(self._function, shap.maskers.Independent(bg))
            self.output = "probability" if self.classifier else "value"
        self.background_rows = int(bg.shape[0])
        self.method = {
            "tree": "shap.TreeExplainer",
            "linear": "shap.LinearExplainer",
            "permutation": "shap.PermutationExplainer",
        }[self.kind]
        self.names = self._names(frame.shape[1])

    # -- the model's side ------------------------------------------------------------
    def _frame(self, x: np.ndarray) -> Any:
        """Rows as the estimator was fitted on them: a DataFrame when it knows names."""
        if hasattr(self.estimator, "feature_names_in_"):
            import pandas as pd

            return pd.DataFrame(x, columns=list(self.estimator.feature_names_in_))
        return x

    def _transform(self, x: np.ndarray) -> np.ndarray:
        if self.pre is None:
            return x
        out = self.pre.transform(self._frame(x))
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    def _function(self, x: np.ndarray) -> np.ndarray:
        data = self._frame(x)
        if self.classifier:
            return np.asarray(self.estimator.predict_proba(data))
        return np.asarray(self.estimator.predict(data), dtype=np.float64)

    def _names(self, width: int) -> list[str]:
        if self.kind == "permutation" or self.pre is None:
            return self.columns
        out = self._transform(np.zeros((1, width)))
        if out.shape[1] == width:
            return self.columns
        try:
            return [str(n) for n in self.pre.get_feature_names_out()]
        except (AttributeError, ValueError):
            return [f"x[{i}]" for i in range(out.shape[1])]

    # -- explaining --------------------------------------------------------------------
    def explain(self, data: Any) -> Explained:
        x = _as_matrix(data)
        frame = self._frame(x)
        classes = list(getattr(self.estimator, "classes_", []))
        picked = (
            [classes.index(c) for c in np.asarray(self.estimator.predict(frame)).tolist()]
            if self.classifier
            else [0] * len(x)
        )
        if self.kind == "permutation":
            found = self.explainer(x)
            values, base = np.asarray(found.values), np.asarray(found.base_values)
        else:
            values = np.asarray(self.explainer.shap_values(self._transform(x)))
            base = np.broadcast_to(
                np.asarray(self.explainer.expected_value),
                (len(x),) + np.shape(self.explainer.expected_value),
            )
        outputs = self._outputs(frame)
        rows: list[RowExplanation] = []
        for i, k in enumerate(picked):
            v, b = _pick(values[i], base[i], k, self.kind, len(classes))
            label = classes[k] if self.classifier else None
            rows.append(row(outputs[i, k], b, self.names, v, label))
        return Explained(self.method, self.output, self.background_rows, rows)

    def _outputs(self, frame: Any) -> np.ndarray:
        """The explained output per row and class (one column for a regressor)."""
        if self.output == "probability":
            return np.asarray(self.estimator.predict_proba(frame), dtype=np.float64)
        if self.output == "decision_function":
            d = np.asarray(self.estimator.decision_function(frame), dtype=np.float64)
            return np.stack([-d, d], axis=1) if d.ndim == 1 else d
        return np.asarray(self.estimator.predict(frame), dtype=np.float64).reshape(len(frame), -1)


def _pick(values: np.ndarray, base: Any, k: int, kind: str, n_classes: int) -> tuple[Any, float]:
    """One row's attributions and baseline for class ``k``. A binary classifier may be
    explained for class 1 only (one set of values): class 0's are their negatives."""
    base = np.asarray(base, dtype=np.float64).reshape(-1)
    if values.ndim == 2:  # (features, classes)
        return values[:, k], float(base[k])
    if n_classes == 2 and k == 0:
        # the complement: 1 - p for a probability, -margin for a decision function
        return -values, (1.0 - float(base[0])) if kind == "tree" else -float(base[0])
    return values, float(base[0])


def _as_matrix(data: Any) -> np.ndarray:
    """Rows of numbers as a 2-D float array (a DataFrame's columns in order)."""
    values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1) if values.ndim != 2 else values


def _sample(x: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` rows, the same ones every time (a replica explains reproducibly)."""
    if len(x) <= most:
        return x
    return x[np.random.default_rng(0).choice(len(x), size=most, replace=False)]
