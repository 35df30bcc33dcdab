"""Debiased binned L2 calibration error: NumPy reference, properties, bias."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kdmetrics.metrics.calibration import bin_ids, bin_sums, ece_debiased

import reference as ref
from strategies import problems


def _reference(labels, logits, n_bins, temperature=1.0, right=True) -> float:
    """Loop over bins: squared mean gap minus the variance of that mean."""
    p = ref.softmax(logits, temperature)
    conf = p.max(axis=1)
    gap = (ref.predictions(logits) == labels).astype(float) - conf
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        if right:
            member = (conf > lo) & (conf <= hi) | ((b == 0) & (conf == 0.0))
        else:
            member = (conf >= lo) & (conf < hi) | ((b == n_bins - 1) & (conf == 1.0))
        g = gap[member]
        if g.size >= 2:
            total += g.size * (g.mean() ** 2 - np.var(g, ddof=1) / g.size)
    return total / len(conf)


def _near_edge(conf, n_bins):
    edges = np.linspace(0, 1, n_bins + 1)
    inner = conf[~np.isin(conf, edges)]
    return inner.size > 0 and np.min(np.abs(inner[:, None] - edges[None, :])) < 1e-6


@given(problems(dtypes=[np.float32, np.float64]), st.sampled_from([1, 4, 15]), st.booleans())
def test_matches_reference(problem, n_bins, right):
    y, z = problem
    assume(not _near_edge(ref.softmax(z).max(axis=1), n_bins))
    want = _reference(y, z, n_bins, right=right)
    got = ece_debiased(y, z, n_bins, right=right, squared=True)
    assert got == pytest.approx(want, abs=1e-6)
    root = ece_debiased(y, z, n_bins, right=right)
    assert root == pytest.approx(np.sqrt(max(got, 0.0)), abs=1e-12)


@given(problems(dtypes=[np.float32, np.float64]), st.sampled_from([1, 5, 15]))
def test_below_plugin_and_permutation_invariant(problem, n_bins):
    y, z = problem
    conf = ref.softmax(z).max(axis=1)
    ids = bin_ids("t", conf, n_bins)
    gap = (ref.predictions(z) == y) - conf
    count = np.bincount(ids, minlength=n_bins)
    plugin = sum(
        count[b] * (gap[ids == b].mean()) ** 2 for b in range(n_bins) if count[b] > 0
    ) / len(y)
    got = ece_debiased(y, z, n_bins, squared=True)
    assert got <= plugin + 1e-9  # only a non-negative variance is subtracted
    perm = np.random.default_rng(0).permutation(len(y))
    assert ece_debiased(y[perm], z[perm], n_bins, squared=True) == pytest.approx(got, abs=1e-12)


@given(
    problems(), st.sampled_from([1, 3, 15]), st.booleans(), st.sampled_from(["uniform", "quantile"])
)
def test_bin_ids_agree_with_kernel_bins(problem, n_bins, right, strategy):
    y, z = problem
    from kdmetrics.metrics.scoring import example_stats

    s = example_stats("t", y, z, scores=False)
    count = bin_sums("t", s.confidence, s.correct, n_bins, strategy, right)[0]
    ids = bin_ids("t", s.confidence, n_bins, strategy, right)
    np.testing.assert_array_equal(np.bincount(ids, minlength=n_bins), count)


def test_unbiased_where_plain_ece_is_not():
    # A calibrated binary model: confidence c ~ U(0.5, 1), correct with
    # probability c. True binned L2 error ~ 0 (within-bin spread only).
    rng = np.random.default_rng(5)
    deb, plug = [], []
    for _ in range(300):
        c = rng.uniform(0.5, 1.0, 300)
        y = (rng.uniform(size=300) > c).astype(np.int64)  # class 0 with prob c
        probs = np.stack([c, 1 - c], axis=1)
        deb.append(ece_debiased(y, probs, 15, probs=True, squared=True))
        ids = bin_ids("t", c, 15)
        gap = (y == 0) - c
        plug.append(sum((ids == b).sum() * gap[ids == b].mean() ** 2 for b in np.unique(ids)) / 300)
    deb, plug = np.array(deb), np.array(plug)
    se = deb.std(ddof=1) / np.sqrt(deb.size)
    assert abs(deb.mean()) < 3 * se
    assert plug.mean() > deb.mean() + 10 * se


def test_hand_case():
    # Two bins: [0.6, 0.6] with outcomes (1, 0) and [0.9, 0.9, 0.9] with (1, 1, 1).
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    y = np.array([0, 1, 0, 0, 0])
    # bin 0.6: gaps 0.4, -0.6: mean -0.1, var 0.5, term 2 * (0.01 - 0.25) = -0.48
    # bin 0.9: gaps 0.1 x 3: mean 0.1, var 0, term 3 * 0.01 = 0.03
    got = ece_debiased(y, probs, 10, probs=True, squared=True)
    assert got == pytest.approx((-0.48 + 0.03) / 5)
    assert ece_debiased(y, probs, 10, probs=True) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 0}, "n_bins"),
        ({"strategy": "x"}, "strategy"),
        ({"temperature": 0}, "temperature"),
    ],
)
def test_bad_input(kwargs, match):
    y = np.array([0, 1, 1])
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match=f"ece_debiased: .*{match}"):
        ece_debiased(y, z, **kwargs)
