"""Every number in report.json equals the library function on the same arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from _report_data import report_args, write_files

import kdmetrics
from kdmetrics import (
    fit_temperature,
    load_predictions,
    nll,
    sla_threshold,
    summary,
    threshold_table,
    tiers_from_counts,
)
from kdmetrics.cli import main
from kdmetrics.metrics.calibration import ece
from kdmetrics.metrics.temperature import split_half
from kdmetrics.report.build import comparison_metrics


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    paths = write_files(d, seeds=2, grid=True)
    assert main(report_args(paths, d / "out")) == 0
    rep = json.loads((d / "out" / "report.json").read_text())
    files = {k: [load_predictions(p) for p in v] for k, v in paths.items()}
    tiers = tiers_from_counts(files["teacher"][0].train_counts, (3, 4))
    return rep, files, tiers


def same(got, want):
    # JSON has null for NaN; a DataFrame built from the records turns it back to NaN.
    def missing(x):
        return x is None or (isinstance(x, float) and math.isnan(x))

    if missing(want):
        return missing(got)
    return got == pytest.approx(want, rel=1e-12, abs=1e-12)


def records(rep, table):
    return pd.DataFrame(rep["tables"][table])


def test_metrics_match_summary(case):
    rep, files, tiers = case
    t = files["teacher"][0]
    got = records(rep, "metrics")
    models = {"teacher": t, "vanilla": files["vanilla"][0], "distilled": files["distilled"][0]}
    assert list(dict.fromkeys(got.model)) == list(models)
    for name, pred in models.items():
        want = summary(t.labels, pred.logits, tier_of_class=tiers, reference_logits=t.logits)
        rows = got[got.model == name].set_index("group")
        assert list(rows.index) == ["all", "head", "mid", "tail"]
        for group in want.index:
            for col in want.columns:
                assert same(rows.loc[group, col], float(want.loc[group, col])), (name, group, col)


def test_bootstrap_matches_paired_bootstrap(case):
    rep, files, tiers = case
    t, v, d = files["teacher"][0], files["vanilla"][0], files["distilled"][0]
    want = kdmetrics.paired_bootstrap(
        t.labels,
        v.logits,
        d.logits,
        tier_of_class=tiers,
        reference_logits=t.logits,
        metrics=comparison_metrics(),
        n_resamples=200,
        seed=0,
    )
    got = records(rep, "bootstrap")
    assert len(got) == len(want)
    needed = {"macro_f1", "accuracy", "ece", "nll", "js"}
    assert needed <= set(got.metric)
    for (_, g), (_, w) in zip(got.iterrows(), want.iterrows(), strict=True):
        for col in want.columns:
            if isinstance(w[col], str):
                assert g[col] == w[col]
            else:
                want_value = math.nan if pd.isna(w[col]) else float(w[col])
                assert same(g[col], want_value), (w["metric"], w["group"], col)


def test_temperature_test(case):
    rep, files, _ = case
    y = files["teacher"][0].labels
    fit_idx, eval_idx = split_half(y.size, 0)
    got = records(rep, "temperature").set_index("model")
    for name in ("vanilla", "distilled"):
        z = files[name][0].logits
        temp = float(fit_temperature(y[fit_idx], z[fit_idx]))
        ye, ze = y[eval_idx], z[eval_idx]
        assert same(got.loc[name, "temperature"], temp)
        assert same(got.loc[name, "ece_raw"], ece(ye, ze))
        assert same(got.loc[name, "ece_scaled"], ece(ye, ze, temperature=temp))
        assert same(got.loc[name, "nll_raw"], nll(ye, ze))
        assert same(got.loc[name, "nll_scaled"], nll(ye, ze, temperature=temp))
    for m in ("ece", "nll"):
        v_raw, v_sc = got.loc["vanilla", f"{m}_raw"], got.loc["vanilla", f"{m}_scaled"]
        gain = v_raw - got.loc["distilled", f"{m}_raw"]
        want = (v_raw - v_sc) / gain if gain > 0 else float("nan")
        assert same(rep["scalars"][f"ts_gain_fraction_{m}"], want)


def test_thresholds_and_sla(case):
    rep, files, _ = case
    y = files["teacher"][0].labels
    got_t, got_s = records(rep, "thresholds"), records(rep, "sla").set_index("model")
    for name in ("teacher", "vanilla", "distilled"):
        z = files[name][0].logits
        want = threshold_table(y, z)
        rows = got_t[got_t.model == name].reset_index(drop=True)
        for col in want.columns:
            for g, w in zip(rows[col], want[col], strict=True):
                assert same(g, float(w)), (name, col)
        sla = sla_threshold(y, z, 0.95)
        for field in ("threshold", "coverage", "accuracy", "n_kept"):
            assert same(got_s.loc[name, field], float(getattr(sla, field)))


def test_seed_comparison(case):
    rep, files, tiers = case
    y = files["teacher"][0].labels
    got = records(rep, "seed_comparison").set_index("metric")
    for metric in ("macro_f1", "accuracy", "ece", "nll"):
        a = [summary(y, f.logits, tier_of_class=tiers).loc["all", metric] for f in files["vanilla"]]
        b = [
            summary(y, f.logits, tier_of_class=tiers).loc["all", metric] for f in files["distilled"]
        ]
        res = kdmetrics.compare_seeds(a, b, n_resamples=200, seed=0)
        assert same(got.loc[metric, "difference"], np.mean(b) - np.mean(a))
        for field in ("ci_low", "ci_high", "p_value", "cohens_d"):
            assert same(got.loc[metric, field], float(getattr(res, field))), (metric, field)


def test_grid_noise_floor(case):
    rep, files, tiers = case
    t = files["teacher"][0]
    boot = records(rep, "bootstrap")
    floor = rep["scalars"]["noise_floor"]
    grid = records(rep, "grid").set_index("config")
    ref = summary(
        t.labels, files["vanilla"][0].logits, tier_of_class=tiers, reference_logits=t.logits
    )
    assert list(grid.T.loc["T"].dropna()) == [2.0, 4.0]
    for metric, width in floor.items():
        row = boot[(boot.metric == metric) & (boot.group == "all")].iloc[0]
        assert same(width, row.ci_high - row.ci_low)
        for pred in files["grid"]:
            s = summary(t.labels, pred.logits, tier_of_class=tiers, reference_logits=t.logits)
            delta = s.loc["all", metric] - ref.loc["all", metric]
            assert same(grid.loc[pred.name, f"delta_{metric}"], delta)
            assert grid.loc[pred.name, f"noise_floor_rule_{metric}"] == bool(abs(delta) < width)
