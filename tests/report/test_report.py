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


def _engine(files, tiers):
    """The report's preset of the comparison engine, for the same seed."""
    t, v, d = files["teacher"][0], files["vanilla"][0], files["distilled"][0]
    return kdmetrics.compare(
        t.labels,
        ("vanilla", v.logits),
        {"distilled": d.logits},
        teacher=t.logits,
        tier_of_class=tiers,
        metrics=comparison_metrics(),
        n_resamples=200,
        seed=0,
        ci=0.95,
        temperature_seed=0,
    )


def test_bootstrap_rows_are_compare_deltas(case):
    """The report's delta rows are ``compare``'s rows for the same seed, every
    column (the engine-only ones too: verdict, caveat, adjusted interval), and
    P(distilled better) is read from the engine's draws."""
    rep, files, tiers = case
    cmp = _engine(files, tiers)
    want = cmp.deltas[cmp.deltas.variant == "distilled"].reset_index(drop=True)
    got = records(rep, "bootstrap")
    assert len(got) == len(want)
    assert {"macro_f1", "accuracy", "ece", "nll", "js"} <= set(got.metric)
    renamed = {"reference_value": "a", "variant_value": "b"}
    checked = 0
    for (_, g), (_, w) in zip(got.iterrows(), want.iterrows(), strict=True):
        for col in want.columns.drop("variant"):
            value, name = w[col], renamed.get(col, col)
            if isinstance(value, str):
                assert g[name] == value, (w["metric"], w["group"], col)
            else:
                want_value = math.nan if pd.isna(value) else float(value)
                assert same(g[name], want_value), (w["metric"], w["group"], col)
            checked += 1
        draws = cmp.draws("distilled", w["metric"], w["group"])
        better = draws > 0 if w["higher_is_better"] else draws < 0
        assert same(g["p_better"], float(np.mean(better)))
    assert checked == len(want) * (len(want.columns) - 1)
    # The engine's own columns are there, so the rows cannot come from a bare
    # paired_bootstrap (which has none of them).
    assert {"verdict", "caveat", "ci_low_adjusted", "favours"} <= set(got.columns)
    assert not {"verdict", "ci_low_adjusted"} & set(
        kdmetrics.paired_bootstrap(
            files["teacher"][0].labels,
            files["vanilla"][0].logits,
            files["distilled"][0].logits,
            metrics=["accuracy"],
            n_resamples=20,
        ).columns
    )


def test_finding_verdicts_are_compare_verdicts(case):
    """Each finding's verdict is the engine's verdict of the same row."""
    rep, files, tiers = case
    d = _engine(files, tiers).deltas.set_index(["metric", "group"])
    n = 0
    for x in rep["findings"]["findings"]:
        for m in x["metrics"]:
            if m["metric"] == "ce2_debiased":  # not a registry metric: not in compare
                continue
            assert m["verdict"] == d.loc[(m["metric"], m["group"]), "verdict"], m
            n += 1
    assert n > 0


def test_temperature_rows_are_compare_rows(case):
    """The temperature test's same-scaling rows are the engine's calibration
    deltas (group all) for the same seed."""
    rep, files, tiers = case
    cd = _engine(files, tiers).calibration_deltas
    got = records(rep, "temperature_paired")
    for label, scaling in (("distilled - vanilla", "raw"), ("distilled+T - vanilla+T", "scaled")):
        for metric in ("ece", "nll"):
            g = got[(got.comparison == label) & (got.metric == metric)].iloc[0]
            w = cd[(cd.scaling == scaling) & (cd.metric == metric) & (cd.group == "all")].iloc[0]
            for col, name in (("reference_value", "a"), ("variant_value", "b")):
                assert same(g[name], float(w[col]))
            for col in ("delta", "ci_low", "ci_high", "p_delta_le_0"):
                assert same(g[col], float(w[col])), (label, metric, col)
            assert g["method"] == w["method"]


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
