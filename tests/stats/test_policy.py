"""Interval policy: debiased calibration bootstrap, shifted interval, trust flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdmetrics.metrics.calibration import ece_debiased
from kdmetrics.stats import policy
from kdmetrics.stats.bootstrap import interval, paired_bootstrap, resample_indices


def _data(n=600, k=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    base = 1.5 * np.eye(k)[y] + rng.normal(0, 1, (n, k))
    return y, 3.0 * base, 1.2 * base + rng.normal(0, 0.3, (n, k))


def test_calibration_bootstrap_uses_the_paired_draws():
    y, za, zb = _data()
    tiers = np.array([0, 0, 1, 1, 2, 2])
    table, deltas = policy.calibration_bootstrap(
        y, za, zb, tier_of_class=tiers, n_resamples=50, seed=4, return_deltas=True
    )
    assert list(table.group) == ["all", "head", "mid", "tail"]
    assert list(table.columns) == list(paired_bootstrap(y, za, zb, n_resamples=2).columns)
    # Full-data values are ece_debiased on the group's examples.
    code = tiers[y]
    for g, sel in (("all", slice(None)), ("head", code == 0), ("tail", code == 2)):
        row = table[table.group == g].iloc[0]
        assert row.a == pytest.approx(ece_debiased(y[sel], za[sel], squared=True), abs=1e-12)
        assert row.b == pytest.approx(ece_debiased(y[sel], zb[sel], squared=True), abs=1e-12)
        assert row.n == (len(y) if g == "all" else int(sel.sum()))
    # Resample i is paired_bootstrap's resample i, recomputed independently.
    for i in (0, 17, 49):
        idx = resample_indices(len(y), 4, i)
        want = ece_debiased(y[idx], zb[idx], squared=True) - ece_debiased(
            y[idx], za[idx], squared=True
        )
        assert deltas[("ce2_debiased", "all")][i] == pytest.approx(want, abs=1e-12)
    # The percentile interval is that of the returned deltas.
    d = deltas[("ce2_debiased", "all")][:, None]
    lo, hi = interval(d, np.array([table.delta.iat[0]]), 0.95, "percentile")
    t2 = policy.calibration_bootstrap(y, za, zb, n_resamples=50, seed=4, method="percentile")
    assert (t2.ci_low.iat[0], t2.ci_high.iat[0]) == pytest.approx((lo[0], hi[0]), abs=1e-15)


def test_root_estimator_and_ranges():
    y, za, zb = _data()
    root = policy.calibration_bootstrap(y, za, zb, estimator="ce_debiased", n_resamples=20)
    assert root.a.iat[0] == pytest.approx(ece_debiased(y, za))
    # start/n_resamples ranges concatenate to one run.
    _, full = policy.calibration_bootstrap(y, za, zb, n_resamples=30, seed=2, return_deltas=True)
    _, head = policy.calibration_bootstrap(y, za, zb, n_resamples=10, seed=2, return_deltas=True)
    _, tail = policy.calibration_bootstrap(
        y, za, zb, n_resamples=20, seed=2, start=10, return_deltas=True
    )
    key = ("ce2_debiased", "all")
    np.testing.assert_array_equal(full[key], np.concatenate([head[key], tail[key]]))


def test_shifted_interval():
    d = np.array([[1.0], [2.0], [3.0], [4.0], [10.0]])
    est = np.array([2.0])
    lo, hi = policy.shifted_interval(d, est, 0.5)
    q = np.quantile(d[:, 0], [0.25, 0.75])
    bias = d.mean() - 2.0
    assert (lo[0], hi[0]) == pytest.approx((q[0] - 2 * bias, q[1] - 2 * bias))


def test_choose_methods_rule():
    measured = {
        ("m", "all", "percentile"): (0.94, 0.90),
        ("m", "all", "basic"): (0.95, 0.93),
        ("m", "tail", "basic"): (0.97, 0.95),
        ("m", "tail", "percentile"): (0.95, 0.95),
        ("n", "all", "percentile"): (0.95,),
        ("n", "all", "basic"): (0.95,),
    }
    # worst errors: percentile 0.05, basic 0.02 -> basic; n: tie -> percentile
    assert policy.choose_methods(measured) == {"m": "basic", "n": "percentile"}
    # ... unless the improvement is within the margin (Monte-Carlo noise).
    assert policy.choose_methods(measured, margin=0.04)["m"] == "percentile"
    assert policy.choose_methods(measured, margin=0.02)["m"] == "basic"


def test_policy_is_consistent_with_its_measurements():
    margin = 2 * np.sqrt(0.95 * 0.05 / policy.MEASURED_DRAWS)
    assert policy.DEFAULT_METHOD == policy.choose_methods(policy.MEASURED, margin=margin)
    lo, hi = policy.COVERAGE_BAND
    for (metric, group, method), covs in policy.MEASURED.items():
        assert len(covs) == len(policy.SCENARIOS)
        trusted, reason = policy.trust(metric, group, method)
        assert trusted == all(lo <= c <= hi for c in covs)
        assert (reason == "") == trusted


def test_apply_policy_columns_and_flags(monkeypatch):
    monkeypatch.setattr(policy, "SCENARIOS", ("s1", "s2"))
    monkeypatch.setattr(policy, "MEASURED_DRAWS", 400)
    monkeypatch.setattr(
        policy,
        "MEASURED",
        {
            ("accuracy", "all", "percentile"): (0.95, 0.94),
            ("ece", "all", "percentile"): (0.95, 0.3),
        },
    )
    table = pd.DataFrame({"metric": ["accuracy", "ece", "ece", "top_k"], "group": ["all"] * 4})
    before = table.copy()
    out = policy.apply_policy(table, method=["percentile", "percentile", "basic", "percentile"])
    pd.testing.assert_frame_equal(table, before)  # the argument is not modified
    assert out.trusted.tolist() == [True, False, False, False]
    assert out.flag_reason.iat[0] == ""
    assert "0.300" in out.flag_reason.iat[1] and "'s2'" in out.flag_reason.iat[1]
    assert "too narrow" in out.flag_reason.iat[1]
    assert "ce2_debiased" in out.flag_reason.iat[1]
    assert "basic" in out.flag_reason.iat[2] and "not measured" in out.flag_reason.iat[2]
    assert "not measured" in out.flag_reason.iat[3]
    assert out.method.tolist()[2] == "basic"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"table": pd.DataFrame({"metric": ["nll"]})}, "table has no 'group' column"),
        ({"method": "studentized"}, "unknown method"),
        ({"method": ["percentile"] * 3}, "method has 3 entries"),
    ],
)
def test_apply_policy_bad_input(kwargs, match):
    args = {"table": pd.DataFrame({"metric": ["nll"], "group": ["all"]}), **kwargs}
    with pytest.raises(ValueError, match=f"apply_policy: {match}"):
        policy.apply_policy(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimator": "ece"}, "unknown estimator"),
        ({"method": "bca"}, "method 'bca' is not offered"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"n_bins": 0}, "n_bins"),
    ],
)
def test_calibration_bootstrap_bad_input(kwargs, match):
    y, za, zb = _data(n=50)
    with pytest.raises(ValueError, match=f"calibration_bootstrap: .*{match}"):
        policy.calibration_bootstrap(y, za, zb, **kwargs)
