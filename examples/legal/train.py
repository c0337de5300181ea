"""Example ``legal``: contract clause classification (which type of clause is this?).

A scikit-learn Pipeline of a word + bigram TF-IDF and a multinomial logistic regression,
trained on ``clauses.csv`` (12 clause types; see README.md for how it was made).
Input: a list / 1-D array of strings. Output: the clause type per text, e.g.
``"termination"`` or ``"governing_law"``.

The model is linear in the TF-IDF values, so :func:`top_words` can say exactly which
words and bigrams decided a prediction: each one's TF-IDF value times the predicted
class's coefficient; with the intercept they add up to that class's decision function.

Run ``python -m examples.legal.train`` from the repository root to train and register.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from examples._common import TrainedExample, main, text_labels

logger = logging.getLogger(__name__)

NAME = "legal"
DATA_PATH = Path(__file__).with_name("clauses.csv")
SEED = 0
# The reported metrics are out-of-family: each template family is held out in one of
# FOLDS folds and predicted by a model fit on the others.
FOLDS = 4
SAMPLE_INPUTS: list = [
    "Either party may end this agreement by giving the other party sixty days written notice.",
    "This contract is governed by the laws of the State of Washington.",
]


def load_data(path: Path = DATA_PATH) -> tuple[list[str], list[str]]:
    """Read ``text,label`` rows from the bundled CSV."""
    return text_labels(path)


def build_pipeline() -> Pipeline:
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    analyzer="word", ngram_range=(1, 2), lowercase=True, sublinear_tf=True
                ),
            ),
            ("clf", LogisticRegression(C=10.0, max_iter=2000)),
        ]
    )


def family_folds(
    texts: list[str], labels: list[str], k: int = FOLDS, seed: int = SEED
) -> np.ndarray:
    """A fold number (0..k-1) per row; a template family's rows share one fold.

    The clauses come from templates (``make_data.py``); a random row split would put
    other fillings of the same sentence on both sides and score close to 1.0. Instead,
    each clause type's families are shuffled and dealt round-robin to the ``k`` folds,
    so every fold holds about 1/k of every type. Rows the generator did not make (edited
    into the CSV) each count as a family of their own.
    """
    from examples.legal.make_data import families

    known = families()
    groups = [known.get(t, f"row/{i}") for i, t in enumerate(texts)]
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for label in sorted(set(labels)):
        own = sorted({g for g, y in zip(groups, labels, strict=True) if y == label})
        for rank, g in enumerate(rng.permutation(own)):
            fold_of[str(g)] = rank % k
    return np.array([fold_of[g] for g in groups])


def out_of_family_predictions(texts: list[str], labels: list[str]) -> np.ndarray:
    """Each row predicted by a pipeline that never saw its template family."""
    folds = family_folds(texts, labels)
    predicted = np.empty(len(texts), dtype=object)
    for k in range(FOLDS):
        fit_rows, test_rows = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        model = build_pipeline().fit([texts[i] for i in fit_rows], [labels[i] for i in fit_rows])
        predicted[test_rows] = model.predict([texts[i] for i in test_rows])
    return predicted.astype(str)


def top_words(model: Pipeline, text: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` words/bigrams of ``text`` that pushed its predicted class most.

    Each term's contribution is its TF-IDF value times the predicted class's coefficient
    (see :func:`contributions`); only terms that pushed towards the class (> 0) are
    returned, largest first.
    """
    _, _, terms = contributions(model, text)
    positive = [(t, c) for t, c in terms if c > 0]
    return sorted(positive, key=lambda tc: (-tc[1], tc[0]))[:k]


def contributions(model: Pipeline, text: str) -> tuple[str, float, list[tuple[str, float]]]:
    """Predicted class, its intercept, and every present term's contribution to it.

    ``intercept + sum(contributions)`` equals the classifier's decision function for the
    predicted class (a logistic regression is linear in the features).
    """
    features, clf = model[:-1], model[-1]
    x = features.transform([text]).tocsr()
    names = features.get_feature_names_out()
    classes = list(clf.classes_)
    label = str(clf.predict(x)[0])
    coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    if coef.shape[0] == 1:  # binary: one row, for classes_[1]; classes_[0] is its negative
        sign = 1.0 if label == classes[1] else -1.0
        w, b = sign * coef[0], sign * float(intercept[0])
    else:
        row = classes.index(label)
        w, b = coef[row], float(intercept[row])
    terms = [(str(names[j]), float(v * w[j])) for j, v in zip(x.indices, x.data, strict=True)]
    return label, b, terms


def train() -> TrainedExample:
    texts, labels = load_data()
    # One BLAS thread: the problem is small, and on a busy 2-core machine OpenBLAS's
    # threads made the fits ~10x slower (5 s of CPU instead of 0.5 s).
    with threadpool_limits(limits=1, user_api="blas"):
        predicted = out_of_family_predictions(texts, labels)
        # The registered pipeline is fit on every row; the metrics are from the folds.
        model = build_pipeline().fit(texts, labels)
    accuracy = float(accuracy_score(labels, predicted))
    f1 = float(f1_score(labels, predicted, average="macro"))
    logger.info(
        "legal: accuracy %.3f, macro-F1 %.3f on %d clauses, each predicted by a model "
        "that never saw its template family (%d folds)",
        accuracy,
        f1,
        len(texts),
        FOLDS,
    )
    return TrainedExample(
        model=model,
        input_example=np.array(SAMPLE_INPUTS, dtype=str),
        artifacts=None,
        metrics={
            "test_accuracy": accuracy,
            "test_f1_macro": f1,
            "n_rows": float(len(texts)),
            "n_folds": float(FOLDS),
        },
        description=(
            "Contract clause type: word + bigram TF-IDF + multinomial logistic regression, "
            f"{len(set(labels))} types (confidentiality, termination, governing_law, ...). "
            "Input: list of strings. Output: the clause type per string."
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
