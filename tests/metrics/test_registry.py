"""Registry-driven common tests: every declared metric, through every door.

Each metric of ``kdmetrics.metrics.registry.METRICS`` must agree between its
public function, its ``summary`` column (overall and per tier) and an
obviously-correct NumPy reference, and reject bad input naming its function.
Adding a metric to the registry adds it to these tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kdmetrics as km
from kdmetrics.metrics.registry import (
    DEFAULT_BOOTSTRAP_METRICS,
    HIGHER_IS_BETTER,
    METRICS,
    SUMMARY_METRICS,
)

import reference as ref
from strategies import problems

# The public function of each metric (its name, unless listed here).
PUBLIC = {"kl": "kl_divergence", "js": "js_divergence"}


def public(name: str):
    return getattr(km, PUBLIC.get(name, name))


def call(name: str, labels, logits, teacher):
    """The metric's public function on one model (and the teacher where it needs one)."""
    spec = METRICS[name]
    fn = public(name)
    if name == "churn":
        return fn(teacher, logits)
    if spec.needs == "reference":
        return fn(teacher, logits) if name in ("kl", "js") else fn(logits, teacher)
    if name == "top_k_accuracy":
        return fn(labels, logits, k=5)
    return fn(labels, logits)


def reference_value(name: str, labels, logits, teacher) -> float:
    k = logits.shape[1]
    pred = ref.predictions(logits)
    return {
        "accuracy": lambda: ref.accuracy(labels, logits),
        "macro_f1": lambda: ref.macro_f1(labels, pred, k),
        "top_k_accuracy": lambda: ref.top_k_accuracy(labels, logits, 5),
        "ece": lambda: ref.ece(labels, logits),
        "nll": lambda: ref.nll(labels, logits),
        "brier": lambda: ref.brier(labels, logits),
        "kl": lambda: float(ref.kl(teacher, logits).mean()),
        "js": lambda: float(ref.js(teacher, logits).mean()),
        "teacher_agreement": lambda: ref.agreement(logits, teacher),
        "churn": lambda: ref.churn(teacher, logits),
    }[name]()


def test_every_metric_has_a_public_function_and_a_reference():
    for name in METRICS:
        assert callable(public(name)), name
        z = np.eye(3)
        assert np.isfinite(reference_value(name, np.arange(3), z, z)), name


def test_derived_lists_follow_the_registry():
    assert list(SUMMARY_METRICS) == [n for n, s in METRICS.items() if s.in_summary]
    assert set(DEFAULT_BOOTSTRAP_METRICS) <= set(METRICS)
    assert HIGHER_IS_BETTER == {n for n, s in METRICS.items() if s.higher_is_better}
    for s in METRICS.values():
        assert s.statistic in ("example_mean", "macro_f1", "binned", "pair_mean")
        assert s.needs in ("predictions", "logits", "reference")
        assert s.per_example is not None or s.statistic in ("macro_f1", "binned", "pair_mean")


@given(problems(max_n=30, max_k=8, dtypes=[np.float32, np.float64]), st.data())
def test_public_function_matches_reference(problem, data):
    labels, logits = problem
    teacher = np.flip(logits, axis=0).copy()
    for name in METRICS:
        got = call(name, labels, logits, teacher)
        want = reference_value(name, labels, logits, teacher)
        if np.isnan(want):
            assert np.isnan(got), name
        else:
            assert got == pytest.approx(want, abs=1e-6), name


@given(problems(max_n=40, max_k=8, dtypes=[np.float32, np.float64]))
def test_summary_columns_equal_public_functions_per_tier(problem):
    labels, logits = problem
    k = logits.shape[1]
    teacher = np.roll(logits, 1, axis=1)
    tier_of_class = np.array(["head", "mid", "tail"] * k)[:k]
    table = km.summary(labels, logits, tier_of_class=tier_of_class, reference_logits=teacher)
    assert [c for c in table.columns if c != "n"] == [
        n for n in SUMMARY_METRICS if n in table.columns
    ]
    for group in table.index:
        keep = np.ones(labels.size, bool) if group == "all" else tier_of_class[labels] == group
        for name in table.columns:
            if name == "n":
                assert table.loc[group, "n"] == keep.sum()
                continue
            got = table.loc[group, name]
            if name == "macro_f1":
                classes = np.arange(k) if group == "all" else np.flatnonzero(tier_of_class == group)
                want = ref.macro_f1(labels, ref.predictions(logits), k, classes)
            elif not keep.any():
                assert np.isnan(got), (group, name)
                continue
            else:
                want = reference_value(name, labels[keep], logits[keep], teacher[keep])
            if np.isnan(want):
                assert np.isnan(got), (group, name)
            else:
                assert got == pytest.approx(want, abs=1e-6), (group, name)


@pytest.mark.parametrize("name", list(METRICS))
def test_bad_input_names_the_function(name):
    z = np.zeros((4, 3), dtype=np.float32)
    y = np.array([0, 1, 2, 0])
    fn_name = PUBLIC.get(name, name)
    with pytest.raises(ValueError, match=rf"^{fn_name}: "):
        if METRICS[name].needs == "predictions" and name != "churn":
            public(name)(y[:3], z)  # length mismatch
        else:
            z_bad = z.copy()
            z_bad[1, 2] = np.nan
            call(name, y, z_bad, z)
