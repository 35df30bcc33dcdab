"""AURC against obviously-correct NumPy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kdmetrics.metrics.aurc import aurc, aurc_from

from reference import softmax


def aurc_one_order(order: np.ndarray, correct: np.ndarray) -> float:
    """Mean selective risk over k = 1..n for one ranking, by a plain loop."""
    risks = []
    errors = 0.0
    for k, i in enumerate(order, start=1):
        errors += 1.0 - correct[i]
        risks.append(errors / k)
    return float(np.mean(risks))


def aurc_all_orders(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The mean over every descending ranking (all orders of tied examples)."""
    values = []
    for order in itertools.permutations(range(confidence.size)):
        c = confidence[list(order)]
        if np.all(c[:-1] >= c[1:]):
            values.append(aurc_one_order(np.array(order), correct))
    return float(np.mean(values))


@settings(max_examples=100, deadline=None)
@given(
    conf=hnp.arrays(np.float64, st.integers(1, 6), elements=st.sampled_from([0.2, 0.5, 0.9, 1.0])),
    data=st.data(),
)
def test_ties_average_over_all_orders(conf, data):
    correct = data.draw(hnp.arrays(np.float64, conf.shape, elements=st.sampled_from([0.0, 1.0])))
    assert aurc_from(conf, correct) == pytest.approx(aurc_all_orders(conf, correct), abs=1e-12)


@st.composite
def distinct_problems(draw):
    """Continuous float64 logits (ties between rows have probability 0),
    plus exact copies of some rows, which tie exactly in any implementation."""
    n = draw(st.integers(1, 60))
    k = draw(st.integers(2, 8))
    z = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-4, 4, allow_nan=False)))
    # A clear winner in each row (argmax is then the same in any precision),
    # by a margin that differs from row to row (no accidental near-ties).
    z[np.arange(n), z.argmax(axis=1)] += 0.01 + 0.003 * np.arange(n)
    copies = draw(st.lists(st.integers(0, n - 1), max_size=5))
    z = np.concatenate([z, z[copies]]) if copies else z
    y = draw(hnp.arrays(np.int64, (z.shape[0],), elements=st.integers(0, k - 1)))
    return y, z


@settings(max_examples=100, deadline=None)
@given(distinct_problems())
def test_matches_numpy_reference(problem):
    y, z = problem
    p = softmax(z)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    # Rows with equal confidence are exact copies (or measure-zero accidents):
    # the reference averages each tied block's errors over its positions.
    order = np.argsort(-conf, kind="stable")
    risks, errors = [], 0.0
    c_sorted = conf[order]
    i = 0
    while i < order.size:
        j = i
        while j + 1 < order.size and np.isclose(c_sorted[j + 1], c_sorted[i], rtol=0, atol=1e-9):
            j += 1
        block = order[i : j + 1]
        rate = float(np.mean(1.0 - correct[block]))
        for m in range(1, block.size + 1):
            risks.append((errors + m * rate) / (i + m))
        errors += rate * block.size
        i = j + 1
    assert aurc(y, z) == pytest.approx(float(np.mean(risks)), abs=1e-9)


def test_hand_checked():
    # Confidences 0.9 (right), 0.8 (wrong), 0.7 (right): risks 0, 1/2, 1/3.
    z = np.log(np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]))
    y = np.array([0, 1, 0])
    assert aurc(y, z) == pytest.approx((0 + 1 / 2 + 1 / 3) / 3)
    # All right: 0; all wrong: 1.
    assert aurc(np.array([0, 0, 0]), z) == 0.0
    assert aurc(np.array([1, 1, 1]), z) == 1.0


def test_row_order_does_not_matter():
    rng = np.random.default_rng(0)
    z = rng.integers(-2, 3, (200, 4)).astype(np.float16)  # many exact ties
    y = rng.integers(0, 4, 200)
    perm = rng.permutation(200)
    assert aurc(y, z) == pytest.approx(aurc(y[perm], z[perm]), abs=1e-12)


def test_bad_input_names_the_function():
    with pytest.raises(ValueError, match="aurc"):
        aurc(np.array([0, 1]), np.zeros((3, 2)))
