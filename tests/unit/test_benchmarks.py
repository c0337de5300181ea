"""The benchmark's answer check: strict for labels, float32 noise allowed for embeddings."""

from __future__ import annotations

from benchmarks.serving import _same


def test_embeddings_equal_within_float32_noise() -> None:
    assert _same([[0.0123, -0.2]], [[0.0123 + 9e-8, -0.2]])  # what mlflow and we encode
    assert not _same([[0.1, 0.2]], [[0.1, 0.21]])
    assert not _same([[0.1, 0.2]], [[0.1, 0.2, 0.3]])


def test_labels_must_be_equal() -> None:
    assert _same(["positive", "negative"], ["positive", "negative"])
    assert not _same(["positive"], ["negative"])
    assert _same([1, 2], [1, 2])
    assert not _same([1, 2], [1, 3])
