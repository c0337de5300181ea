"""Joining parsed requests into one model call and splitting the answer back."""

from __future__ import annotations

import numpy as np
import pandas as pd

from maas_ray.serving.batching import combine, split


def test_arrays_of_one_kind_join_and_split_back() -> None:
    a, b = np.ones((2, 3), np.float32), np.zeros((1, 3), np.float32)
    joined = combine([a, b])
    assert joined is not None
    data, lengths = joined
    assert data.shape == (3, 3)
    assert lengths == [2, 1]
    parts = split(np.array([10, 11, 12]), lengths)
    assert parts is not None
    assert [p.tolist() for p in parts] == [[10, 11], [12]]


def test_frames_with_the_same_columns_join() -> None:
    f1 = pd.DataFrame({"x": [1.0], "y": [2.0]})
    f2 = pd.DataFrame({"x": [3.0, 4.0], "y": [5.0, 6.0]})
    joined = combine([f1, f2])
    assert joined is not None
    data, lengths = joined
    assert lengths == [1, 2]
    assert data["x"].tolist() == [1.0, 3.0, 4.0]
    parts = split(pd.Series(["a", "b", "c"]), lengths)
    assert parts is not None
    assert [p.tolist() for p in parts] == [["a"], ["b", "c"]]


def test_mixed_inputs_are_not_joined() -> None:
    assert combine([np.ones((1, 3)), np.ones((1, 4))]) is None
    assert combine([np.ones((1, 3), np.float32), np.ones((1, 3), np.float64)]) is None
    assert combine([pd.DataFrame({"x": [1]}), pd.DataFrame({"y": [1]})]) is None
    assert combine([pd.DataFrame({"x": [1]}), pd.DataFrame({"x": ["a"]})]) is None
    assert combine([np.ones((1, 3)), pd.DataFrame({"x": [1]})]) is None
    assert combine([np.ones((1, 3))]) is None


def test_an_answer_without_a_row_per_input_is_not_split() -> None:
    assert split(np.array([1, 2]), [2, 1]) is None
    assert split({"a": 1}, [1]) is None
    assert split([1, 2, 3], [1, 2]) == [[1], [2, 3]]


def test_text_of_different_lengths_joins() -> None:
    # MLflow parses strings as <U{longest}>; requests differ in that width.
    joined = combine([np.array(["a sentence", "another"]), np.array(["x"])])
    assert joined is not None
    data, lengths = joined
    assert data.tolist() == ["a sentence", "another", "x"]
    assert lengths == [2, 1]
    assert combine([np.array(["x"]), np.array([b"x"])]) is None
