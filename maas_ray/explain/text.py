"""Token contributions of a scikit-learn text pipeline (a vectorizer, then a
linear model or a multinomial naive Bayes).

Both are linear in the vectorizer's features, so the exact contribution of a
token is its feature value (e.g. TF-IDF) times the model's weight for it:

* a linear model (logistic regression, linear SVM, ridge): ``coef * value``; the
  baseline is the intercept and the output the decision function of the
  predicted class (a regressor: its value);
* multinomial naive Bayes: ``value * (log P(token|class) - mean over classes)``;
  the baseline is the class's log prior minus the classes' mean, and the output
  the class's joint log-likelihood minus the classes' mean (how much more likely
  this class is than the average one).

A row's contributions add up to its output minus the baseline, exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas_ray.explain.answer import Explained, RowExplanation, row

_VECTORIZERS = ("TfidfVectorizer", "CountVectorizer")


def is_text_pipeline(estimator: Any) -> bool:
    """A scikit-learn Pipeline whose first step turns texts into token features."""
    steps = getattr(estimator, "steps", None) or []
    return len(steps) >= 2 and type(steps[0][1]).__name__ in _VECTORIZERS


def explains(estimator: Any) -> bool:
    """Whether the pipeline's model is one whose token contributions are exact here."""
    final = estimator.steps[-1][1]
    linear = hasattr(final, "coef_") and hasattr(final, "intercept_")
    return linear or hasattr(final, "feature_log_prob_")


class TextExplainer:
    """Token -> contribution for a fitted text pipeline (see the module's docstring)."""

    background_rows = 0  # exact: nothing sampled

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.features = pipeline[:-1]
        self.final = pipeline[-1]
        self.names = [str(n) for n in self.features.get_feature_names_out()]
        self.classes = list(getattr(self.final, "classes_", []))
        if hasattr(self.final, "feature_log_prob_"):
            log_prob = np.asarray(self.final.feature_log_prob_)
            prior = np.asarray(self.final.class_log_prior_)
            self.weights = log_prob - log_prob.mean(axis=0)
            self.bias = prior - prior.mean()
            self.output, self.method = "log_likelihood_vs_mean", "exact.naive_bayes"
        else:
            self.weights = np.atleast_2d(np.asarray(self.final.coef_, dtype=np.float64))
            self.bias = np.atleast_1d(np.asarray(self.final.intercept_, dtype=np.float64))
            if self.classes and self.weights.shape[0] == 1:
                # binary: one row, for classes_[1]; classes_[0]'s is its negative
                self.weights = np.vstack([-self.weights, self.weights])
                self.bias = np.concatenate([-self.bias, self.bias])
            self.output = "decision_function" if self.classes else "value"
            self.method = "exact.linear"

    def explain(self, data: Any) -> Explained:
        texts = _texts(data)
        x = self.features.transform(texts).tocsr()
        if self.classes:
            picked = [self.classes.index(c) for c in np.asarray(self.final.predict(x)).tolist()]
        else:
            picked = [0] * len(texts)
        outputs = self._outputs(x)
        rows: list[RowExplanation] = []
        for i, k in enumerate(picked):
            start, end = x.indptr[i], x.indptr[i + 1]
            columns, values = x.indices[start:end], x.data[start:end]
            contributions = values * self.weights[k, columns]
            names = [self.names[j] for j in columns]
            baseline = float(self.bias[k])
            label = self.classes[k] if self.classes else None
            rows.append(row(outputs[i, k], baseline, names, contributions, label))
        return Explained(self.method, self.output, self.background_rows, rows)

    def _outputs(self, x: Any) -> np.ndarray:
        """The model's own explained output per row and class (what the contributions
        add up to, with the baseline)."""
        if self.output == "log_likelihood_vs_mean":
            joint = np.asarray(self.final.predict_joint_log_proba(x), dtype=np.float64)
            return joint - joint.mean(axis=1, keepdims=True)
        if self.output == "decision_function":
            d = np.asarray(self.final.decision_function(x), dtype=np.float64)
            return np.stack([-d, d], axis=1) if d.ndim == 1 else d
        return np.asarray(self.final.predict(x), dtype=np.float64).reshape(x.shape[0], -1)


def _texts(data: Any) -> list[str]:
    """The request's texts: a DataFrame's first column, or an array or list of them."""
    if hasattr(data, "iloc") and getattr(data, "ndim", 1) == 2:
        data = data.iloc[:, 0]
    values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data, dtype=object)
    return [str(t) for t in np.asarray(values, dtype=object).reshape(-1)]
