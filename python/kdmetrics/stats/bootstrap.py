"""Paired bootstrap of the difference between two models on the same examples (SPEC §3).

The per-example quantities (prediction, confidence, NLL, Brier, KL, JS) are
computed once by the existing kernels; the Rust kernel ``_kernels.paired_bootstrap``
then draws every resample (its own xoshiro256++ stream per resample index,
seeded from ``(seed, i)``), scores both models on every group from that same
draw, and returns the deltas B - A in resample order. See ``rust/bootstrap.rs``.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._validation import (
    check_ci,
    check_label_range,
    check_rows,
    labels_and_scores,
    labels_array,
)
from kdmetrics.metrics.divergence import divergences
from kdmetrics.metrics.scoring import example_stats
from kdmetrics.tiers import TIER_NAMES, tier_codes

METRICS: tuple[str, ...] = ("macro_f1", "accuracy", "ece", "nll", "brier", "kl", "js")
DEFAULT_METRICS: tuple[str, ...] = ("macro_f1", "accuracy", "ece", "nll", "brier")
METHODS: tuple[str, ...] = ("percentile", "basic", "bca")
COLUMNS: tuple[str, ...] = (
    "metric",
    "group",
    "a",
    "b",
    "delta",
    "median_delta",
    "ci_low",
    "ci_high",
    "p_delta_le_0",
    "n",
    "flips_a_only",
    "flips_b_only",
)
# Metrics that need logits (per-example probabilities), not just predictions.
_NEED_LOGITS = ("ece", "nll", "brier", "kl", "js")
_NORMAL = NormalDist()


@dataclass
class _Problem:
    """Validated per-example inputs of the kernel, and what the table needs."""

    args: tuple[Any, ...]
    metrics: list[str]
    groups: list[str]
    example_group: np.ndarray  # per example: 0 without tiers, else 1 + tier
    correct_a: np.ndarray
    correct_b: np.ndarray


def _model(
    func: str, y: np.ndarray, scores: Any, name: str, need_stats: bool
) -> tuple[np.ndarray, Any, int | None]:
    """(pred, ExampleStats or None, n_classes or None) of logits or 1-D predictions.

    Without a metric that needs probabilities only the argmax is computed.
    """
    arr = np.asarray(scores)
    if arr.ndim == 2:
        if need_stats:
            s = example_stats(func, y, arr, name=name)
            return s.pred, s, arr.shape[1]
        _, z = labels_and_scores(func, y, arr, name)
        return _kernels.predict(func, z, name), None, arr.shape[1]
    if arr.ndim != 1:
        raise ValueError(
            f"{func}: {name} must be 2-D logits or 1-D predicted classes, got shape {arr.shape}"
        )
    pred = labels_array(func, arr, name)
    check_rows(func, y.shape[0], name, pred.shape[0], "labels")
    return pred, None, None


def _positive_int(func: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{func}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _prepare(
    func: str,
    labels: Any,
    logits_a: Any,
    logits_b: Any,
    tier_of_class: Any,
    metrics: Any,
    reference_logits: Any,
    n_bins: int,
) -> _Problem:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = list(metrics)
    if not metrics:
        raise ValueError(f"{func}: metrics is empty; choose from {METRICS}")
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"{func}: unknown metric {m!r} in metrics; choose from {METRICS}")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"{func}: metrics has duplicates: {metrics}")
    if reference_logits is not None:
        metrics += [m for m in ("kl", "js") if m not in metrics]
    elif any(m in ("kl", "js") for m in metrics):
        raise ValueError(f"{func}: metrics 'kl' and 'js' need reference_logits (the teacher)")

    y = labels_array(func, labels)
    if y.shape[0] < 2:
        raise ValueError(f"{func}: labels needs at least 2 examples, got {y.shape[0]}")
    need_stats = any(m in _NEED_LOGITS for m in metrics)
    pred_a, sa, ka = _model(func, y, logits_a, "logits_a", need_stats)
    pred_b, sb, kb = _model(func, y, logits_b, "logits_b", need_stats)
    if ka is not None and kb is not None and ka != kb:
        raise ValueError(f"{func}: logits_a has {ka} classes but logits_b has {kb}")
    for m in metrics:
        if m in _NEED_LOGITS:
            for s, name in ((sa, "logits_a"), (sb, "logits_b")):
                if s is None:  # only predictions were given
                    raise ValueError(
                        f"{func}: metric {m!r} needs logits, but {name} holds predicted "
                        "classes (1-D); use metrics=('macro_f1', 'accuracy') with predictions"
                    )
    k = ka or kb
    if k is None:
        k = int(max(y.max(), pred_a.max(), pred_b.max())) + 1
        if tier_of_class is not None and np.ndim(tier_of_class) == 1:
            k = max(k, len(tier_of_class))
    check_label_range(func, y, k)
    check_label_range(func, pred_a, k, "logits_a")
    check_label_range(func, pred_b, k, "logits_b")

    if tier_of_class is None:
        class_tier = np.zeros(k, dtype=np.int64)
        n_tiers, groups = 1, ["all"]
        example_group = np.zeros(y.shape[0], dtype=np.int64)
    else:
        class_tier = tier_codes(func, tier_of_class, k)
        n_tiers, groups = len(TIER_NAMES), ["all", *TIER_NAMES]
        example_group = class_tier[y] + 1

    values: list[tuple[np.ndarray, np.ndarray] | None] = []
    kl_js = None
    for m in metrics:
        if m in ("macro_f1", "accuracy"):
            values.append(None)
        elif m == "ece":
            values.append((sa.confidence, sb.confidence))
        elif m in ("nll", "brier"):
            values.append((getattr(sa, m), getattr(sb, m)))
        else:
            if kl_js is None:
                kl_js = [
                    divergences(
                        func, reference_logits, z, 1.0, False, False, ("reference_logits", n)
                    )
                    for z, n in ((logits_a, "logits_a"), (logits_b, "logits_b"))
                ]
                if kl_js[0][0].shape[0] != y.shape[0]:
                    check_rows(func, y.shape[0], "reference_logits", kl_js[0][0].shape[0], "labels")
            j = 0 if m == "kl" else 1
            values.append((kl_js[0][j], kl_js[1][j]))
    args = (y, pred_a, pred_b, k, class_tier, n_tiers, metrics, values, n_bins)
    return _Problem(args, metrics, groups, example_group, pred_a == y, pred_b == y)


def interval(
    deltas: np.ndarray,
    estimate: np.ndarray,
    ci: float = 0.95,
    method: str = "percentile",
    accel: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval of each column of ``deltas`` (resamples x statistics).

    ``percentile``: quantiles ``(1 - ci)/2`` and ``(1 + ci)/2`` with linear
    interpolation (NumPy's default). ``basic``: ``2 estimate - q_hi``,
    ``2 estimate - q_lo``. ``bca``: Efron's bias-corrected and accelerated
    interval as in ``scipy.stats.bootstrap``: ``z0`` from the fraction of
    resamples below the estimate (ties count half), acceleration ``accel`` from
    the jackknife. Resamples where a statistic is undefined (NaN, e.g. an empty
    tier) are left out of its column. A degenerate BCa (all resamples on one
    side of the estimate, or an undefined acceleration, e.g. identical models)
    gives NaN and a ``RuntimeWarning``.
    """
    func = "interval"
    ci = check_ci(func, ci)
    if method not in METHODS:
        raise ValueError(f"{func}: unknown method {method!r}; choose from {METHODS}")
    d = np.asarray(deltas, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    alpha = (1.0 - ci) / 2.0
    n_stats = d.shape[1]
    lo = np.full(n_stats, np.nan)
    hi = np.full(n_stats, np.nan)
    if method != "bca":
        if np.isnan(d).any():
            q = np.nanquantile(d, [alpha, 1.0 - alpha], axis=0)
        else:
            q = np.quantile(d, [alpha, 1.0 - alpha], axis=0)
        if method == "percentile":
            return q[0], q[1]
        return 2 * est - q[1], 2 * est - q[0]
    if accel is None:
        raise ValueError(f"{func}: method='bca' needs accel (the jackknife acceleration)")
    z_alpha = _NORMAL.inv_cdf(alpha)
    degenerate = []
    for s in range(n_stats):
        col = d[:, s]
        col = col[~np.isnan(col)]
        a = float(accel[s])
        if col.size == 0 or not np.isfinite(est[s]) or not np.isfinite(a):
            degenerate.append(s)
            continue
        frac = (np.count_nonzero(col < est[s]) + np.count_nonzero(col <= est[s])) / (2 * col.size)
        if not 0.0 < frac < 1.0:
            degenerate.append(s)
            continue
        z0 = _NORMAL.inv_cdf(frac)
        levels = []
        for z in (z_alpha, -z_alpha):
            num = z0 + z
            levels.append(_NORMAL.cdf(z0 + num / (1.0 - a * num)))
        lo[s], hi[s] = np.quantile(col, levels)
    if degenerate:
        warnings.warn(
            f"BCa interval is degenerate (identical resampled values or undefined jackknife "
            f"acceleration) for {len(degenerate)} statistic(s); returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return lo, hi


def paired_bootstrap(
    labels: Any,
    logits_a: Any,
    logits_b: Any,
    *,
    tier_of_class: Any = None,
    metrics: Any = DEFAULT_METRICS,
    reference_logits: Any = None,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
    return_deltas: bool = False,
    n_bins: int = 15,
    start: int = 0,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Paired bootstrap of B - A for each (metric, group).

    Both models are scored on the same resampled examples; every metric and
    every group of a resample comes from that one draw. Groups: ``all``, and
    with ``tier_of_class`` (length K, codes 0/1/2 or names) ``head``, ``mid``,
    ``tail``; a tier's metrics use the examples whose true label is in it,
    except macro F1, the mean F1 over the tier's classes from counts over all
    examples of the resample (SPEC §2). A class with ``TP + FP + FN = 0`` in a
    resample is left out of that resample's macro average. ECE: ``n_bins``
    equal-width, right-closed bins as in :func:`kdmetrics.ece`.
    ``reference_logits`` (a teacher) adds ``kl`` = KL(teacher || model) and
    ``js``. ``logits_a``/``logits_b`` may be 1-D predicted classes, which
    support ``accuracy`` and ``macro_f1`` only.

    Returns a DataFrame with one row per (metric, group) and columns
    ``metric, group, a, b, delta`` (B - A on the full data), ``median_delta``,
    ``ci_low, ci_high`` (the ``method`` interval at level ``ci``: "percentile",
    "basic" or "bca", see :func:`interval`), ``p_delta_le_0`` (fraction of
    resamples with delta <= 0), ``n`` (examples in the group) and
    ``flips_a_only`` = #(A right, B wrong), ``flips_b_only`` = #(A wrong,
    B right): filled on accuracy rows (nullable Int64), ``<NA>`` elsewhere.

    Resample ``i`` draws from its own stream derived from ``(seed, i)``, so
    results do not depend on the thread count, and ``start`` computes resamples
    ``start .. start + n_resamples - 1`` alone: the deltas of ranges computed
    anywhere concatenate to exactly those of one run (then
    :func:`interval` gives the interval). With ``return_deltas=True`` the
    result is ``(table, deltas)``, ``deltas[(metric, group)]`` the 1-D array of
    resampled deltas in resample order.
    """
    func = "paired_bootstrap"
    ci = check_ci(func, ci)
    n_resamples = _positive_int(func, "n_resamples", n_resamples, 1)
    seed = _positive_int(func, "seed", seed, 0)
    start = _positive_int(func, "start", start, 0)
    n_bins = _positive_int(func, "n_bins", n_bins, 1)
    if seed >= 2**64 or start + n_resamples > 2**64:
        raise ValueError(f"{func}: seed and start + n_resamples must be below 2**64")
    if method not in METHODS:
        raise ValueError(f"{func}: unknown method {method!r}; choose from {METHODS}")
    p = _prepare(func, labels, logits_a, logits_b, tier_of_class, metrics, reference_logits, n_bins)
    deltas, full, accel = _kernels.paired_bootstrap(
        func, *p.args, seed, start, n_resamples, method == "bca"
    )
    estimate = full[:, 1] - full[:, 0]
    lo, hi = interval(deltas, estimate, ci, method, accel)
    with warnings.catch_warnings():
        # An all-NaN column (a tier never drawn) is a NaN median, not a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(deltas, axis=0)
    defined = (~np.isnan(deltas)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_le_0 = (deltas <= 0).sum(axis=0) / defined

    n_groups = len(p.groups)
    group_n = np.bincount(p.example_group, minlength=n_groups)
    group_n[0] = p.example_group.shape[0]
    a_only = p.correct_a & ~p.correct_b
    b_only = ~p.correct_a & p.correct_b
    flips = []
    for g in range(n_groups):
        sel = slice(None) if g == 0 else p.example_group == g
        flips.append((int(a_only[sel].sum()), int(b_only[sel].sum())))
    rows = []
    for mi, metric in enumerate(p.metrics):
        for g, group in enumerate(p.groups):
            s = mi * n_groups + g
            fa, fb = flips[g] if metric == "accuracy" else (pd.NA, pd.NA)
            rows.append(
                (metric, group, full[s, 0], full[s, 1], estimate[s], median[s], lo[s], hi[s],
                 p_le_0[s], int(group_n[g]), fa, fb)
            )  # fmt: skip
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["flips_a_only"] = table["flips_a_only"].astype("Int64")
    table["flips_b_only"] = table["flips_b_only"].astype("Int64")
    if not return_deltas:
        return table
    out = {
        (metric, group): np.ascontiguousarray(deltas[:, mi * n_groups + g])
        for mi, metric in enumerate(p.metrics)
        for g, group in enumerate(p.groups)
    }
    return table, out


def resample_indices(n: int, seed: int, i: int) -> np.ndarray:
    """The N example indices drawn by resample ``i`` (for audits and tests)."""
    return _kernels.bootstrap_indices("resample_indices", n, seed, i, n)


def eval_indices(
    labels: Any,
    logits_a: Any,
    logits_b: Any,
    indices: Any,
    *,
    tier_of_class: Any = None,
    metrics: Any = DEFAULT_METRICS,
    reference_logits: Any = None,
    n_bins: int = 15,
) -> pd.DataFrame:
    """The per-resample statistic for explicit index draws (rows of ``indices``):
    columns ``draw, metric, group, a, b``. What :func:`paired_bootstrap`
    computes for each resample, exposed so tests can check it independently.
    """
    func = "eval_indices"
    p = _prepare(func, labels, logits_a, logits_b, tier_of_class, metrics, reference_logits, n_bins)
    idx = np.ascontiguousarray(np.atleast_2d(indices), dtype=np.int64)
    vals = _kernels.bootstrap_eval(func, *p.args, idx)
    n_groups = len(p.groups)
    rows = [
        (r, metric, group, vals[r, mi * n_groups + g, 0], vals[r, mi * n_groups + g, 1])
        for r in range(idx.shape[0])
        for mi, metric in enumerate(p.metrics)
        for g, group in enumerate(p.groups)
    ]
    return pd.DataFrame(rows, columns=["draw", "metric", "group", "a", "b"])
