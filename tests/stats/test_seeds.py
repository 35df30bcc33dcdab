"""Seed-level comparison: permutation p-values, bootstrap interval, Cohen's d, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import kdmetrics

A = [0.712, 0.721, 0.705, 0.731, 0.716]
B = [0.741, 0.752, 0.733, 0.760, 0.745, 0.738]


def _abs_diff(x, y, axis=-1):
    return np.abs(np.mean(y, axis=axis) - np.mean(x, axis=axis))


def test_exact_permutation_matches_scipy():
    r = kdmetrics.compare_seeds(A, B)
    assert r.p_method == "exact"
    assert r.n_permutations == math.comb(11, 5)
    ref = stats.permutation_test(
        (A, B), _abs_diff, permutation_type="independent", alternative="greater",
        n_resamples=np.inf, vectorized=True,
    )  # fmt: skip
    assert r.p_value == pytest.approx(ref.pvalue)


def test_monte_carlo_permutation_close_to_exact():
    rng = np.random.default_rng(1)
    a = rng.normal(0.70, 0.01, 10)
    b = rng.normal(0.71, 0.01, 10)
    mc = kdmetrics.compare_seeds(a, b, n_resamples=20_000, seed=3)
    assert mc.p_method == "monte_carlo" and mc.n_permutations == 20_000
    exact = kdmetrics.compare_seeds(a, b, n_resamples=10, max_exact=10**6)
    assert exact.p_method == "exact" and exact.n_permutations == math.comb(20, 10)
    # Monte Carlo SE at p ~ 0.05 with 20,000 splits is ~0.0015.
    assert abs(mc.p_value - exact.p_value) < 0.01
    again = kdmetrics.compare_seeds(a, b, n_resamples=20_000, seed=3)
    assert again.p_value == mc.p_value


def test_effect_size_and_table():
    r = kdmetrics.compare_seeds(A, B)
    a, b = np.array(A), np.array(B)
    assert r.delta == pytest.approx(b.mean() - a.mean())
    sp = math.sqrt((4 * a.var(ddof=1) + 5 * b.var(ddof=1)) / 9)
    assert r.pooled_sd == pytest.approx(sp)
    assert r.cohens_d == pytest.approx((b.mean() - a.mean()) / sp)
    assert r.ddof == 1
    assert r.table.shape == (11, 3)
    assert r.table.recipe.tolist() == ["a"] * 5 + ["b"] * 6
    assert r.table.score.tolist() == A + B


def test_bootstrap_interval_agrees_with_scipy():
    r = kdmetrics.compare_seeds(A, B, n_resamples=20_000)
    ref = stats.bootstrap(
        (A, B), lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        method="percentile", n_resamples=20_000, rng=np.random.default_rng(0), vectorized=True,
    ).confidence_interval  # fmt: skip
    width = ref.high - ref.low
    assert abs(r.ci_low - ref.low) < 0.05 * width
    assert abs(r.ci_high - ref.high) < 0.05 * width
    assert r.ci_low < r.delta < r.ci_high


def test_dict_input_keeps_seed_labels():
    r = kdmetrics.compare_seeds({1: 0.70, 2: 0.71, 7: 0.69}, {3: 0.72, 4: 0.74})
    assert r.table.seed.tolist() == [1, 2, 7, 3, 4]


def test_equal_recipes():
    r = kdmetrics.compare_seeds([0.5, 0.5, 0.5], [0.5, 0.5])
    assert r.delta == 0 and r.p_value == 1.0
    assert math.isnan(r.cohens_d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(scores_a=[0.5], scores_b=[0.5, 0.6]), "scores_a needs at least 2"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, np.nan]), "scores_b has a NaN"),
        (dict(scores_a=[[0.5, 0.6]], scores_b=[0.5, 0.6]), "scores_a must be 1-D"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], ci=1.0), "ci must be in"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], n_resamples=0), "n_resamples"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kdmetrics.compare_seeds(**kwargs)
