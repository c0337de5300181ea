"""Held-out scores under their plain names, and which of two scores is better.

Classification: ``accuracy``, ``precision``, ``recall``, ``f1`` (binary: of the
positive class, the second of the sorted labels, as scikit-learn's
``predict_proba[:, 1]``; more classes: the macro average), ``roc_auc`` where
binary and the estimator gives scores. Regression: ``mae``, ``rmse``, ``r2``.
Sequence (a seq2seq fine-tune: texts out): ``bleu``, sacrebleu's corpus BLEU (0-100,
its default 13a tokens) of the answers against one reference text each.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from maas_ray.spec import LOWER_IS_BETTER


def scores(task: str, y_true: Any, y_pred: Any, y_score: Any = None) -> dict[str, float]:
    """The metrics of one set of predictions against the truth."""
    from sklearn import metrics

    if task == "sequence":
        import sacrebleu

        references = [str(t) for t in y_true]
        hypotheses = [str(t) for t in y_pred]
        return {"bleu": float(sacrebleu.corpus_bleu(hypotheses, [references]).score)}
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if task == "regression":
        return {
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
            "rmse": float(math.sqrt(metrics.mean_squared_error(y_true, y_pred))),
            "r2": float(metrics.r2_score(y_true, y_pred)),
        }
    labels = np.unique(np.concatenate([y_true.astype(str), y_pred.astype(str)]))
    binary = len(np.unique(y_true.astype(str))) <= 2 and len(labels) <= 2
    common: dict[str, Any] = {"zero_division": 0}
    if binary:
        positive = sorted(np.unique(y_true).tolist())[-1]
        common.update(average="binary", pos_label=positive)
    else:
        common["average"] = "macro"
    out = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "precision": float(metrics.precision_score(y_true, y_pred, **common)),
        "recall": float(metrics.recall_score(y_true, y_pred, **common)),
        "f1": float(metrics.f1_score(y_true, y_pred, **common)),
    }
    if binary and y_score is not None and len(np.unique(y_true)) == 2:
        out["roc_auc"] = float(metrics.roc_auc_score(y_true == positive, y_score))
    return out


def positive_scores(estimator: Any, X: Any) -> Any:
    """Scores of the positive class for ROC AUC (None where the estimator has none)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) != 2:
        return None
    if hasattr(estimator, "predict_proba"):
        try:
            return np.asarray(estimator.predict_proba(X))[:, 1]
        except Exception:  # e.g. an SVC without probability=True raises on use
            pass
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X))
    return None


def better(metric: str, new: float | None, old: float | None) -> bool:
    """True when ``new`` beats ``old`` on ``metric`` (a missing old score: beaten)."""
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return False
    if old is None or (isinstance(old, float) and math.isnan(old)):
        return True
    return new < old if metric in LOWER_IS_BETTER else new > old
