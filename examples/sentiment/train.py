"""Seed example ``sentiment``: bilingual (Chinese/English) review sentiment classifier.

A scikit-learn Pipeline of a character n-gram TF-IDF (``char_wb`` works for Chinese
without a word tokenizer) and multinomial Naive Bayes, trained on ``data.csv``.
Input: a list / 1-D array of strings. Output: ``"positive"`` or ``"negative"`` per text.

Run ``python -m examples.sentiment.train`` from the repository root to train and register.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline

from examples._common import TrainedExample, main, text_labels

logger = logging.getLogger(__name__)

NAME = "sentiment"
DATA_PATH = Path(__file__).with_name("data.csv")
SEED = 0
SAMPLE_INPUTS: list = ["这本书很好看", "this book is terrible"]


def load_data(path: Path = DATA_PATH) -> tuple[list[str], list[str]]:
    """Read ``text,label`` rows from the bundled CSV."""
    return text_labels(path)


def build_pipeline() -> Pipeline:
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(1, 3), lowercase=True, sublinear_tf=True
                ),
            ),
            ("nb", MultinomialNB(alpha=1.0)),
        ]
    )


def train() -> TrainedExample:
    texts, labels = load_data()
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, random_state=SEED, stratify=labels
    )
    held_out = build_pipeline().fit(x_train, y_train)
    accuracy = float(held_out.score(x_test, y_test))
    logger.info("sentiment held-out accuracy %.3f on %d texts", accuracy, len(x_test))

    # The registered pipeline is refit on every row; the metric is from the held-out fit.
    model = build_pipeline().fit(texts, labels)
    return TrainedExample(
        model=model,
        input_example=np.array(SAMPLE_INPUTS, dtype=str),
        artifacts=None,
        metrics={
            "test_accuracy": accuracy,
            "n_train": float(len(x_train)),
            "n_test": float(len(x_test)),
        },
        description=(
            "Bilingual (Chinese/English) review sentiment: char n-gram TF-IDF + "
            "multinomial Naive Bayes. Input: list of strings. "
            "Output: 'positive' or 'negative' per string."
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
