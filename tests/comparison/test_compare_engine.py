import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kdmetrics
from kdmetrics.comparison.engine import bootstrap_metrics, mcnemar_exact_p
from kdmetrics.metrics.registry import METRICS
from kdmetrics.metrics.temperature import fit_temperature, split_half
from kdmetrics.stats.bootstrap import resample_indices

R = 300


def run(y, tiers, ref, variants, **kw):
    kw.setdefault("n_resamples", R)
    return kdmetrics.compare(y, ("ref", ref), variants, tier_of_class=tiers, **kw)


def test_compare_is_the_engine_function(models):
    import kdmetrics.comparison.engine as engine

    assert kdmetrics.compare is engine.compare
    y, tiers, ref, v1, _ = models
    a = kdmetrics.compare(y, ("ref", ref), {"v1": v1}, n_resamples=20)
    b = engine.compare(y, ("ref", ref), {"v1": v1}, n_resamples=20)
    pd.testing.assert_frame_equal(a.deltas, b.deltas)


def test_deltas_equal_paired_bootstrap_bit_for_bit(models):
    y, tiers, ref, v1, v2 = models
    res = run(y, tiers, ref, {"v1": v1, "v2": v2}, seed=7)
    names = bootstrap_metrics()
    assert set(res.deltas["metric"]) == {n for n in names if METRICS[n].needs != "reference"}
    for name, z in (("v1", v1), ("v2", v2)):
        table, draws = kdmetrics.paired_bootstrap(
            y, ref, z, tier_of_class=tiers, metrics=res.scalars["metrics"], n_resamples=R,
            seed=7, return_deltas=True,
        )  # fmt: skip
        mine = res.deltas[res.deltas["variant"] == name].reset_index(drop=True)
        for a, b in (("reference_value", "a"), ("variant_value", "b")):
            np.testing.assert_array_equal(mine[a].to_numpy(), table[b].to_numpy())
        for col in ("delta", "median_delta", "ci_low", "ci_high", "p_delta_le_0", "n"):
            np.testing.assert_array_equal(mine[col].to_numpy(), table[col].to_numpy())
        for (metric, group), d in draws.items():
            np.testing.assert_array_equal(res.draws(name, metric, group), d)
        acc = mine[mine["metric"] == "accuracy"]
        t_acc = table[table["metric"] == "accuracy"]
        assert acc["right_to_wrong"].tolist() == t_acc["flips_a_only"].tolist()
        assert acc["wrong_to_right"].tolist() == t_acc["flips_b_only"].tolist()


def test_variants_share_one_draw(models):
    """v2 - v1 from the stored deltas equals a direct paired bootstrap of v1 vs v2."""
    y, tiers, ref, v1, v2 = models
    res = run(y, tiers, ref, {"v1": v1, "v2": v2}, seed=3)
    _, direct = kdmetrics.paired_bootstrap(
        y, v1, v2, tier_of_class=tiers, metrics=("macro_f1", "accuracy", "nll", "ece"),
        n_resamples=R, seed=3, return_deltas=True,
    )  # fmt: skip
    for (metric, group), d in direct.items():
        derived = res.draws("v2", metric, group) - res.draws("v1", metric, group)
        np.testing.assert_allclose(derived, d, rtol=0, atol=1e-12)
    c = res.contrast("v1", "v2", "macro_f1", "tail")
    assert c["estimate"] == pytest.approx(
        res.contrast("ref", "v2", "macro_f1", "tail")["estimate"]
        - res.contrast("ref", "v1", "macro_f1", "tail")["estimate"]
    )
    q = np.quantile(direct[("macro_f1", "tail")], [0.025, 0.975])
    assert c["ci_low"] == pytest.approx(q[0], abs=1e-12)
    assert c["ci_high"] == pytest.approx(q[1], abs=1e-12)
    # The indices of resample i depend only on (seed, i, N).
    np.testing.assert_array_equal(resample_indices(len(y), 3, 5), resample_indices(len(y), 3, 5))
    assert not np.array_equal(resample_indices(len(y), 3, 5), resample_indices(len(y), 4, 5))


def test_linear_contrast_is_the_weighted_sum_of_draws(models):
    y, tiers, ref, v1, v2 = models
    res = run(y, tiers, ref, {"v1": v1, "v2": v2})
    w = {"v2": 1.0, "v1": -1.0, "ref": 1.0}
    with pytest.raises(ValueError, match="sum to 0"):
        res.linear(w, "nll")
    w = {"v2": 1.0, "v1": -2.0, "ref": 1.0}
    got = res.linear(w, "nll", "all")
    draws = res.draws("v2", "nll") - 2 * res.draws("v1", "nll")
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert got["ci_low"] == pytest.approx(lo) and got["ci_high"] == pytest.approx(hi)
    vals = res.deltas.query("metric == 'nll' and group == 'all'").set_index("variant")
    want = (
        vals.loc["v2", "variant_value"]
        - 2 * vals.loc["v1", "variant_value"]
        + vals.loc["v1", "reference_value"]
    )
    assert got["estimate"] == pytest.approx(want)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        res.contrast("nope", "v1", "nll")
    with pytest.raises(ValueError, match="metrics: "):
        res.contrast("v1", "v2", "nope")


def test_churn_and_flips(models):
    y, tiers, ref, v1, _ = models
    res = run(y, tiers, ref, {"v1": v1})
    ch = res.churn.set_index("group")
    assert ch.loc["all", "churn"] == kdmetrics.churn(ref, v1)
    pr, pv = ref.argmax(1), v1.argmax(1)
    tail = tiers[y] == 2
    assert ch.loc["tail", "n_changed"] == int(((pr != pv) & tail).sum())
    assert ch.loc["tail", "right_to_wrong"] == int(((pr == y) & (pv != y) & tail).sum())
    assert ch.loc["tail", "wrong_to_right"] == int(((pr != y) & (pv == y) & tail).sum())
    assert (ch["wrong_to_wrong"] >= 0).all()


def _with_fixed(y, ref, n_fix):
    """A copy of ref that turns n_fix wrong predictions right (nothing else changes)."""
    z = ref.copy()
    wrong = np.flatnonzero(ref.argmax(1) != y)[:n_fix]
    z[wrong, y[wrong]] = z[wrong].max(axis=1) + 1.0
    return z


def test_verdicts_real_directional_noise():
    from conftest import make_models

    y, tiers, ref, _, _ = make_models(n=600)
    few, many = _with_fixed(y, ref, 5), _with_fixed(y, ref, 40)
    res = kdmetrics.compare(
        y, ("ref", ref), {"few": few, "many": many}, n_resamples=2000, metrics=("accuracy",)
    )
    d = res.deltas.set_index("variant")
    # 5 one-way flips: the percentile interval excludes 0, but 5 discordant pairs
    # cannot reach p < 0.05 in the exact McNemar test (2 / 2**5 = 0.0625).
    assert d.loc["few", "ci_low"] > 0
    assert d.loc["few", "n_fragile"] == 5
    assert d.loc["few", "mcnemar_p"] == pytest.approx(0.0625)
    assert d.loc["few", "verdict"] == "directional"
    assert d.loc["few", "caveat"] == "rests on 5 changed prediction(s)"
    assert d.loc["many", "verdict"] == "real"
    assert d.loc["many", "favours"] == "variant"
    # min_discordant=0 leaves only the McNemar part of the rule
    res0 = kdmetrics.compare(
        y, ("ref", ref), {"many": many}, n_resamples=500, metrics=("accuracy",), min_discordant=0
    )
    assert res0.deltas["verdict"].iloc[0] == "real"


def test_identical_variant_warns_and_is_inside_the_noise(models):
    y, tiers, ref, _, _ = models
    with pytest.warns(UserWarning, match="identical logits"):
        res = run(y, tiers, ref, {"same": ref.copy()})
    assert set(res.deltas["verdict"]) <= {"inside the noise", "undefined"}
    assert (res.deltas["ci_low"].fillna(0) == 0).all()
    assert "no effect" not in " ".join(res.deltas["verdict"])


def test_calibration_raw_and_scaled(models):
    y, tiers, ref, v1, v2 = models
    res = run(y, tiers, ref, {"v1": v1, "v2": v2}, seed=2, temperature_seed=5)
    fit_idx, eval_idx = split_half(len(y), 5)
    cal = res.calibration.query("group == 'all'").set_index("model")
    for name, z in (("ref", ref), ("v2", v2)):
        t = float(fit_temperature(y[fit_idx], z[fit_idx]))
        assert cal.loc[name, "temperature"] == pytest.approx(t, rel=1e-12)
        assert cal.loc[name, "ece_raw"] == pytest.approx(kdmetrics.ece(y[eval_idx], z[eval_idx]))
        assert cal.loc[name, "nll_scaled"] == pytest.approx(
            kdmetrics.nll(y[eval_idx], z[eval_idx], temperature=t), rel=1e-9
        )
    t_ref, t_v2 = cal.loc["ref", "temperature"], cal.loc["v2", "temperature"]
    table = kdmetrics.paired_bootstrap(
        y[eval_idx], ref[eval_idx] / np.float64(t_ref), v2[eval_idx] / np.float64(t_v2),
        tier_of_class=tiers, metrics=("ece", "nll", "brier"), n_resamples=R, seed=2,
    )  # fmt: skip
    mine = res.calibration_deltas.query("variant == 'v2' and scaling == 'scaled'")
    np.testing.assert_allclose(mine["delta"], table["delta"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mine["ci_low"], table["ci_low"], rtol=1e-9, atol=1e-12)
    # v2 is ref at a higher temperature: scaling removes most of the NLL gap
    raw = res.calibration_deltas.query(
        "variant == 'v2' and scaling == 'raw' and metric == 'nll' and group == 'all'"
    )["delta"].iloc[0]
    scaled = mine.query("metric == 'nll' and group == 'all'")["delta"].iloc[0]
    assert abs(scaled) < abs(raw)


def test_metric_selection_and_bad_input(models):
    y, tiers, ref, v1, _ = models
    with pytest.raises(ValueError, match="unknown metric 'f1'.*macro_f1"):
        run(y, tiers, ref, {"v1": v1}, metrics=("f1",))
    with pytest.raises(ValueError, match="needs teacher="):
        run(y, tiers, ref, {"v1": v1}, metrics=("kl",))
    with pytest.raises(ValueError, match="churn is always in .churn"):
        run(y, tiers, ref, {"v1": v1}, metrics=("churn",))
    with pytest.raises(ValueError, match=r"reference must be \(name, logits\)"):
        kdmetrics.compare(y, ref, {"v1": v1})
    with pytest.raises(ValueError, match="exactly one model"):
        kdmetrics.compare(y, {"a": ref, "b": v1}, {"v1": v1})
    with pytest.raises(ValueError, match="non-empty mapping"):
        kdmetrics.compare(y, ("ref", ref), {})
    with pytest.raises(ValueError, match="has the reference's name"):
        kdmetrics.compare(y, ("ref", ref), {"ref": v1})
    with pytest.raises(ValueError, match="'v1' has 399 rows"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1[:-1]})
    with pytest.raises(ValueError, match="'v1' has 11 classes"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1[:, :-1]})
    with pytest.raises(ValueError, match="compare: min_discordant"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1}, min_discordant=-1)
    with pytest.raises(ValueError, match="compare: n_resamples"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1}, n_resamples=0)
    with pytest.raises(ValueError, match="compare: seed"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1}, seed=-1)
    with pytest.raises(ValueError, match="compare: unknown method 'bc'"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1}, method="bc")
    with pytest.raises(ValueError, match="unknown quality metric 'speed'"):
        run(y, tiers, ref, {"v1": v1}, costs={"ref": {"params": 2}, "v1": {"params": 1}},
            pareto_metrics=("speed",))  # fmt: skip


def test_teacher_adds_divergence_metrics(models):
    y, tiers, ref, v1, v2 = models
    res = run(y, tiers, ref, {"v1": v1}, teacher=v2)
    assert {"kl", "js"} <= set(res.deltas["metric"])
    assert "teacher_agreement" in res.metrics.columns


def test_predictions_inputs_labels_and_metadata_costs(models, tmp_path):
    y, tiers, ref, v1, _ = models
    ids = np.arange(len(y))
    kdmetrics.save_predictions(tmp_path / "r.npz", ref, y, ids=ids, latency_ms=2.0, params=10)
    kdmetrics.save_predictions(tmp_path / "v.npz", v1, y, ids=ids, latency_ms=1.0, params=10)
    r, v = (kdmetrics.load_predictions(tmp_path / f) for f in ("r.npz", "v.npz"))
    res = kdmetrics.compare(None, ("r", r), {"v": v}, n_resamples=100)
    assert res.costs is not None
    assert res.costs.loc["v", "latency_ms"] == 1.0
    assert set(res.pareto["cost"]) == {"latency_ms", "params"}
    bad = y.copy()
    bad[17] = (bad[17] + 1) % 12
    with pytest.raises(ValueError, match="position 17"):
        kdmetrics.compare(bad, ("r", r), {"v": v}, n_resamples=10)
    kdmetrics.save_predictions(tmp_path / "w.npz", v1, y, ids=ids[::-1].copy())
    w = kdmetrics.load_predictions(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="ids differ"):
        kdmetrics.compare(y, ("r", r), {"w": w}, n_resamples=10)


@given(st.integers(0, 40), st.integers(0, 40))
def test_mcnemar_exact_matches_scipy(b, c):
    from scipy.stats import binomtest

    want = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact_p(b, c) == pytest.approx(want, rel=1e-9)


def test_mcnemar_hand_values():
    assert mcnemar_exact_p(5, 0) == 2 / 32
    assert mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(0, 0) == 1.0
    assert 0 < mcnemar_exact_p(3000, 2000) < 1e-40  # no underflow to 0 or overflow


def test_tables_are_tidy_frames(models):
    y, tiers, ref, v1, _ = models
    res = run(y, tiers, ref, {"v1": v1})
    for name, df in res.tables.items():
        assert isinstance(df, pd.DataFrame), name
        assert len(df), name
    assert list(res.metrics["model"].unique()) == ["ref", "v1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repr(res)


def test_bonferroni_adjusted_intervals(models):
    y, tiers, ref, v1, v2 = models
    res = run(y, tiers, ref, {"v1": v1, "v2": v2}, n_resamples=400)
    row = res.deltas.query("variant == 'v2' and metric == 'nll' and group == 'all'").iloc[0]
    d = res.draws("v2", "nll")
    lo, hi = np.quantile(d, [0.025 / 2, 1 - 0.025 / 2])
    assert row["ci_low_adjusted"] == pytest.approx(lo) and row["ci_high_adjusted"] == pytest.approx(
        hi
    )
    assert row["ci_low_adjusted"] <= row["ci_low"] and row["ci_high_adjusted"] >= row["ci_high"]
    assert row["excludes_0_adjusted"] == (lo > 0 or hi < 0)
    one = run(y, tiers, ref, {"v2": v2}, n_resamples=400)
    np.testing.assert_array_equal(one.deltas["ci_low_adjusted"], one.deltas["ci_low"])
    cal = res.calibration_deltas
    assert {"ci_low_adjusted", "excludes_0_adjusted"} <= set(cal.columns)


def test_streamed_deltas_give_the_same_numbers(models):
    """keep_deltas=False regenerates the resamples for each pass of the
    bounded-memory quantiles: every table, contrast and draw is the same."""
    y, tiers, ref, v1, v2 = models
    kw = dict(seed=5, costs={"ref": {"latency_ms": 2.0}, "v1": {"latency_ms": 1.0},
                             "v2": {"latency_ms": 0.5}})  # fmt: skip
    kept = run(y, tiers, ref, {"v1": v1, "v2": v2}, keep_deltas=True, **kw)
    streamed = run(y, tiers, ref, {"v1": v1, "v2": v2}, keep_deltas=False, **kw)
    assert kept._resampled["full"].summary.deltas is not None
    assert streamed._resampled["full"].summary.deltas is None
    assert streamed._resampled["full"].summary.passes >= 2
    for name in ("deltas", "calibration_deltas", "pareto"):
        pd.testing.assert_frame_equal(getattr(kept, name), getattr(streamed, name))
    np.testing.assert_array_equal(
        kept.draws("v2", "nll", "tail", "scaled"), streamed.draws("v2", "nll", "tail", "scaled")
    )
    assert kept.contrast("v1", "v2", "ece", "mid") == streamed.contrast("v1", "v2", "ece", "mid")


def test_bca_rows_agree_kept_and_streamed(models):
    y, tiers, ref, v1, _ = models
    a, b = (
        run(y, tiers, ref, {"v1": v1}, method="bca", keep_deltas=keep, temperature_scaling=False)
        for keep in (True, False)
    )
    pd.testing.assert_frame_equal(a.deltas, b.deltas)
    assert (a.deltas["method"] == "bca").all()


def test_agreement_resting_on_few_changes_is_directional():
    """Top-1 agreement with the teacher moves only when a prediction changes:
    an interval that excludes 0 on fewer than min_discordant changed
    agreements is directional, with the count in the caveat."""
    rng = np.random.default_rng(4)
    n, k = 3000, 5
    y = rng.integers(0, k, n)
    teacher = rng.normal(size=(n, k))
    teacher[np.arange(n), y] += 3
    ref = teacher + 0.01 * rng.normal(size=(n, k))
    var = ref.copy()
    t_pred = teacher.argmax(1)
    # The variant agrees with the teacher on 6 more examples, and nothing else changes.
    moved = np.flatnonzero(ref.argmax(1) != t_pred)[:6]
    var[moved, t_pred[moved]] += 50
    res = kdmetrics.compare(
        y, ("ref", ref), {"var": var}, teacher=teacher, n_resamples=400,
        metrics=["teacher_agreement"], temperature_scaling=False, min_discordant=10,
    )  # fmt: skip
    row = res.deltas[res.deltas["group"] == "all"].iloc[0]
    assert row["n_fragile"] == 6
    assert row["ci_low"] > 0  # every change goes one way
    assert row["verdict"] == "directional"
    assert "6 changed agreement(s) with the teacher" in row["caveat"]
    loose = kdmetrics.compare(
        y, ("ref", ref), {"var": var}, teacher=teacher, n_resamples=400,
        metrics=["teacher_agreement"], temperature_scaling=False, min_discordant=5,
    )  # fmt: skip
    assert loose.deltas[loose.deltas["group"] == "all"].iloc[0]["verdict"] == "real"
