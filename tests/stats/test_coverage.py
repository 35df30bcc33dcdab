"""The coverage harness (benches/coverage.py): a short run in the default suite,
the measured policy's claims under the slow marker."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kdmetrics
from kdmetrics.stats import policy

_PATH = Path(__file__).resolve().parents[2] / "benches" / "coverage.py"


def _harness():
    spec = importlib.util.spec_from_file_location("kdmetrics_coverage_harness", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


cov = _harness()


@pytest.fixture(scope="module")
def quick():
    per_draw, truth, info = cov.run(["kd_like"], draws=25, resamples=200, truth_per_tier=30_000)
    return cov.summarize(per_draw, truth), truth, info


def test_population_shape():
    assert cov.FREQ.shape == (cov.K,) and cov.FREQ.sum() == pytest.approx(1.0)
    # Tiers from the frequencies are the harness' tiers (20 / 40 / 53).
    counts = np.round(cov.FREQ * 1e7).astype(np.int64)
    np.testing.assert_array_equal(kdmetrics.tiers_from_counts(counts), np.array(cov.TIER_OF_CLASS))
    shares = [cov.FREQ[cov.TIER_OF_CLASS == t].sum() for t in range(3)]
    np.testing.assert_allclose(shares, np.array(cov.VALIDATION) / cov.N_VAL)


def test_stratified_truth_matches_a_plain_sample():
    """The tier-stratified truth equals kdmetrics on a large i.i.d. sample
    (within that sample's sampling error)."""
    sc = cov.SCENARIOS["kd_like"]
    truth = cov.population_truth(sc, 60_000, seed=1).set_index(["metric", "group"])
    rng = np.random.default_rng(9)
    n = 60_000
    y = rng.choice(cov.K, size=n, p=cov.FREQ)
    _, za, _ = cov.draw(sc, y, rng)
    s = kdmetrics.summary(y, za, tier_of_class=cov.TIER_OF_CLASS)
    for metric, se in (("accuracy", 0.002), ("nll", 0.01), ("ece", 0.002), ("macro_f1", 0.01)):
        for group in ("all", "head"):
            got = s.loc[group, metric]
            want = truth.loc[(metric, group), "a"]
            assert abs(got - want) < 4 * se, (metric, group, got, want)


def test_summarize_counts_hits_and_misses():
    per_draw = pd.DataFrame(
        {
            "scenario": "s", "draw": range(4), "metric": "m", "group": "all",
            "est_a": 0.0, "est_b": 0.0, "estimate": [0.1, 0.2, 0.3, 0.4], "boot_sd": 0.1,
            **{f"{m}_lo": [0.0, 0.3, -1.0, np.nan] for m in cov.ENGINE_METHODS},
            **{f"{m}_hi": [0.2, 0.5, 0.0, np.nan] for m in cov.ENGINE_METHODS},
        }
    )  # fmt: skip
    truth = pd.DataFrame({"scenario": ["s"], "metric": ["m"], "group": ["all"],
                          "a": [0.0], "b": [0.15], "true_delta": [0.15]})  # fmt: skip
    s = cov.summarize(per_draw, truth).iloc[0]
    assert s.draws == 3  # the NaN interval is left out
    assert s.coverage == pytest.approx(1 / 3)
    assert s.miss_low == pytest.approx(1 / 3) and s.miss_high == pytest.approx(1 / 3)
    assert s.bias == pytest.approx(0.25 - 0.15)


def test_quick_run(quick):
    summary, truth, info = quick
    assert info["kd_like"]["warnings"] == 0
    pct = summary[summary.method == "percentile"].set_index(["metric", "group"])
    # Accuracy and NLL intervals are honest; 25 draws can only rule out gross
    # failures (a 95 % interval misses 6 of 25 with probability ~0.1 %).
    for metric in ("accuracy", "nll", "brier"):
        for group in ("all", "head", "mid", "tail"):
            assert pct.loc[(metric, group), "coverage"] >= 0.8, (metric, group)
    # The distilled model is near-calibrated overall: plain ECE is biased
    # upward for it, the debiased estimator is not.
    assert truth.set_index(["metric", "group"]).loc[("ece", "all"), "b"] < 0.01
    assert pct.loc[("ece", "all"), "mean_est_b"] > pct.loc[("ece", "all"), "true_b"]
    assert pct.loc[("ece", "all"), "bias_sd"] > 1.0
    assert abs(pct.loc[("ce2_debiased", "all"), "bias_sd"]) < 0.6
    text = cov.markdown(summary, info, "cmd", "params")
    assert "| accuracy | all |" in text and "ce2_debiased" in text


def test_policy_literal_round_trips(quick):
    summary, _, _ = quick
    ns: dict = {}
    exec(cov.policy_literal(summary, "cmd"), ns)  # noqa: S102 - our own generated literal
    assert ns["SCENARIOS"] == ("kd_like",)
    key = ("accuracy", "all", "percentile")
    want = summary.set_index(["metric", "group", "method"]).loc[key, "coverage"]
    assert ns["MEASURED"][key] == (pytest.approx(want, abs=1e-4),)


def test_seed_coverage_short():
    welch = cov.seed_coverage(3, 300)
    boot = cov.seed_coverage(3, 300, interval="bootstrap", resamples=500)
    assert welch["coverage"] >= 0.90
    assert boot["coverage"] < welch["coverage"]


@pytest.mark.slow
def test_seed_intervals_hold_with_three_seeds():
    for case in cov.SEED_CASES.values():
        assert cov.seed_coverage(3, 2000, **case)["coverage"] >= 0.93
        assert cov.seed_coverage(3, 2000, paired=True, **case)["coverage"] >= 0.93


@pytest.mark.slow
def test_measured_policy_claims():
    """A fresh long run (other seed): every default interval covers within the
    band in every scenario, or the policy flags the (metric, group)."""
    per_draw, truth, _ = cov.run(list(cov.SCENARIOS), draws=300, resamples=500,
                                 truth_per_tier=400_000, seed=7)  # fmt: skip
    summary = cov.summarize(per_draw, truth)
    lo, hi = policy.COVERAGE_BAND
    slack = 2 * np.sqrt(0.95 * 0.05 / 300)  # this run's own Monte-Carlo error
    for (metric, group), g in summary.groupby(["metric", "group"]):
        method = policy.default_method(metric)
        c = g[g.method == method].coverage
        if policy.trust(metric, group, method)[0]:
            assert ((c >= lo - slack) & (c <= hi + slack)).all(), (metric, group, method)
    cal = summary[(summary.metric == "ce2_debiased") & (summary.scenario == "kd_like")]
    cal = cal[cal.method == policy.default_method("ce2_debiased")].set_index("group")
    for group in ("all", "head", "mid"):
        assert cal.loc[group, "coverage"] >= lo - slack
