"""Top-k hits (the Rust kernel) against a plain stable sort, example by example."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kdmetrics as km
from kdmetrics.errors import InvalidArgumentError, NonFiniteError, OutOfRangeError
from kdmetrics.metrics.ranking import top_k_hits


def reference_hits(labels, logits, k):
    """1.0 where the label is among the first k of a stable descending sort
    (equal scores keep class-index order: the argmax tie rule)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.array(
        [float(y in np.argsort(-row, kind="stable")[:k]) for row, y in zip(z, labels, strict=True)]
    )


@st.composite
def ranked(draw):
    n = draw(st.integers(1, 30))
    k_classes = draw(st.integers(2, 12))  # scores need 2 classes
    # Few distinct values, so ties are common.
    values = draw(st.sampled_from([(-1.0, 0.0, 1.0), (0.0, 0.5), tuple(np.linspace(-3, 3, 13))]))
    z = np.array(draw(st.lists(st.sampled_from(values), min_size=n * k_classes,
                               max_size=n * k_classes))).reshape(n, k_classes)  # fmt: skip
    y = np.array(draw(st.lists(st.integers(0, k_classes - 1), min_size=n, max_size=n)))
    k = draw(st.integers(1, k_classes + 1))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    return y, z.astype(dtype), k


@given(ranked())
def test_hits_match_a_stable_sort(case):
    y, z, k = case
    got = top_k_hits("t", y, z, k)
    np.testing.assert_array_equal(got, reference_hits(y, z, k))
    assert km.top_k_accuracy(y, z, k=k) == pytest.approx(reference_hits(y, z, k).mean(), abs=0)


@given(ranked())
def test_k_1_is_accuracy(case):
    y, z, _ = case
    assert km.top_k_accuracy(y, z, k=1) == km.accuracy(y, z)


def test_hand_checked():
    z = np.array([[1.0, 5.0, 3.0], [2.0, 2.0, 0.0], [4.0, 1.0, 4.0]], dtype=np.float32)
    y = np.array([2, 1, 0])
    # Ranks: row 0 one higher class; row 1 a lower-indexed tie; row 2 a
    # higher-indexed tie (ranks after the label).
    np.testing.assert_array_equal(top_k_hits("t", y, z, 1), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(top_k_hits("t", y, z, 2), [1.0, 1.0, 1.0])


def test_caller_arrays_untouched_and_non_contiguous_views_read():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 14)).astype(np.float32)
    y = rng.integers(0, 7, 50)
    before = z.copy()
    view = z[:, ::2]  # strided
    np.testing.assert_array_equal(top_k_hits("t", y, view, 3), reference_hits(y, view, 3))
    np.testing.assert_array_equal(z, before)


def test_bad_input_names_the_function():
    z = np.array([[1.0, np.nan]], dtype=np.float32)
    with pytest.raises(NonFiniteError, match="top_k_accuracy"):
        km.top_k_accuracy([0], z, k=1)
    with pytest.raises(OutOfRangeError, match="top_k_accuracy"):
        km.top_k_accuracy([2], np.zeros((1, 2)), k=1)
    with pytest.raises(InvalidArgumentError, match="top_k_accuracy: k"):
        km.top_k_accuracy([0], np.zeros((1, 2)), k=0)
