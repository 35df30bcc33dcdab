"""Seed-level comparison: intervals, permutation p-values, effect sizes, errors."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

import kdmetrics
from kdmetrics.stats.seeds import MAX_EXACT_LIMIT, hedges_correction, t_cdf, t_ppf

A = [0.712, 0.721, 0.705, 0.731, 0.716]
B = [0.741, 0.752, 0.733, 0.760, 0.745, 0.738]
# Published per-seed macro F1 of two recipes, 3 seeds each.
PUB_A = [0.7187765, 0.7161279, 0.7158000]
PUB_B = [0.7226347, 0.7210732, 0.7196643]


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


def test_paired_sign_flip_matches_scipy():
    a, b = np.array(A), np.array(B[:5])
    r = kdmetrics.compare_seeds(a, b, paired=True)
    ref = stats.permutation_test(
        (b - a,), lambda d, axis=-1: np.abs(np.mean(d, axis=axis)), permutation_type="samples",
        alternative="greater", n_resamples=np.inf, vectorized=True,
    )  # fmt: skip
    assert r.p_method == "exact" and r.n_permutations == 2**5
    assert r.p_value == pytest.approx(ref.pvalue)


def test_monte_carlo_permutation_close_to_exact():
    rng = np.random.default_rng(1)
    a = rng.normal(0.70, 0.01, 10)
    b = rng.normal(0.71, 0.01, 10)
    mc = kdmetrics.compare_seeds(a, b, n_resamples=20_000, seed=3)
    assert mc.p_method == "monte_carlo" and mc.n_permutations == 20_000
    assert mc.p_min == pytest.approx(1 / 20_001)
    exact = kdmetrics.compare_seeds(a, b, n_resamples=10, max_exact=10**6)
    assert exact.p_method == "exact" and exact.n_permutations == math.comb(20, 10)
    # Monte Carlo SE at p ~ 0.05 with 20,000 splits is ~0.0015.
    assert abs(mc.p_value - exact.p_value) < 0.01
    again = kdmetrics.compare_seeds(a, b, n_resamples=20_000, seed=3)
    assert again.p_value == mc.p_value


def test_smallest_attainable_p():
    # 3 vs 3: all three B seeds above all three A seeds is the most extreme
    # split; it and its mirror are 2 of C(6, 3) = 20 splits.
    r = kdmetrics.compare_seeds(PUB_A, PUB_B)
    assert r.p_value == pytest.approx(0.1) and r.p_min == pytest.approx(0.1)
    mixed = kdmetrics.compare_seeds([0.1, 0.5, 0.3], [0.2, 0.4, 0.35])
    assert mixed.p_min == pytest.approx(0.1) and mixed.p_value > mixed.p_min
    # Paired with 3 seeds: 2 of 2^3 sign patterns.
    assert kdmetrics.compare_seeds(PUB_A, PUB_B, paired=True).p_min == pytest.approx(0.25)
    # Ties make extreme arrangements common: here one score differs, so every
    # split has the same |delta| and no p below 1 is attainable.
    tied = kdmetrics.compare_seeds([0.5, 0.5, 0.5], [0.5, 0.5, 0.6])
    assert tied.p_min == 1.0 and tied.p_value == 1.0


def test_welch_interval_matches_scipy():
    for a, b in ((A, B), (PUB_A, PUB_B)):
        r = kdmetrics.compare_seeds(a, b)
        ref = stats.ttest_ind(b, a, equal_var=False)
        lo, hi = ref.confidence_interval(0.95)
        assert r.ci_method == "welch_t"
        assert r.ci_low == pytest.approx(lo, rel=1e-9) and r.ci_high == pytest.approx(hi, rel=1e-9)
        assert r.df == pytest.approx(ref.df, rel=1e-12)
    # The published seeds: Welch [0.00067, 0.00777], not the bootstrap's narrower one.
    r = kdmetrics.compare_seeds(PUB_A, PUB_B)
    assert (round(r.ci_low, 5), round(r.ci_high, 5)) == (0.00067, 0.00777)


def test_paired_interval_matches_scipy():
    a, b = np.array(A), np.array(B[:5])
    r = kdmetrics.compare_seeds(a, b, paired=True, ci=0.9)
    lo, hi = stats.ttest_rel(b, a).confidence_interval(0.9)
    assert r.ci_method == "paired_t" and r.df == 4
    assert r.ci_low == pytest.approx(lo, rel=1e-9) and r.ci_high == pytest.approx(hi, rel=1e-9)


def test_paired_by_seed_key():
    a = {1: 0.70, 2: 0.71, 7: 0.69}
    b = {7: 0.70, 1: 0.72, 2: 0.74}
    r = kdmetrics.compare_seeds(a, b, paired=True)
    d = np.array([0.72 - 0.70, 0.74 - 0.71, 0.70 - 0.69])
    lo, hi = stats.ttest_1samp(d, 0.0).confidence_interval()
    assert r.ci_low == pytest.approx(lo) and r.ci_high == pytest.approx(hi)
    assert r.table.seed.tolist() == [1, 2, 7, 1, 2, 7]
    with pytest.raises(ValueError, match="compare_seeds: paired=True needs the same seeds"):
        kdmetrics.compare_seeds(a, {1: 0.7, 2: 0.7, 3: 0.7}, paired=True)
    with pytest.raises(ValueError, match="compare_seeds: paired=True needs as many seeds"):
        kdmetrics.compare_seeds([0.1, 0.2, 0.3], [0.1, 0.2], paired=True)


def test_effect_sizes():
    r = kdmetrics.compare_seeds(A, B)
    a, b = np.array(A), np.array(B)
    sp = math.sqrt((4 * a.var(ddof=1) + 5 * b.var(ddof=1)) / 9)
    assert r.pooled_sd == pytest.approx(sp)
    assert r.cohens_d == pytest.approx((b.mean() - a.mean()) / sp)
    j = special.gamma(9 / 2) / (math.sqrt(9 / 2) * special.gamma(8 / 2))
    assert r.hedges_g == pytest.approx(r.cohens_d * j)
    assert r.ddof == 1
    # Published seeds: d = 2.706 with ddof 1 (3.314 would be ddof 0), g = 2.159.
    p = kdmetrics.compare_seeds(PUB_A, PUB_B)
    assert round(p.cohens_d, 3) == 2.706 and round(p.hedges_g, 3) == 2.159
    # The usual approximation 1 - 3 / (4 df - 1) is within 1 % for df >= 4.
    for df in (4, 10, 50):
        assert hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), rel=0.01)
    pr = kdmetrics.compare_seeds(PUB_A, PUB_B, paired=True)
    d = np.array(PUB_B) - np.array(PUB_A)
    assert pr.cohens_d == pytest.approx(d.mean() / d.std(ddof=1))


def test_table():
    r = kdmetrics.compare_seeds(A, B)
    assert r.table.shape == (11, 3)
    assert r.table.recipe.tolist() == ["a"] * 5 + ["b"] * 6
    assert r.table.score.tolist() == A + B


def test_bootstrap_interval_agrees_with_scipy():
    r = kdmetrics.compare_seeds(A, B, interval="bootstrap", n_resamples=20_000)
    assert r.ci_method == "bootstrap_percentile"
    ref = stats.bootstrap(
        (A, B), lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        method="percentile", n_resamples=20_000, rng=np.random.default_rng(0), vectorized=True,
    ).confidence_interval  # fmt: skip
    width = ref.high - ref.low
    assert abs(r.ci_low - ref.low) < 0.05 * width
    assert abs(r.ci_high - ref.high) < 0.05 * width
    assert r.ci_low < r.delta < r.ci_high


@settings(max_examples=60, deadline=None)
@given(
    q=st.floats(0.0005, 0.9995),
    df=st.floats(1.0, 500.0),
)
def test_t_quantile_matches_scipy(q, df):
    assert t_cdf(stats.t.ppf(q, df), df) == pytest.approx(q, abs=1e-10)
    assert t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-8, abs=1e-10)


def test_dict_input_keeps_seed_labels():
    r = kdmetrics.compare_seeds({1: 0.70, 2: 0.71, 7: 0.69}, {3: 0.72, 4: 0.74})
    assert r.table.seed.tolist() == [1, 2, 7, 3, 4]


def test_equal_recipes():
    r = kdmetrics.compare_seeds([0.5, 0.5, 0.5], [0.5, 0.5])
    assert r.delta == 0 and r.p_value == 1.0
    assert (r.ci_low, r.ci_high) == (0.0, 0.0)
    assert math.isnan(r.cohens_d) and math.isnan(r.hedges_g)


def test_exact_cap_checked_before_enumeration():
    # 30 + 30 seeds have C(60, 30) ~ 1.2e17 splits: refused at once.
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"compare_seeds: max_exact must be an integer in"):
        kdmetrics.compare_seeds(np.arange(30.0), np.arange(30.0) + 1, max_exact=10**30)
    assert time.perf_counter() - t0 < 5  # not a timing test: enumeration would take hours
    # At the cap, a design with more arrangements falls back to Monte Carlo.
    r = kdmetrics.compare_seeds(
        np.arange(30.0), np.arange(30.0) + 1, max_exact=MAX_EXACT_LIMIT, n_resamples=100
    )
    assert r.p_method == "monte_carlo"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(scores_a=[0.5], scores_b=[0.5, 0.6]), "scores_a needs at least 2"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, np.nan]), "scores_b has a NaN"),
        (dict(scores_a=[[0.5, 0.6]], scores_b=[0.5, 0.6]), "scores_a must be 1-D"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], ci=1.0), "ci must be in"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], n_resamples=0), "n_resamples"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], interval="bca"), "interval must be"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], paired=1), "paired must be"),
        (dict(scores_a=[0.5, 0.6], scores_b=[0.5, 0.6], max_exact=-1), "max_exact"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=f"compare_seeds: .*{match}"):
        kdmetrics.compare_seeds(**kwargs)
