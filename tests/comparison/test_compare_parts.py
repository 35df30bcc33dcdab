import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kdmetrics
from kdmetrics.comparison.constraints import Constraint, constraint_tables, parse_constraint
from kdmetrics.comparison.costs import COST_COLUMNS, costs_from_metadata, load_costs
from kdmetrics.comparison.pareto import pareto_table

# ---------------------------------------------------------------- Pareto


def _intervals(table):
    """interval(i, j) of quality(j) - quality(i) from a dict of (i, j) -> (lo, hi)."""

    def f(i, j):
        if (i, j) in table:
            return table[(i, j)]
        lo, hi = table[(j, i)]
        return -hi, -lo

    return f


def test_pareto_hand_case():
    # a: cheap, bad; b: dearer, better and separable from a; c: dearest and best
    # on the point estimate but not separable from b; d: costs like c, worse than b.
    quality = {"a": 0.50, "b": 0.60, "c": 0.61, "d": 0.55}
    cost = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 3.0}
    iv = _intervals(
        {
            ("a", "b"): (0.05, 0.15),
            ("a", "c"): (0.06, 0.16),
            ("a", "d"): (-0.01, 0.11),
            ("b", "c"): (-0.02, 0.04),
            ("b", "d"): (-0.08, -0.02),
            ("c", "d"): (-0.09, -0.03),
        }
    )
    t = pareto_table(list(quality), quality, cost, True, iv).set_index("model")
    assert t.loc["a", "status"] == "front"
    assert t.loc["b", "status"] == "front"
    assert t.loc["c", "status"] == "front"
    assert t.loc["d", "status"] == "dominated"
    assert t.loc["d", "dominated_by"] == "b, c"
    # lower-is-better quality: the reverse roles
    t2 = pareto_table(list(quality), quality, cost, False, iv).set_index("model")
    assert t2.loc["a", "status"] == "front"
    assert t2.loc["b", "status"] == "dominated" and t2.loc["b", "dominated_by"] == "a"
    assert t2.loc["d", "status"] == "not separable" and t2.loc["d", "not_separable_from"] == "a"


def test_pareto_equal_points_do_not_dominate_and_nan_left_out():
    quality = {"a": 0.5, "b": 0.5, "c": np.nan}
    cost = {"a": 1.0, "b": 1.0, "c": 0.5}
    t = pareto_table(["a", "b", "c"], quality, cost, True, lambda i, j: (-0.1, 0.1))
    assert t["model"].tolist() == ["a", "b"]
    assert t["status"].tolist() == ["front", "front"]


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans()), min_size=1, max_size=7)
)
def test_pareto_status_matches_brute_force(points):
    names = [f"m{i}" for i in range(len(points))]
    quality = {n: float(q) for n, (q, _, _) in zip(names, points, strict=True)}
    cost = {n: float(c) for n, (_, c, _) in zip(names, points, strict=True)}
    sep = {n: s for n, (_, _, s) in zip(names, points, strict=True)}

    def iv(i, j):  # separable when both are flagged; the interval is around the gap
        d = quality[j] - quality[i]
        w = 0.5 if sep[i] and sep[j] else abs(d) + 1
        return d - w, d + w

    t = pareto_table(names, quality, cost, True, iv).set_index("model")
    for i in names:
        dom = [
            j
            for j in names
            if j != i
            and cost[j] <= cost[i]
            and quality[j] >= quality[i]
            and (cost[j] < cost[i] or quality[j] > quality[i])
        ]
        supported = [j for j in names if j != i and cost[j] <= cost[i] and iv(i, j)[0] > 0]
        want = "dominated" if supported else ("not separable" if dom else "front")
        assert t.loc[i, "status"] == want
        assert t.loc[i, "on_front"] == (not dom)


# ---------------------------------------------------------------- constraints


def test_parse_constraint():
    names = ["macro_f1", "ece_scaled", "latency_ms", "macro_f1@tail"]
    assert parse_constraint("macro_f1>=0.20", names) == Constraint("macro_f1", ">=", 0.2)
    assert parse_constraint(" latency_ms <= 1e1 ", names) == Constraint("latency_ms", "<=", 10.0)
    assert parse_constraint("macro_f1@tail>.1", names).threshold == 0.1
    with pytest.raises(ValueError, match="unknown metric or cost 'acc'.*valid names: macro_f1"):
        parse_constraint("acc>=0.5", names)
    with pytest.raises(ValueError, match="cannot read constraint"):
        parse_constraint("macro_f1 => 0.2", names)
    with pytest.raises(ValueError, match="cannot read constraint"):
        parse_constraint("macro_f1>=", names)


def test_constraint_tables_hand_case():
    values = pd.DataFrame(
        {"macro_f1": [0.25, 0.19, 0.15, 0.30], "latency_ms": [12.0, 5.0, 4.0, 9.0]},
        index=["fp32", "int8", "int4", "big"],
    )
    cons = [Constraint("macro_f1", ">=", 0.2), Constraint("latency_ms", "<=", 10.0)]
    table, feas, relax = constraint_tables(values, cons)
    f = feas.set_index("model")
    assert f.loc["big", "meets_all"] and f.loc["big", "n_failed"] == 0
    # big: slack 0.1/0.2 = 0.5 on F1, 1/10 = 0.1 on latency -> latency binds first
    assert f.loc["big", "binding"] == "latency_ms<=10"
    assert f.loc["fp32", "failed"] == "latency_ms<=10"
    assert f.loc["int8", "failed"] == "macro_f1>=0.2"
    assert f.loc["int4", "failed"] == "macro_f1>=0.2"
    assert relax["model"].tolist() == ["int8", "int4", "fp32"]  # by constraint, then amount
    assert relax["needed_threshold"].tolist() == [0.19, 0.15, 12.0]
    row = table.query("model == 'int8' and constraint == 'macro_f1>=0.2'").iloc[0]
    assert row["slack"] == pytest.approx(-0.01) and not row["satisfied"]
    # a NaN value never satisfies
    values.loc["big", "latency_ms"] = np.nan
    _, feas2, _ = constraint_tables(values, cons)
    assert not feas2.set_index("model").loc["big", "meets_all"]


def test_compare_constraints_end_to_end(models):
    y, tiers, ref, v1, v2 = models
    costs = {"ref": {"latency_ms": 4.0}, "v1": {"latency_ms": 1.0}, "v2": {"latency_ms": 2.0}}
    res = kdmetrics.compare(
        y, ("ref", ref), {"v1": v1, "v2": v2}, tier_of_class=tiers, costs=costs,
        constraints=["accuracy>=0.3", "ece_scaled<=0.2", "latency_ms<=3", "nll@tail<=5"],
        n_resamples=50,
    )  # fmt: skip
    acc = res.metrics.query("group == 'all'").set_index("model")["accuracy"]
    t = res.constraints.set_index(["model", "constraint"])
    for m in ("ref", "v1", "v2"):
        assert t.loc[(m, "accuracy>=0.3"), "value"] == acc[m]
        assert t.loc[(m, "latency_ms<=3"), "satisfied"] == (costs[m]["latency_ms"] <= 3)
    cal = res.calibration.query("group == 'all'").set_index("model")
    assert t.loc[("v2", "ece_scaled<=0.2"), "value"] == cal.loc["v2", "ece_scaled"]
    tail = res.metrics.query("group == 'tail'").set_index("model")["nll"]
    assert t.loc[("v1", "nll@tail<=5"), "value"] == tail["v1"]
    with pytest.raises(ValueError, match="unknown metric or cost 'speed'.*latency_ms"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1}, costs=costs, constraints=["speed<=1"],
                          n_resamples=10)  # fmt: skip
    with pytest.raises(ValueError, match="no costs were given"):
        kdmetrics.compare(y, ("ref", ref), {"v1": v1}, constraints=["latency_ms<=1"],
                          n_resamples=10)  # fmt: skip


# ---------------------------------------------------------------- costs


def test_load_costs_csv_json_mapping(tmp_path):
    rows = [
        {"variant": "a", "latency_ms": 1.5, "size_mb": 2, "precision": "fp32"},
        {"variant": "b", "latency_ms": 0.5, "size_mb": 1, "precision": "int8"},
        {"variant": "extra", "latency_ms": 9, "size_mb": 9, "precision": "x"},
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "c.json").write_text(json.dumps(rows))
    (tmp_path / "d.json").write_text(json.dumps({r["variant"]: r for r in rows}))
    for src in (tmp_path / "c.csv", str(tmp_path / "c.json"), tmp_path / "d.json"):
        t = load_costs(src, ["b", "a"])
        assert t.index.tolist() == ["b", "a"]
        assert t.loc["a", "latency_ms"] == 1.5 and t.loc["b", "precision"] == "int8"
        assert list(t.columns) == ["latency_ms", "size_mb", "precision"]


def test_load_costs_errors(tmp_path):
    ok = {"a": {"latency_ms": 1.0}, "b": {"latency_ms": 2.0}}
    with pytest.raises(ValueError, match="no costs for 'c'"):
        load_costs(ok, ["a", "c"])
    with pytest.raises(ValueError, match="unknown column.*'latncy_ms'.*valid columns"):
        load_costs({"a": {"latncy_ms": 1.0}}, ["a"])
    with pytest.raises(ValueError, match="finite and >= 0"):
        load_costs({"a": {"latency_ms": -1.0}}, ["a"])
    with pytest.raises(ValueError, match="must be numeric"):
        load_costs({"a": {"latency_ms": "fast"}}, ["a"])
    with pytest.raises(ValueError, match="no such file"):
        load_costs(tmp_path / "none.csv", ["a"])
    (tmp_path / "x.csv").write_text("name,latency_ms\na,1\n")
    with pytest.raises(ValueError, match="'variant'"):
        load_costs(tmp_path / "x.csv", ["a"])


def test_costs_from_metadata():
    assert costs_from_metadata({"a": {"model": "a"}, "b": {}}) is None
    t = costs_from_metadata(
        {"a": {"latency_ms": np.float64(2.0), "precision": np.str_("fp32")}, "b": {"latency_ms": 1}}
    )
    assert t is not None and t.loc["a", "latency_ms"] == 2.0
    with pytest.raises(ValueError, match="metadata of 'b' has no cost"):
        costs_from_metadata({"a": {"latency_ms": 2.0}, "b": {"model": "b"}})
    assert set(COST_COLUMNS) == {"latency_ms", "size_mb", "peak_mem_mb", "params"}


def test_pareto_skips_unknown_costs(models):
    y, tiers, ref, v1, v2 = models
    costs = {
        "ref": {"latency_ms": 4.0, "peak_mem_mb": np.nan},
        "v1": {"latency_ms": 1.0, "peak_mem_mb": np.nan},
        "v2": {"latency_ms": np.nan, "peak_mem_mb": np.nan},
    }
    res = kdmetrics.compare(y, ("ref", ref), {"v1": v1, "v2": v2}, costs=costs, n_resamples=50)
    assert set(res.pareto["cost"]) == {"latency_ms"}
    assert "v2" not in set(res.pareto["model"])
    assert any("no peak_mem_mb for ref, v1, v2" in n for n in res.notes)
    assert any("no latency_ms for v2" in n for n in res.notes)
