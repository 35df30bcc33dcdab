"""The report's temperature-scaling test: paired intervals and the gain fraction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdmetrics.metrics.calibration import ece
from kdmetrics.metrics.temperature import fit_temperature, split_half
from kdmetrics.report.build import temperature_test
from kdmetrics.stats.bootstrap import paired_bootstrap


def _students(n=3000, k=8, seed=0, same=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    base = 1.8 * np.eye(k)[y] + rng.normal(0, 1, (n, k))
    vanilla = 4.5 * base  # over-confident (1.8 x base is about calibrated)
    distilled = vanilla + rng.normal(0, 0.01, (n, k)) if same else 1.8 * base
    return y, vanilla, distilled


def test_paired_differences_on_the_evaluation_half():
    y, v, d = _students()
    table, fractions, notes, extra = temperature_test(y, v, d, seed=3, n_resamples=400)
    paired = extra["temperature_paired"]
    assert set(paired.comparison) == {
        "distilled - vanilla+T", "distilled+T - vanilla+T", "distilled - vanilla",
        "vanilla+T - vanilla",
    }  # fmt: skip
    assert set(paired.metric) == {"ece", "nll", "ce2_debiased"}
    assert {"trusted", "flag_reason", "ci_low", "ci_high"} <= set(paired.columns)
    # "distilled - vanilla+T" is paired_bootstrap on the evaluation half with
    # vanilla scaled by its own T fitted on the fit half.
    fit, ev = split_half(len(y), 3)
    t_v = float(fit_temperature(y[fit], v[fit]))
    want = paired_bootstrap(
        y[ev], v[ev] / t_v, d[ev], metrics=("ece", "nll"), n_resamples=400, seed=3
    ).set_index("metric")
    got = paired[paired.comparison == "distilled - vanilla+T"].set_index("metric")
    assert got.loc["nll", "delta"] == pytest.approx(want.loc["nll", "delta"], abs=1e-12)
    assert got.loc["ece", "a"] == pytest.approx(ece(y[ev], v[ev], temperature=t_v), abs=1e-9)
    assert table.loc["vanilla", "temperature"] == pytest.approx(t_v)


def test_gain_fraction_has_an_interval():
    y, v, d = _students()
    table, fractions, notes, extra = temperature_test(y, v, d, seed=3, n_resamples=400)
    gain = extra["temperature_gain"].set_index("metric")
    for m in ("ece", "nll"):
        row = gain.loc[m]
        assert row.denominator_ci_high < 0  # distillation's gain is established here
        want = (table.loc["vanilla", f"{m}_scaled"] - table.loc["vanilla", f"{m}_raw"]) / (
            table.loc["distilled", f"{m}_raw"] - table.loc["vanilla", f"{m}_raw"]
        )
        assert row.fraction == pytest.approx(want) and fractions[m] == pytest.approx(want)
        assert row.ci_low <= row.fraction <= row.ci_high
        assert row.reason == ""
    assert notes == []


def test_gain_fraction_nan_when_the_gain_is_not_established():
    y, v, d = _students(same=True)
    _, fractions, notes, extra = temperature_test(y, v, d, seed=1, n_resamples=400)
    gain = extra["temperature_gain"].set_index("metric")
    for m in ("ece", "nll"):
        assert math.isnan(fractions[m]) and math.isnan(gain.loc[m, "fraction"])
        assert math.isnan(gain.loc[m, "ci_low"]) and math.isnan(gain.loc[m, "ci_high"])
        assert not gain.loc[m, "denominator_ci_high"] < 0
        assert "distill" in gain.loc[m, "reason"]
    assert len(notes) == 2 and all("NaN" in n for n in notes)
