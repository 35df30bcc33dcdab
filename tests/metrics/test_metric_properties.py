"""Property tests: every public metric against the float64 NumPy reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import assume, given
from hypothesis import strategies as st

import kdmetrics as km

import reference as ref
from strategies import logit_pairs, problems, temperatures

ATOL = 1e-6  # docs/conventions.md, Inputs: agreement with a float64 reference


@given(problems())
def test_accuracy_and_f1_match_reference(problem):
    y, z = problem
    k = z.shape[1]
    preds = ref.predictions(z)
    assert km.accuracy(y, z) == pytest.approx(ref.accuracy(y, z), abs=0)
    np.testing.assert_array_equal(km.f1_per_class(y, z), ref.f1_per_class(y, preds, k))
    assert km.macro_f1(y, z) == pytest.approx(ref.macro_f1(y, preds, k), abs=1e-12)
    # Predicted classes give the same answers as logits.
    assert km.macro_f1(y, preds, n_classes=k) == pytest.approx(km.macro_f1(y, z), abs=0)


@given(problems())
def test_f1_agrees_with_scikit_learn(problem):
    y, z = problem
    preds = ref.predictions(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn's notes on unseen classes
        want = skm.f1_score(y, preds, average="macro")  # labels=None: classes in y or preds
        want_per_class = skm.f1_score(y, preds, average=None)
        want_balanced = skm.balanced_accuracy_score(y, preds)
    assert km.macro_f1(y, z) == pytest.approx(want, abs=1e-12)
    present = np.union1d(y, preds)
    np.testing.assert_allclose(km.f1_per_class(y, z)[present], want_per_class, atol=1e-12)
    assert km.balanced_accuracy(y, z) == pytest.approx(want_balanced, abs=1e-12)


@given(problems(), temperatures)
def test_nll_and_brier_match_reference(problem, t):
    y, z = problem
    assert km.nll(y, z, temperature=t) == pytest.approx(ref.nll(y, z, t), abs=ATOL)
    assert km.brier(y, z, temperature=t) == pytest.approx(ref.brier(y, z, t), abs=ATOL)


@given(problems(extreme=False))
def test_nll_agrees_with_scikit_learn_log_loss(problem):
    y, z = problem
    p = ref.softmax(z)
    # Where no probability is below sklearn's clip (float64 eps), the two agree.
    assume(p.min() > 1e-12)
    want = skm.log_loss(y, p, labels=np.arange(z.shape[1]))
    assert km.nll(y, z) == pytest.approx(want, abs=1e-6)


def _near_edge(conf: np.ndarray, n_bins: int) -> bool:
    if conf.size == 0:
        return False
    edges = np.linspace(0, 1, n_bins + 1)
    return bool(np.min(np.abs(conf[:, None] - edges[None, :])) < 1e-6)


@given(problems(), temperatures, st.sampled_from([1, 5, 15]), st.booleans())
def test_ece_matches_reference(problem, t, n_bins, right):
    y, z = problem
    conf = ref.softmax(z, t).max(axis=1)
    # A confidence within rounding of an edge may fall either side; skip those
    # draws, unless it sits exactly on the edge in both computations (ties, 1.0).
    exact = np.isin(conf, np.linspace(0, 1, n_bins + 1))
    assume(not _near_edge(conf[~exact], n_bins))
    got = km.ece(y, z, n_bins, temperature=t, right=right)
    assert got == pytest.approx(ref.ece(y, z, n_bins, t, right), abs=ATOL)


@given(problems(), temperatures)
def test_reliability_table_is_consistent(problem, t):
    y, z = problem
    table = km.reliability_table(y, z, 10, temperature=t)
    assert table["count"].sum() == len(y)
    filled = table[table["count"] > 0]
    ece = float((filled["weight"] * (filled["accuracy"] - filled["confidence"]).abs()).sum())
    assert ece == pytest.approx(km.ece(y, z, 10, temperature=t), abs=1e-12)
    assert (
        (filled["confidence"] >= filled["lo"] - 1e-12)
        & (filled["confidence"] <= filled["hi"] + 1e-12)
    ).all()


@given(problems(), st.integers(1, 8))
def test_equal_mass_bins(problem, n_bins):
    y, z = problem
    table = km.reliability_table(y, z, n_bins, strategy="quantile")
    n = len(y)
    want_sizes = [(b + 1) * n // n_bins - b * n // n_bins for b in range(n_bins)]
    assert table["count"].tolist() == want_sizes
    conf = ref.softmax(z).max(axis=1)
    correct = ref.predictions(z) == y
    order = np.lexsort((np.arange(n), conf))
    want = 0.0
    for b in range(n_bins):
        idx = order[b * n // n_bins : (b + 1) * n // n_bins]
        if idx.size:
            want += idx.size / n * abs(correct[idx].mean() - conf[idx].mean())
    assume(np.min(np.diff(np.sort(conf))[np.diff(np.sort(conf)) > 0], initial=1.0) > 1e-6)
    assert km.ece(y, z, n_bins, strategy="quantile") == pytest.approx(want, abs=ATOL)


@given(logit_pairs(), temperatures)
def test_divergences_match_reference(pair, t):
    p, q = pair
    kl = km.kl_divergence(p, q, temperature=t, per_example=True)
    js = km.js_divergence(p, q, temperature=t, per_example=True)
    np.testing.assert_allclose(kl, ref.kl(p, q, t), atol=ATOL, rtol=1e-9)
    np.testing.assert_allclose(js, ref.js(p, q, t), atol=ATOL)
    np.testing.assert_allclose(
        km.js_divergence(p, q, temperature=t, base=2, per_example=True), js / np.log(2), atol=1e-12
    )
    assert km.js_distance(p, q, temperature=t) == pytest.approx(
        np.mean(np.sqrt(np.maximum(js, 0))), abs=1e-12
    )
    assert np.all(js <= np.log(2) + ATOL)


@given(problems(dtypes=[np.float32, np.float64]))
def test_probs_input_equals_logits_input(problem):
    y, z = problem
    p = ref.softmax(z).astype(z.dtype)
    p = p / p.sum(axis=1, keepdims=True, dtype=np.float64)
    assume(p.min() > 1e-30)  # float32 underflow would make log p = -inf there
    assert km.nll(y, p, probs=True) == pytest.approx(km.nll(y, z), abs=1e-5)
    assert km.brier(y, p, probs=True) == pytest.approx(km.brier(y, z), abs=1e-5)


@given(problems(max_n=30))
def test_temperature_fit_is_the_minimum(problem):
    y, z = problem
    z = z.astype(np.float64)
    assume(np.ptp(z) > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # optimum at a bound is fine here
        fit = km.fit_temperature(y, z)
    t = fit.temperature
    here = ref.nll(y, z, t)
    assert fit.nll_after == pytest.approx(here, abs=1e-6)
    for other in (t * 0.98, t * 1.02):
        if 0.01 <= other <= 100:
            assert here <= ref.nll(y, z, other) + 1e-6


@given(problems(), st.floats(0.05, 1.0))
def test_sla_threshold_is_lowest_meeting_target(problem, target):
    y, z = problem
    res = km.sla_threshold(y, z, target)
    conf = ref.softmax(z).max(axis=1)
    correct = ref.predictions(z) == y
    distinct = np.unique(conf)
    assume(np.min(np.diff(distinct), initial=1.0) > 1e-6)
    meets = [t for t in distinct if correct[conf >= t - 1e-9].mean() >= target]
    if not meets:
        assert np.isnan(res.threshold) and res.coverage == 0.0
        return
    best = min(meets)
    assert res.threshold == pytest.approx(best, abs=1e-6)
    assert res.coverage == pytest.approx(np.mean(conf >= best - 1e-9), abs=0)
    table = km.threshold_table(y, z, [res.threshold])
    assert table["coverage"].iloc[0] == pytest.approx(res.coverage)
    assert table["accuracy"].iloc[0] >= target


@given(problems(max_n=60, max_k=8))
def test_summary_rows_equal_the_single_metrics(problem):
    y, z = problem
    k = z.shape[1]
    tiers = np.arange(k) % 3
    ref_logits = (z.astype(np.float64) * 0.5).astype(z.dtype)
    table = km.summary(y, z, tier_of_class=tiers, reference_logits=ref_logits)
    preds = ref.predictions(z)
    for code, name in enumerate(("head", "mid", "tail")):
        row = table.loc[name]
        mask = tiers[y] == code
        assert row["n"] == mask.sum()
        want_f1 = ref.macro_f1(y, preds, k, classes=tiers == code)
        np.testing.assert_allclose(row["macro_f1"], want_f1, atol=1e-12)
        if mask.any():
            assert row["accuracy"] == pytest.approx(np.mean(preds[mask] == y[mask]))
            assert row["nll"] == pytest.approx(ref.nll(y[mask], z[mask]), abs=ATOL)
            assert row["js"] == pytest.approx(ref.js(ref_logits[mask], z[mask]).mean(), abs=ATOL)
        else:
            assert np.isnan(row["accuracy"])
    assert table.loc["all", "kl"] == pytest.approx(ref.kl(ref_logits, z).mean(), abs=ATOL)
