"""The report's new tables, each against a plain NumPy reference computed
from the same prediction files, plus the findings' structured fields."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from _report_data import K, report_args, write_files

from kdmetrics import load_predictions, tiers_from_counts
from kdmetrics.cli import main
from kdmetrics.metrics.registry import METRICS
from kdmetrics.report.findings import spec_of
from kdmetrics.tiers import TIER_NAMES

from reference import f1_per_class as ref_f1
from reference import log_softmax, predictions, softmax

MODELS = ("teacher", "vanilla", "distilled")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("tables")
    paths = write_files(d)
    assert main(report_args(paths, d / "out")) == 0
    rep = json.loads((d / "out" / "report.json").read_text())
    files = {k: load_predictions(v[0]) for k, v in paths.items()}
    tiers = tiers_from_counts(files["teacher"].train_counts, (3, 4))
    return rep, files, tiers


def records(rep, name):
    return pd.DataFrame(rep["tables"][name])


def masks(y, tiers):
    yield "all", np.ones(y.size, dtype=bool)
    for code, name in enumerate(TIER_NAMES):
        yield name, tiers[y] == code


def close(got, want, tol=1e-9):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None or (isinstance(got, float) and math.isnan(got))
    return got == pytest.approx(want, abs=tol)


def test_per_class_f1(case):
    rep, files, tiers = case
    y = files["teacher"].labels
    got = records(rep, "per_class_f1").set_index("class")
    assert list(got.index) == list(range(K))
    assert list(got["tier"]) == [TIER_NAMES[t] for t in tiers]
    assert list(got["support"]) == list(np.bincount(y, minlength=K))
    for name in MODELS:
        want = ref_f1(y, predictions(files[name].logits), K)
        for c in range(K):
            assert close(got.loc[c, f"f1_{name}"], float(want[c])), (name, c)
    v = ref_f1(y, predictions(files["vanilla"].logits), K)
    d = ref_f1(y, predictions(files["distilled"].logits), K)
    for c in range(K):
        assert close(got.loc[c, "delta"], float(d[c] - v[c]))


def test_teacher_agreement(case):
    rep, files, tiers = case
    y = files["teacher"].labels
    t = predictions(files["teacher"].logits)
    got = records(rep, "teacher_agreement").set_index(["model", "group"])
    for name in MODELS:
        p = predictions(files[name].logits)
        for group, m in masks(y, tiers):
            row = got.loc[(name, group)]
            assert row["n"] == m.sum()
            assert close(row["teacher_agreement"], float(np.mean(p[m] == t[m])))
            assert close(row["both_right"], float(np.mean((p[m] == t[m]) & (t[m] == y[m]))))
            assert close(row["agree_wrong"], float(np.mean((p[m] == t[m]) & (t[m] != y[m]))))


def test_agreement_interval_is_accuracy_against_the_teacher(case):
    rep, files, tiers = case
    y = files["teacher"].labels
    t = predictions(files["teacher"].logits)
    boot = records(rep, "bootstrap")
    got = boot[boot.metric == "teacher_agreement"].set_index("group")
    assert "agreement_bootstrap" not in rep["tables"]  # the bootstrap carries it now
    for group, m in masks(y, tiers):
        row = got.loc[group]
        va = float(np.mean(predictions(files["vanilla"].logits)[m] == t[m]))
        da = float(np.mean(predictions(files["distilled"].logits)[m] == t[m]))
        assert close(row["a"], va) and close(row["b"], da) and close(row["delta"], da - va)
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]


def test_selective_by_tier(case):
    rep, files, tiers = case
    y = files["teacher"].labels
    got = records(rep, "selective_by_tier")
    thresholds = sorted(set(got["threshold"]))
    assert thresholds == [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
    for name in MODELS:
        p = softmax(files[name].logits)
        conf, right = p.max(axis=1), p.argmax(axis=1) == y
        for group, m in masks(y, tiers):
            rows = got[(got.model == name) & (got.group == group)].set_index("threshold")
            for t in thresholds:
                kept = m & (conf >= t)
                assert rows.loc[t, "n_kept"] == kept.sum(), (name, group, t)
                assert close(rows.loc[t, "coverage"], kept.sum() / m.sum())
                want = float(right[kept].mean()) if kept.any() else float("nan")
                assert close(rows.loc[t, "accuracy"], want)


def test_aurc_table(case):
    rep, files, tiers = case
    y = files["teacher"].labels
    got = records(rep, "aurc").set_index(["model", "group"])
    for name in MODELS:
        p = softmax(files[name].logits)
        conf, right = p.max(axis=1), (p.argmax(axis=1) == y)
        for group, m in masks(y, tiers):
            # float32 logits drawn from a continuous distribution: no ties.
            c, r = conf[m], right[m]
            order = np.argsort(-c)
            risk = np.cumsum(~r[order]) / np.arange(1, m.sum() + 1)
            errors = int((~r).sum())
            n = int(m.sum())
            best = np.concatenate([np.zeros(n - errors), np.ones(errors)])
            best_risk = np.cumsum(best) / np.arange(1, n + 1)
            row = got.loc[(name, group)]
            assert close(row["aurc"], float(risk.mean()))
            assert close(row["aurc_optimal"], float(best_risk.mean()))
            assert close(row["error_rate"], errors / n)
            assert close(row["excess_aurc"], float(risk.mean() - best_risk.mean()))


def test_soft_target_diagnostics(case):
    rep, files, _ = case
    got = records(rep, "soft_targets")
    # No distillation temperature in these files' metadata: T = 1 only.
    assert list(got["temperature"]) == [1.0]
    lp = log_softmax(files["teacher"].logits)
    p = np.exp(lp)
    row = got.iloc[0]
    assert close(row["mean_entropy"], float(np.mean(-(p * lp).sum(axis=1))))
    assert close(row["mean_max_prob"], float(p.max(axis=1).mean()))
    assert close(row["max_entropy"], math.log(K))
    assert row["saturated"] == bool(p.max(axis=1).mean() > 0.99)


def test_soft_target_diagnostics_at_the_distillation_temperature():
    from kdmetrics.report.tables import soft_target_diagnostics

    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 7))
    z[np.arange(300), rng.integers(0, 7, 300)] += 12.0  # saturated at T = 1, not at T = 4
    z = z.astype(np.float16)
    got = soft_target_diagnostics(z, [1.0, 4.0], source="x").set_index("temperature")
    for t in (1.0, 4.0):
        lp = log_softmax(z, t)
        p = np.exp(lp)
        assert close(got.loc[t, "mean_entropy"], float(np.mean(-(p * lp).sum(axis=1))))
        assert close(got.loc[t, "mean_max_prob"], float(p.max(axis=1).mean()))
    assert got.loc[1.0, "saturated"] and not got.loc[4.0, "saturated"]


def test_bootstrap_p_better_reads_the_direction(case):
    rep, _, _ = case
    boot = records(rep, "bootstrap")
    assert set(boot.metric) == {
        m for m in METRICS if METRICS[m].in_summary and METRICS[m].statistic != "pair_mean"
    } & set(boot.metric)
    for r in boot.itertuples():
        # P(distilled better) and the delta's sign agree for a clear difference.
        if r.ci_low > 0:
            assert r.p_better > 0.9 if METRICS[r.metric].higher_is_better else r.p_better < 0.1
        if r.ci_high < 0:
            assert r.p_better < 0.1 if METRICS[r.metric].higher_is_better else r.p_better > 0.9


def test_findings_are_structured(case):
    rep, _, _ = case
    f = rep["findings"]
    props = {x["property"] for x in f["findings"]}
    assert props == {
        "capacity",
        "top-1 calibration",
        "full distribution",
        "fidelity to the teacher",
    }
    # The temperature test quotes its paired intervals, not point estimates only.
    assert "Paired tests on the evaluation half" in f["temperature_scaling"]
    assert "without intervals" not in f["temperature_scaling"]
    capacity_groups = {x["group"] for x in f["findings"] if x["property"] == "capacity"}
    assert capacity_groups == {"all", "head", "mid", "tail"}
    boot = pd.concat([records(rep, "bootstrap"), records(rep, "calibration_debiased")]).set_index(
        ["metric", "group"]
    )
    for x in f["findings"]:
        assert x["text"]
        for m in x["metrics"]:
            spec = spec_of(m["metric"])
            assert m["label"] == spec.label and m["higher_is_better"] == spec.higher_is_better
            excludes = m["ci_low"] > 0 or m["ci_high"] < 0
            assert (m["verdict"] != "inside the noise") == excludes
            if m["metric"] != "teacher_agreement":
                row = boot.loc[(m["metric"], m["group"])]
                assert close(m["delta"], row["delta"]) and close(m["p_better"], row["p_better"])
            if m["verdict"] != "inside the noise":
                want = "distilled" if spec.better(m["delta"]) else "vanilla"
                assert m["better"] == want and f"{want} better" in x["text"]
            assert "P(distilled better)" in x["text"] and m["verdict"] in x["text"]
    assert "Teacher ceiling" in f["teacher_ceiling"]
    assert any("intervals" in c for c in f["caveats"])
    assert "P(delta<=0)" not in json.dumps(f)
