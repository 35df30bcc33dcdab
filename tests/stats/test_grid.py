"""Grid of configurations against a reference: own intervals, adjustment, verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdmetrics.stats import policy
from kdmetrics.stats.bootstrap import paired_bootstrap
from kdmetrics.stats.grid import compare_grid, verdict

N, K = 4000, 10


def _models():
    """Reference (vanilla), an independent distilled model, and grid cells
    made from the reference by correcting some of its mistakes."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, K, N)
    onehot = np.eye(K)[y]
    vanilla = 1.6 * onehot + rng.normal(0, 1, (N, K))
    distilled = 1.6 * onehot + rng.normal(0, 1, (N, K))
    wrong = np.flatnonzero(vanilla.argmax(1) != y)

    def fixed(count):
        z = vanilla.copy()
        rows = wrong[:count]
        z[rows, y[rows]] = z[rows].max(axis=1) + 1.0
        return z

    return y, vanilla, distilled, {"fix60": fixed(60), "fix10": fixed(10), "same": vanilla.copy()}


def test_reproducer_where_the_noise_floor_rule_was_wrong():
    y, vanilla, distilled, cells = _models()
    # The old rule: a cell is "within noise" when |delta| is smaller than the
    # width of the reference comparison's (distilled - vanilla) interval.
    ref_cmp = paired_bootstrap(y, vanilla, distilled, metrics=("accuracy",), n_resamples=2000)
    width = float(ref_cmp.ci_high.iloc[0] - ref_cmp.ci_low.iloc[0])
    g = compare_grid(
        y, vanilla, cells, metrics=("accuracy",), n_resamples=2000, noise_floor={"accuracy": width}
    ).set_index("config")
    fix = g.loc["fix60"]
    assert fix.delta == pytest.approx(60 / N)
    assert fix.delta < width and bool(fix.noise_floor_heuristic)  # the old flag says noise
    # ... but the cell's own paired interval, and the adjusted one, exclude 0.
    assert fix.ci_low > 0 and fix.adj_low > 0
    assert fix.verdict == "real" and fix.flips == 60
    # Ten corrected mistakes: the interval excludes 0, but on 10 flips.
    assert g.loc["fix10", "adj_low"] > 0 and g.loc["fix10", "verdict"] == "directional"
    # An identical copy: [0, 0] contains 0.
    assert g.loc["same", "verdict"] == "inside the noise"
    assert (g.loc["same", "ci_low"], g.loc["same", "ci_high"]) == (0.0, 0.0)
    # Verdicts agree with the intervals shown.
    for _, row in g.iterrows():
        excludes = not (row.adj_low <= 0 <= row.adj_high)
        assert excludes == (row.verdict != "inside the noise")


def test_own_interval_uses_the_shared_draw():
    y, vanilla, _, cells = _models()
    g = compare_grid(
        y, vanilla, cells, metrics=("accuracy", "nll"), n_resamples=500, seed=7, adjust="none"
    )
    for name, z in cells.items():
        table, deltas = paired_bootstrap(
            y, vanilla, z, metrics=("accuracy", "nll"), n_resamples=500, seed=7, return_deltas=True
        )
        for _, t in table.iterrows():
            row = g[(g.config == name) & (g.metric == t.metric) & (g.group == t.group)].iloc[0]
            d = deltas[(t.metric, t.group)][:, None]
            lo, hi = policy.any_interval(
                d, np.array([t.delta]), 0.95, policy.default_method(t.metric)
            )
            assert (row.ci_low, row.ci_high) == (lo[0], hi[0])
            assert (row.adj_low, row.adj_high) == (lo[0], hi[0])  # adjust="none"


def test_adjustments_widen_and_hold_jointly():
    y, vanilla, distilled, cells = _models()
    cells = {**cells, "distilled": distilled}
    own = compare_grid(y, vanilla, cells, metrics=("accuracy",), n_resamples=1000, adjust="none")
    for adjust in ("maxt", "bonferroni"):
        adj = compare_grid(
            y, vanilla, cells, metrics=("accuracy",), n_resamples=1000, adjust=adjust
        )
        moving = adj.config != "same"
        width_adj = (adj.adj_high - adj.adj_low)[moving]
        width_own = (own.ci_high - own.ci_low)[moving]
        assert (width_adj > width_own).all()
    # Bonferroni = the own interval at level 1 - 0.05 / m.
    bon = compare_grid(
        y, vanilla, cells, metrics=("accuracy",), n_resamples=1000, adjust="bonferroni"
    )
    wide = compare_grid(
        y, vanilla, cells, metrics=("accuracy",), n_resamples=1000, adjust="none", ci=1 - 0.05 / 4
    )
    np.testing.assert_allclose(bon.adj_low, wide.ci_low)
    np.testing.assert_allclose(bon.adj_high, wide.ci_high)


def test_groups_flags_and_columns():
    y, vanilla, _, cells = _models()
    tiers = np.array([0] * 3 + [1] * 3 + [2] * 4)
    g = compare_grid(y, vanilla, cells, tier_of_class=tiers, n_resamples=200)
    assert set(g.group) == {"all", "head", "mid", "tail"}
    assert set(g.verdict) <= {"real", "directional", "inside the noise"}
    assert "noise_floor_heuristic" not in g.columns
    assert {"trusted", "flag_reason"} <= set(g.columns)
    untrusted = g[~g.trusted.astype(bool)]
    assert (untrusted.flag_reason.str.len() > 0).all()
    fl = g[(g.config == "fix60") & (g.metric == "accuracy")].set_index("group").flips
    assert fl["all"] == 60 == fl["head"] + fl["mid"] + fl["tail"]


def test_verdict_function():
    assert verdict(0.01, 0.02, 100, 20) == "real"
    assert verdict(-0.02, -0.01, 3, 20) == "directional"
    assert verdict(-0.01, 0.02, 100, 20) == "inside the noise"
    assert verdict(np.nan, np.nan, None, 20) == "inside the noise"
    assert verdict(0.01, 0.02, None, 20) == "real"  # not a prediction metric


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"configs": {}}, "configs must be a non-empty mapping"),
        ({"adjust": "holm"}, "adjust must be one of"),
        ({"min_flips": -1}, "min_flips"),
        ({"ci": 2}, "ci must be in"),
    ],
)
def test_bad_input(kwargs, match):
    y, vanilla, _, cells = _models()
    args = {"configs": cells, **kwargs}
    with pytest.raises(ValueError, match=f"compare_grid: .*{match}"):
        compare_grid(y, vanilla, n_resamples=10, **args)


def test_returns_dataframe():
    y, vanilla, _, cells = _models()
    assert isinstance(compare_grid(y, vanilla, cells, n_resamples=20), pd.DataFrame)
