"""Fuzz layer: arbitrary junk for every public argument.

The only acceptable outcomes are a result or a ``ValueError``/``TypeError``
whose message starts with the public function's name. Anything else (another
exception type, a Rust panic, a hang) fails. Calls whose junk could make a
defective kernel allocate without bound run in a subprocess
(``test_huge_bounds_never_abort``), so an abort would fail one test rather
than kill the run. ``HYPOTHESIS_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdmetrics as km
from kdmetrics.metrics.calibration import ece_debiased

N, K = 40, 5
_RNG = np.random.default_rng(0)
Y = np.arange(N) % K
Z = _RNG.normal(size=(N, K))
Z2 = _RNG.normal(size=(N, K))
P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)

# name -> (callable, positional args, keyword args): each valid as given.
CALLS = {
    "accuracy": (km.accuracy, (Y, Z), {}),
    "balanced_accuracy": (km.balanced_accuracy, (Y, Z), {}),
    "confusion_counts": (km.confusion_counts, (Y, Z), {}),
    "f1_per_class": (km.f1_per_class, (Y, Z), {"zero_division": "exclude"}),
    "macro_f1": (km.macro_f1, (Y, Z), {"classes": [0, 1]}),
    "top_k_accuracy": (km.top_k_accuracy, (Y, Z), {"k": 2}),
    "teacher_agreement": (km.teacher_agreement, (Z, Z2), {}),
    "churn": (km.churn, (Z, Z2), {}),
    "ece": (km.ece, (Y, Z), {"n_bins": 10, "temperature": 1.5, "strategy": "uniform"}),
    "reliability_table": (km.reliability_table, (Y, Z), {"n_bins": 5}),
    "nll": (km.nll, (Y, P), {"probs": True, "temperature": 1.0}),
    "brier": (km.brier, (Y, Z), {"temperature": 2.0, "per_example": True}),
    "ece_right": (km.ece, (Y, Z), {"right": False, "probs": False}),
    "kl_divergence": (
        km.kl_divergence,
        (Z, Z2),
        {"temperature": 1.0, "per_example": False, "p_probs": None, "q_probs": False},
    ),
    "js_divergence": (km.js_divergence, (Z, Z2), {"base": 2}),
    "js_distance": (km.js_distance, (Z, Z2), {}),
    "fit_temperature": (km.fit_temperature, (Y, Z), {"max_iter": 50, "bounds": (0.05, 20.0)}),
    "threshold_table": (km.threshold_table, (Y, Z), {"thresholds": (0.5, 0.9)}),
    "sla_threshold": (km.sla_threshold, (Y, Z), {"target": 0.9}),
    "tiers_from_counts": (km.tiers_from_counts, (np.arange(K, 0, -1),), {"sizes": (1, 2)}),
    "summary": (km.summary, (Y, Z), {"reference_logits": Z2, "n_bins": 10}),
    "paired_bootstrap": (
        km.paired_bootstrap,
        (Y, Z, Z2),
        {"n_resamples": 20, "seed": 1, "ci": 0.9, "method": "percentile"},
    ),
    "aurc": (km.aurc, (Y, Z), {"temperature": 1.0, "probs": False}),
    "ece_debiased": (ece_debiased, (Y, Z), {"n_bins": 10}),
    "summary_tiers": (
        km.summary,
        (Y, Z),
        {"tier_of_class": [0, 1, 2, 2, 2], "top_k": 2, "probs": False, "reference_probs": None},
    ),
    "ids_sha256": (km.ids_sha256, (np.arange(N),), {}),
    # The one entry that raises as given (no such file): junk in any argument
    # must still be refused by name.
    "load_predictions": (
        km.load_predictions,
        ("/nonexistent/preds.npz",),
        {"logits_key": None, "fmt": None, "probs": None},
    ),
    "compare": (
        km.compare,
        (Y, ("fp32", Z), {"int8": Z2}),
        {"n_resamples": 20, "seed": 0, "ci": 0.9, "n_bins": 10, "temperature_scaling": False},
    ),
    "compare_options": (
        km.compare,
        (Y, ("fp32", Z), {"int8": Z2}),
        {
            "n_resamples": 20,
            "tier_of_class": [0, 1, 2, 2, 2],
            "metrics": ["accuracy", "nll"],
            "method": "percentile",
            "min_discordant": 10,
            "constraints": ["accuracy>=0.1"],
            "temperature_scaling": False,
            "pareto_metrics": None,
            "costs": None,
            "teacher": None,
            "temperature_seed": None,
        },
    ),
    "compare_seeds": (
        km.compare_seeds,
        ([0.5, 0.6, 0.55], [0.6, 0.7, 0.65]),
        {"n_resamples": 50, "seed": 0},
    ),
}


def _arrays() -> st.SearchStrategy:
    dtypes = st.sampled_from(
        ["<f2", "<f4", ">f4", "<f8", ">f8", "<i8", "<u1", "|b1", "<c8", "O", "<U3"]
    )
    shapes = st.sampled_from([(), (0,), (N,), (N, K), (N, 1), (N + 1, K), (0, K), (2, 2, 2)])

    def build(dtype, shape, fill):
        arr = np.full(shape, fill if dtype not in ("O", "<U3") else "x", dtype=object)
        try:
            with warnings.catch_warnings():  # 1e30 -> float16 overflows to inf: wanted junk
                warnings.simplefilter("ignore")
                return arr.astype(dtype)
        except (ValueError, TypeError, OverflowError):
            return arr

    fills = st.sampled_from([0, 1, -1, 0.5, np.nan, np.inf, -np.inf, 7, 1e30])
    return st.builds(build, dtypes, shapes, fills)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.one_of(st.integers(-3, 10), st.floats(), st.text(max_size=2)), max_size=6),
    st.lists(st.lists(st.integers(-3, 10), max_size=3), max_size=3),
    _arrays(),
)

# Arguments whose huge-integer junk would ask a kernel for unbounded work or
# memory even when validated (e.g. 2**60 resamples): such values are tried in
# the subprocess test below, and kept small here.
_BOUNDED = {
    ("paired_bootstrap", "n_resamples"),
    ("compare_seeds", "n_resamples"),
    ("compare", "n_resamples"),
    ("compare_options", "n_resamples"),
}


def _small(value):
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**4:
        return value % 10**4
    return value


@settings(deadline=None)
@given(name=st.sampled_from(sorted(CALLS)), data=st.data())
def test_junk_gives_a_result_or_a_named_error(name, data):
    fn, args, kwargs = CALLS[name]
    slots = [("pos", i) for i in range(len(args))] + [("kw", k) for k in kwargs]
    where, key = data.draw(st.sampled_from(slots), label="argument")
    junk = data.draw(JUNK, label="junk")
    if (name, key) in _BOUNDED:
        junk = _small(junk)
    args = list(args)
    kwargs = dict(kwargs)
    if where == "pos":
        args[key] = junk
    else:
        kwargs[key] = junk
    originals = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(*args, **kwargs)
        except (ValueError, TypeError) as e:
            func = fn.__name__  # several CALLS entries may share a function
            assert str(e).startswith(f"{func}:"), f"{type(e).__name__} without function name: {e}"
    for before, after in zip(originals, args, strict=True):
        if isinstance(before, np.ndarray) and before.dtype != object:
            np.testing.assert_array_equal(before, after)  # never modified


HUGE_CALLS = [
    "km.accuracy(np.array([0, 10**12]), np.array([0, 10**12]))",
    "km.macro_f1(np.array([0, 3_000_000_000]), np.array([0, 1]))",
    "km.confusion_counts(np.array([0, 2**62]), np.array([0, 1]))",
    "km.ece(Y, Z, n_bins=10**12, strategy='quantile')",
    "km.ece(Y, Z, n_bins=2**64)",
    "km.paired_bootstrap(Y, Z, Z2, n_resamples=10**12)",
    "km.paired_bootstrap(Y, Z, Z2, n_resamples=2**63)",
    "km.paired_bootstrap(Y, Z, Z2, n_resamples=(2**64 + 4) // 5)",
    "km.compare_seeds(list(range(30)), list(range(30)), max_exact=10**30)",
    "km.set_num_threads(2**40)",
    "km.set_num_threads(-1)",
]


@pytest.mark.parametrize("call", HUGE_CALLS)
def test_huge_bounds_never_abort(call):
    code = f"""
import numpy as np, kdmetrics as km
Y = np.arange(40) % 5
Z = np.random.default_rng(0).normal(size=(40, 5))
Z2 = np.random.default_rng(1).normal(size=(40, 5))
try:
    {call}
    print("RESULT")
except (ValueError, TypeError) as e:
    print("ERROR", type(e).__name__, e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout.startswith(("RESULT", "ERROR")), out.stdout + out.stderr
