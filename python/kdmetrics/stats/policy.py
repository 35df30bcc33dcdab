"""Which interval to trust for which metric: the measured interval policy.

The coverage harness (``benches/coverage.py``) draws thousands of validation
sets from simulated long-tail populations whose true metric values are known
and records how often each 95 % interval construction contains the true
difference B - A, per (metric, group). This module holds

- the calibration-error comparison the harness selected
  (:func:`calibration_bootstrap`: the debiased squared L2 calibration error of
  :func:`kdmetrics.metrics.calibration.ece_debiased`, resampled on exactly the
  draws :func:`kdmetrics.paired_bootstrap` uses);
- the extra interval construction the harness measures besides
  percentile / basic / BCa (:func:`shifted_interval`);
- the measured coverage (:data:`MEASURED`), the per-metric default method
  chosen from it (:data:`DEFAULT_METHOD`), and :func:`apply_policy`, which adds
  ``method``, ``trusted`` and ``flag_reason`` columns to a bootstrap table.

The measured numbers and the rule that turns them into the policy are
documented in docs/intervals.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics._validation import (
    check_ci,
    check_int,
    check_n_resamples,
    check_rows,
    labels_array,
)
from kdmetrics.errors import InvalidArgumentError, ShapeError
from kdmetrics.metrics.calibration import bin_ids, debiased_l2_from_sums
from kdmetrics.metrics.scoring import example_stats
from kdmetrics.stats import bootstrap as _bootstrap
from kdmetrics.tiers import TIER_NAMES, tier_codes

# The calibration-error estimators of :func:`calibration_bootstrap`, by the
# name their rows carry: the debiased squared L2 error (unbiased differences)
# and its square root (on the scale of a calibration gap).
CALIBRATION_ESTIMATORS: dict[str, bool] = {"ce2_debiased": True, "ce_debiased": False}
# Interval constructions: the bootstrap module's plus the mean-shifted percentile.
SHIFTED = "shifted_percentile"
ALL_METHODS: tuple[str, ...] = (*_bootstrap.METHODS, SHIFTED)
# A default interval is trusted when its measured coverage lies in this band
# in every scenario of the harness (nominal 0.95).
COVERAGE_BAND: tuple[float, float] = (0.925, 0.975)


def shifted_interval(
    deltas: np.ndarray, estimate: np.ndarray, ci: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval moved by twice the bootstrap estimate of the bias.

    The percentile interval is centred near ``estimate + bias`` (the resampled
    statistic carries the estimator's bias once more); subtracting
    ``2 (mean(deltas) - estimate)`` centres it on the bias-corrected estimate
    ``2 estimate - mean(deltas)``. Columns of ``deltas`` are statistics; NaN
    resamples are left out.
    """
    ci = check_ci("shifted_interval", ci)
    d = np.asarray(deltas, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    lo, hi = _bootstrap.interval(d, est, ci, "percentile")
    with np.errstate(invalid="ignore"):
        bias = np.nanmean(d, axis=0) - est if d.shape[0] else np.full_like(est, np.nan)
    return lo - 2 * bias, hi - 2 * bias


def any_interval(
    deltas: np.ndarray,
    estimate: np.ndarray,
    ci: float,
    method: str,
    accel: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kdmetrics.stats.bootstrap.interval` or :func:`shifted_interval`."""
    if method == SHIFTED:
        return shifted_interval(deltas, estimate, ci)
    return _bootstrap.interval(deltas, estimate, ci, method, accel)


@dataclass
class _Calibration:
    groups: list[str]
    cells: list[np.ndarray]  # per model: tier * n_bins + bin of each example
    gaps: list[np.ndarray]  # per model: correct - confidence
    n_tiers: int
    n_bins: int


def _prepare_calibration(
    func: str, labels: Any, logits_a: Any, logits_b: Any, tier_of_class: Any, n_bins: int
) -> _Calibration:
    y = labels_array(func, labels)
    if y.shape[0] < 2:
        raise ShapeError(f"{func}: labels needs at least 2 examples, got {y.shape[0]}")
    stats = [
        example_stats(func, y, z, name=name, scores=False)
        for z, name in ((logits_a, "logits_a"), (logits_b, "logits_b"))
    ]
    ka, kb = np.shape(logits_a)[1], np.shape(logits_b)[1]
    if ka != kb:
        raise ShapeError(f"{func}: logits_a has {ka} classes but logits_b has {kb}")
    check_rows(func, y.shape[0], "logits_b", np.shape(logits_b)[0], "labels")
    if tier_of_class is None:
        code = np.zeros(y.shape[0], dtype=np.int64)
        groups, n_tiers = ["all"], 1
    else:
        code = tier_codes(func, tier_of_class, ka)[y]
        groups, n_tiers = ["all", *TIER_NAMES], len(TIER_NAMES)
    cells, gaps = [], []
    for s in stats:
        cells.append(code * n_bins + bin_ids(func, s.confidence, n_bins))
        gaps.append(s.correct.astype(np.float64) - s.confidence.astype(np.float64))
    return _Calibration(groups, cells, gaps, n_tiers, n_bins)


def _ce_by_group(p: _Calibration, model: int, idx: np.ndarray | None) -> np.ndarray:
    """(draws, groups) debiased squared calibration error of one model for the
    rows of ``idx`` (None: the full data, one draw)."""
    cell, gap = p.cells[model], p.gaps[model]
    n_cells = p.n_tiers * p.n_bins
    if idx is None:
        idx = np.arange(cell.shape[0])[None, :]
    n_draws = idx.shape[0]
    flat = (np.arange(n_draws, dtype=np.int64)[:, None] * n_cells + cell[idx]).ravel()
    g = gap[idx].ravel()
    size = n_draws * n_cells
    shape = (n_draws, p.n_tiers, p.n_bins)
    count = np.bincount(flat, minlength=size).reshape(shape).astype(np.float64)
    s1 = np.bincount(flat, weights=g, minlength=size).reshape(shape)
    s2 = np.bincount(flat, weights=g * g, minlength=size).reshape(shape)
    out = np.empty((n_draws, len(p.groups)))
    out[:, 0] = debiased_l2_from_sums(count.sum(1), s1.sum(1), s2.sum(1))
    if p.n_tiers > 1:
        out[:, 1:] = debiased_l2_from_sums(count, s1, s2)
    return out


def _calibration_values(
    p: _Calibration, n_resamples: int, seed: int, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Squared debiased CE, (groups, 2) on the full data and (resamples,
    groups, 2) on the resamples of :func:`kdmetrics.paired_bootstrap`."""
    n = p.cells[0].shape[0]
    full = np.stack([_ce_by_group(p, m, None)[0] for m in (0, 1)], axis=1)
    res = np.empty((n_resamples, len(p.groups), 2))
    chunk = max(1, 2_000_000 // n)
    for c0 in range(0, n_resamples, chunk):
        rows = range(c0, min(c0 + chunk, n_resamples))
        idx = np.stack([_bootstrap.resample_indices(n, seed, start + i) for i in rows])
        for m in (0, 1):
            res[c0 : c0 + len(rows), :, m] = _ce_by_group(p, m, idx)
    return full, res


def _as_estimator(values: np.ndarray, estimator: str) -> np.ndarray:
    if CALIBRATION_ESTIMATORS[estimator]:
        return values
    return np.sqrt(np.maximum(values, 0.0))


def calibration_bootstrap(
    labels: Any,
    logits_a: Any,
    logits_b: Any,
    *,
    tier_of_class: Any = None,
    estimator: str = "ce2_debiased",
    n_resamples: int = 10_000,
    ci: float = 0.95,
    method: str | None = None,
    seed: int = 0,
    n_bins: int = 15,
    start: int = 0,
    return_deltas: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Paired bootstrap of a debiased calibration-error difference B - A.

    ``estimator="ce2_debiased"`` (default): the debiased squared binned L2
    calibration error of :func:`kdmetrics.metrics.calibration.ece_debiased`
    (``squared=True``), whose differences are unbiased; ``"ce_debiased"``: its
    square root (clamped at 0). Resample ``i`` uses exactly the example indices
    of :func:`kdmetrics.paired_bootstrap`'s resample ``i`` for the same
    ``seed`` (:func:`kdmetrics.stats.bootstrap.resample_indices`), so its rows
    can sit next to the other metrics of one bootstrap. Groups and tiers as in
    ``paired_bootstrap`` (a tier's calibration error uses the examples whose
    true label is in it). ``method`` defaults to the policy's
    (:data:`DEFAULT_METHOD`); ``"bca"`` is not offered here.

    Returns the table of ``paired_bootstrap`` (same columns; flips are
    ``<NA>``), plus the resampled deltas with ``return_deltas=True``.
    """
    func = "calibration_bootstrap"
    if estimator not in CALIBRATION_ESTIMATORS:
        raise InvalidArgumentError(
            f"{func}: unknown estimator {estimator!r}; choose from {tuple(CALIBRATION_ESTIMATORS)}"
        )
    if method is None:
        method = default_method(estimator)
    if method not in ALL_METHODS or method == "bca":
        choices = tuple(m for m in ALL_METHODS if m != "bca")
        raise InvalidArgumentError(
            f"{func}: method {method!r} is not offered here; choose from {choices}"
        )
    ci = check_ci(func, ci)
    n_resamples = check_n_resamples(func, n_resamples)
    seed = check_int(func, "seed", seed, 0)
    start = check_int(func, "start", start, 0)
    n_bins = check_int(func, "n_bins", n_bins, 1)
    p = _prepare_calibration(func, labels, logits_a, logits_b, tier_of_class, n_bins)
    full, res = _calibration_values(p, n_resamples, seed, start)
    return _calibration_table(p, estimator, full, res, ci, method, return_deltas)


def _calibration_table(
    p: _Calibration,
    estimator: str,
    full: np.ndarray,
    res: np.ndarray,
    ci: float,
    method: str,
    return_deltas: bool,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    n, n_bins = p.cells[0].shape[0], p.n_bins
    full = _as_estimator(full, estimator)
    res = _as_estimator(res, estimator)
    estimate = full[:, 1] - full[:, 0]
    deltas = res[:, :, 1] - res[:, :, 0]
    n_resamples = deltas.shape[0]
    lo, hi = any_interval(deltas, estimate, ci, method)
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(deltas, axis=0) if n_resamples else estimate
        p_le_0 = (deltas <= 0).sum(axis=0) / (~np.isnan(deltas)).sum(axis=0)
    group_n = [n]
    if p.n_tiers > 1:
        group_n += [int(np.count_nonzero(p.cells[0] // n_bins == t)) for t in range(p.n_tiers)]
    rows_out = [
        (estimator, g, full[j, 0], full[j, 1], estimate[j], median[j], lo[j], hi[j], p_le_0[j],
         group_n[j], pd.NA, pd.NA)
        for j, g in enumerate(p.groups)
    ]  # fmt: skip
    table = pd.DataFrame(rows_out, columns=list(_bootstrap.COLUMNS))
    table["flips_a_only"] = table["flips_a_only"].astype("Int64")
    table["flips_b_only"] = table["flips_b_only"].astype("Int64")
    table = apply_policy(table, method=method)
    if not return_deltas:
        return table
    return table, {(estimator, g): deltas[:, j].copy() for j, g in enumerate(p.groups)}


# ---------------------------------------------------------------------------
# The measured policy. MEASURED is written by ``benches/coverage.py
# --emit-policy`` from the summary tables of the run named in
# MEASURED_RUN; docs/intervals.md shows the full tables.

MEASURED_RUN: tuple[str, ...] = (
    "PYTHONPATH=python python benches/coverage.py --scenarios kd_like --draws 400"
    " --resamples 500 --truth-per-tier 600000",
    "PYTHONPATH=python python benches/coverage.py --scenarios close --draws 250"
    " --resamples 500 --truth-per-tier 300000",
    "PYTHONPATH=python python benches/coverage.py --scenarios tail_calibrated --draws"
    " 250 --resamples 500 --truth-per-tier 300000",
    "PYTHONPATH=python python benches/coverage.py --scenarios under_confident --draws"
    " 250 --resamples 500 --truth-per-tier 300000",
)
MEASURED_DRAWS = 250
SCENARIOS: tuple[str, ...] = ("kd_like", "close", "tail_calibrated", "under_confident")
# (metric, group, method) -> coverage of the 95 % interval in each scenario.
MEASURED: dict[tuple[str, str, str], tuple[float, ...]] = {
    ("accuracy", "all", "percentile"): (
        0.9550,
        0.9680,
        0.9400,
        0.9600,
    ),
    ("accuracy", "all", "basic"): (
        0.9500,
        0.9680,
        0.9400,
        0.9560,
    ),
    ("accuracy", "all", "bca"): (
        0.9575,
        0.9760,
        0.9320,
        0.9720,
    ),
    ("accuracy", "all", "shifted_percentile"): (
        0.9600,
        0.9640,
        0.9360,
        0.9720,
    ),
    ("accuracy", "head", "percentile"): (
        0.9400,
        0.9520,
        0.9320,
        0.9400,
    ),
    ("accuracy", "head", "basic"): (
        0.9450,
        0.9400,
        0.9280,
        0.9480,
    ),
    ("accuracy", "head", "bca"): (
        0.9450,
        0.9480,
        0.9320,
        0.9560,
    ),
    ("accuracy", "head", "shifted_percentile"): (
        0.9525,
        0.9480,
        0.9360,
        0.9520,
    ),
    ("accuracy", "mid", "percentile"): (
        0.9350,
        0.9240,
        0.9320,
        0.9320,
    ),
    ("accuracy", "mid", "basic"): (
        0.9350,
        0.9360,
        0.9360,
        0.9360,
    ),
    ("accuracy", "mid", "bca"): (
        0.9350,
        0.9280,
        0.9440,
        0.9360,
    ),
    ("accuracy", "mid", "shifted_percentile"): (
        0.9300,
        0.9280,
        0.9440,
        0.9320,
    ),
    ("accuracy", "tail", "percentile"): (
        0.9400,
        0.9480,
        0.9480,
        0.9400,
    ),
    ("accuracy", "tail", "basic"): (
        0.9400,
        0.9480,
        0.9480,
        0.9400,
    ),
    ("accuracy", "tail", "bca"): (
        0.9450,
        0.9480,
        0.9440,
        0.9360,
    ),
    ("accuracy", "tail", "shifted_percentile"): (
        0.9425,
        0.9520,
        0.9560,
        0.9400,
    ),
    ("macro_f1", "all", "percentile"): (
        0.9425,
        0.9600,
        0.9520,
        0.9440,
    ),
    ("macro_f1", "all", "basic"): (
        0.8825,
        0.8960,
        0.9480,
        0.8760,
    ),
    ("macro_f1", "all", "bca"): (
        0.9025,
        0.8880,
        0.9400,
        0.8920,
    ),
    ("macro_f1", "all", "shifted_percentile"): (
        0.8900,
        0.8920,
        0.9360,
        0.8840,
    ),
    ("macro_f1", "head", "percentile"): (
        0.9650,
        0.9640,
        0.9480,
        0.9560,
    ),
    ("macro_f1", "head", "basic"): (
        0.9525,
        0.9560,
        0.9400,
        0.9480,
    ),
    ("macro_f1", "head", "bca"): (
        0.9650,
        0.9720,
        0.9400,
        0.9680,
    ),
    ("macro_f1", "head", "shifted_percentile"): (
        0.9675,
        0.9680,
        0.9480,
        0.9560,
    ),
    ("macro_f1", "mid", "percentile"): (
        0.9400,
        0.9440,
        0.9600,
        0.9360,
    ),
    ("macro_f1", "mid", "basic"): (
        0.9425,
        0.9440,
        0.9560,
        0.9440,
    ),
    ("macro_f1", "mid", "bca"): (
        0.9375,
        0.9360,
        0.9520,
        0.9360,
    ),
    ("macro_f1", "mid", "shifted_percentile"): (
        0.9375,
        0.9400,
        0.9560,
        0.9320,
    ),
    ("macro_f1", "tail", "percentile"): (
        0.9525,
        0.9520,
        0.9440,
        0.9560,
    ),
    ("macro_f1", "tail", "basic"): (
        0.8775,
        0.8840,
        0.9360,
        0.8840,
    ),
    ("macro_f1", "tail", "bca"): (
        0.8850,
        0.8800,
        0.9320,
        0.8840,
    ),
    ("macro_f1", "tail", "shifted_percentile"): (
        0.8875,
        0.8720,
        0.9320,
        0.8840,
    ),
    ("ece", "all", "percentile"): (
        0.3700,
        0.9800,
        0.2160,
        0.9520,
    ),
    ("ece", "all", "basic"): (
        0.8975,
        0.9160,
        0.8320,
        0.9520,
    ),
    ("ece", "all", "bca"): (
        0.7375,
        0.9240,
        0.6240,
        0.9520,
    ),
    ("ece", "all", "shifted_percentile"): (
        0.8850,
        0.9280,
        0.8240,
        0.9520,
    ),
    ("ece", "head", "percentile"): (
        0.9275,
        1.0000,
        0.2040,
        0.9600,
    ),
    ("ece", "head", "basic"): (
        0.9150,
        0.9320,
        0.8120,
        0.9600,
    ),
    ("ece", "head", "bca"): (
        0.9200,
        0.9320,
        0.6320,
        0.9600,
    ),
    ("ece", "head", "shifted_percentile"): (
        0.9100,
        0.9240,
        0.8040,
        0.9640,
    ),
    ("ece", "mid", "percentile"): (
        0.9450,
        0.9520,
        0.1720,
        0.6240,
    ),
    ("ece", "mid", "basic"): (
        0.9125,
        0.9160,
        0.7400,
        0.9400,
    ),
    ("ece", "mid", "bca"): (
        0.9175,
        0.9240,
        0.5360,
        0.8720,
    ),
    ("ece", "mid", "shifted_percentile"): (
        0.9225,
        0.9240,
        0.7280,
        0.9320,
    ),
    ("ece", "tail", "percentile"): (
        0.9600,
        0.9680,
        0.2600,
        0.7000,
    ),
    ("ece", "tail", "basic"): (
        0.9225,
        0.9240,
        0.6760,
        0.7200,
    ),
    ("ece", "tail", "bca"): (
        0.9275,
        0.9280,
        0.6200,
        0.6840,
    ),
    ("ece", "tail", "shifted_percentile"): (
        0.9225,
        0.9280,
        0.6920,
        0.7240,
    ),
    ("nll", "all", "percentile"): (
        0.9450,
        0.9480,
        0.9400,
        0.9400,
    ),
    ("nll", "all", "basic"): (
        0.9550,
        0.9520,
        0.9360,
        0.9440,
    ),
    ("nll", "all", "bca"): (
        0.9500,
        0.9520,
        0.9400,
        0.9400,
    ),
    ("nll", "all", "shifted_percentile"): (
        0.9475,
        0.9520,
        0.9400,
        0.9400,
    ),
    ("nll", "head", "percentile"): (
        0.9275,
        0.9400,
        0.9320,
        0.9400,
    ),
    ("nll", "head", "basic"): (
        0.9275,
        0.9360,
        0.9400,
        0.9480,
    ),
    ("nll", "head", "bca"): (
        0.9250,
        0.9400,
        0.9400,
        0.9440,
    ),
    ("nll", "head", "shifted_percentile"): (
        0.9350,
        0.9360,
        0.9400,
        0.9520,
    ),
    ("nll", "mid", "percentile"): (
        0.9500,
        0.9560,
        0.9560,
        0.9560,
    ),
    ("nll", "mid", "basic"): (
        0.9550,
        0.9640,
        0.9640,
        0.9720,
    ),
    ("nll", "mid", "bca"): (
        0.9500,
        0.9480,
        0.9560,
        0.9640,
    ),
    ("nll", "mid", "shifted_percentile"): (
        0.9450,
        0.9560,
        0.9560,
        0.9640,
    ),
    ("nll", "tail", "percentile"): (
        0.9625,
        0.9520,
        0.9520,
        0.9520,
    ),
    ("nll", "tail", "basic"): (
        0.9550,
        0.9520,
        0.9560,
        0.9520,
    ),
    ("nll", "tail", "bca"): (
        0.9575,
        0.9520,
        0.9600,
        0.9520,
    ),
    ("nll", "tail", "shifted_percentile"): (
        0.9575,
        0.9520,
        0.9560,
        0.9520,
    ),
    ("brier", "all", "percentile"): (
        0.9475,
        0.9440,
        0.9320,
        0.9400,
    ),
    ("brier", "all", "basic"): (
        0.9500,
        0.9560,
        0.9400,
        0.9520,
    ),
    ("brier", "all", "bca"): (
        0.9475,
        0.9600,
        0.9320,
        0.9480,
    ),
    ("brier", "all", "shifted_percentile"): (
        0.9475,
        0.9600,
        0.9320,
        0.9440,
    ),
    ("brier", "head", "percentile"): (
        0.9500,
        0.9440,
        0.9520,
        0.9560,
    ),
    ("brier", "head", "basic"): (
        0.9425,
        0.9440,
        0.9480,
        0.9480,
    ),
    ("brier", "head", "bca"): (
        0.9450,
        0.9360,
        0.9680,
        0.9520,
    ),
    ("brier", "head", "shifted_percentile"): (
        0.9450,
        0.9400,
        0.9640,
        0.9520,
    ),
    ("brier", "mid", "percentile"): (
        0.9500,
        0.9480,
        0.9280,
        0.9440,
    ),
    ("brier", "mid", "basic"): (
        0.9450,
        0.9360,
        0.9240,
        0.9560,
    ),
    ("brier", "mid", "bca"): (
        0.9500,
        0.9400,
        0.9280,
        0.9440,
    ),
    ("brier", "mid", "shifted_percentile"): (
        0.9500,
        0.9440,
        0.9280,
        0.9520,
    ),
    ("brier", "tail", "percentile"): (
        0.9400,
        0.9520,
        0.9440,
        0.9400,
    ),
    ("brier", "tail", "basic"): (
        0.9425,
        0.9440,
        0.9480,
        0.9400,
    ),
    ("brier", "tail", "bca"): (
        0.9375,
        0.9520,
        0.9480,
        0.9440,
    ),
    ("brier", "tail", "shifted_percentile"): (
        0.9400,
        0.9480,
        0.9520,
        0.9400,
    ),
    ("kl", "all", "percentile"): (
        0.9450,
        0.9600,
        0.9560,
        0.9440,
    ),
    ("kl", "all", "basic"): (
        0.9450,
        0.9640,
        0.9600,
        0.9480,
    ),
    ("kl", "all", "bca"): (
        0.9525,
        0.9640,
        0.9520,
        0.9440,
    ),
    ("kl", "all", "shifted_percentile"): (
        0.9500,
        0.9600,
        0.9520,
        0.9480,
    ),
    ("kl", "head", "percentile"): (
        0.9275,
        0.9360,
        0.9440,
        0.9440,
    ),
    ("kl", "head", "basic"): (
        0.9225,
        0.9480,
        0.9560,
        0.9520,
    ),
    ("kl", "head", "bca"): (
        0.9275,
        0.9320,
        0.9400,
        0.9400,
    ),
    ("kl", "head", "shifted_percentile"): (
        0.9275,
        0.9280,
        0.9560,
        0.9480,
    ),
    ("kl", "mid", "percentile"): (
        0.9650,
        0.9680,
        0.9720,
        0.9760,
    ),
    ("kl", "mid", "basic"): (
        0.9625,
        0.9760,
        0.9680,
        0.9720,
    ),
    ("kl", "mid", "bca"): (
        0.9625,
        0.9680,
        0.9760,
        0.9680,
    ),
    ("kl", "mid", "shifted_percentile"): (
        0.9600,
        0.9720,
        0.9760,
        0.9800,
    ),
    ("kl", "tail", "percentile"): (
        0.9475,
        0.9360,
        0.9600,
        0.9280,
    ),
    ("kl", "tail", "basic"): (
        0.9550,
        0.9440,
        0.9640,
        0.9360,
    ),
    ("kl", "tail", "bca"): (
        0.9425,
        0.9400,
        0.9480,
        0.9240,
    ),
    ("kl", "tail", "shifted_percentile"): (
        0.9500,
        0.9400,
        0.9560,
        0.9280,
    ),
    ("js", "all", "percentile"): (
        0.9425,
        0.9440,
        0.9520,
        0.9400,
    ),
    ("js", "all", "basic"): (
        0.9525,
        0.9640,
        0.9560,
        0.9520,
    ),
    ("js", "all", "bca"): (
        0.9550,
        0.9520,
        0.9560,
        0.9480,
    ),
    ("js", "all", "shifted_percentile"): (
        0.9500,
        0.9520,
        0.9520,
        0.9520,
    ),
    ("js", "head", "percentile"): (
        0.9375,
        0.9320,
        0.9480,
        0.9560,
    ),
    ("js", "head", "basic"): (
        0.9325,
        0.9320,
        0.9560,
        0.9640,
    ),
    ("js", "head", "bca"): (
        0.9400,
        0.9480,
        0.9440,
        0.9640,
    ),
    ("js", "head", "shifted_percentile"): (
        0.9350,
        0.9440,
        0.9520,
        0.9640,
    ),
    ("js", "mid", "percentile"): (
        0.9475,
        0.9520,
        0.9400,
        0.9600,
    ),
    ("js", "mid", "basic"): (
        0.9400,
        0.9520,
        0.9440,
        0.9640,
    ),
    ("js", "mid", "bca"): (
        0.9400,
        0.9400,
        0.9400,
        0.9680,
    ),
    ("js", "mid", "shifted_percentile"): (
        0.9425,
        0.9520,
        0.9440,
        0.9520,
    ),
    ("js", "tail", "percentile"): (
        0.9375,
        0.9240,
        0.9600,
        0.9240,
    ),
    ("js", "tail", "basic"): (
        0.9375,
        0.9280,
        0.9480,
        0.9080,
    ),
    ("js", "tail", "bca"): (
        0.9400,
        0.9200,
        0.9680,
        0.9120,
    ),
    ("js", "tail", "shifted_percentile"): (
        0.9350,
        0.9280,
        0.9560,
        0.9120,
    ),
    ("ce2_debiased", "all", "percentile"): (
        0.9550,
        0.9960,
        0.9560,
        0.9600,
    ),
    ("ce2_debiased", "all", "basic"): (
        0.9400,
        0.9960,
        0.9280,
        0.9560,
    ),
    ("ce2_debiased", "all", "shifted_percentile"): (
        0.9525,
        0.9960,
        0.9400,
        0.9560,
    ),
    ("ce2_debiased", "head", "percentile"): (
        0.9550,
        1.0000,
        0.9680,
        0.9640,
    ),
    ("ce2_debiased", "head", "basic"): (
        0.9450,
        1.0000,
        0.9640,
        0.9720,
    ),
    ("ce2_debiased", "head", "shifted_percentile"): (
        0.9525,
        1.0000,
        0.9720,
        0.9640,
    ),
    ("ce2_debiased", "mid", "percentile"): (
        0.9325,
        0.9560,
        0.9600,
        0.9520,
    ),
    ("ce2_debiased", "mid", "basic"): (
        0.9500,
        0.9680,
        0.9560,
        0.9720,
    ),
    ("ce2_debiased", "mid", "shifted_percentile"): (
        0.9375,
        0.9560,
        0.9600,
        0.9600,
    ),
    ("ce2_debiased", "tail", "percentile"): (
        0.9500,
        0.9720,
        0.9760,
        0.9920,
    ),
    ("ce2_debiased", "tail", "basic"): (
        0.9450,
        0.9600,
        0.9680,
        0.9720,
    ),
    ("ce2_debiased", "tail", "shifted_percentile"): (
        0.9475,
        0.9680,
        0.9720,
        0.9720,
    ),
    ("ce_debiased", "all", "percentile"): (
        0.8575,
        0.9920,
        0.7480,
        0.9600,
    ),
    ("ce_debiased", "all", "basic"): (
        0.7500,
        0.8960,
        0.7760,
        0.9440,
    ),
    ("ce_debiased", "all", "shifted_percentile"): (
        0.6850,
        0.8760,
        0.7440,
        0.9480,
    ),
    ("ce_debiased", "head", "percentile"): (
        0.9575,
        1.0000,
        0.7520,
        0.9600,
    ),
    ("ce_debiased", "head", "basic"): (
        0.8500,
        0.8360,
        0.8080,
        0.9600,
    ),
    ("ce_debiased", "head", "shifted_percentile"): (
        0.8400,
        0.8160,
        0.7640,
        0.9560,
    ),
    ("ce_debiased", "mid", "percentile"): (
        0.9525,
        0.9560,
        0.7880,
        0.9560,
    ),
    ("ce_debiased", "mid", "basic"): (
        0.8925,
        0.9160,
        0.8880,
        0.6880,
    ),
    ("ce_debiased", "mid", "shifted_percentile"): (
        0.8850,
        0.9280,
        0.8400,
        0.6200,
    ),
    ("ce_debiased", "tail", "percentile"): (
        0.9600,
        0.9720,
        0.8840,
        0.9400,
    ),
    ("ce_debiased", "tail", "basic"): (
        0.9125,
        0.9240,
        0.8640,
        0.8360,
    ),
    ("ce_debiased", "tail", "shifted_percentile"): (
        0.9075,
        0.9400,
        0.8680,
        0.7800,
    ),
}


def choose_methods(
    measured: dict[tuple[str, str, str], tuple[float, ...]],
    nominal: float = 0.95,
    margin: float = 0.0,
) -> dict[str, str]:
    """Per metric, the method with the smallest worst coverage error
    ``|c - nominal|`` over every (group, scenario). Methods are considered in
    the order of :data:`ALL_METHODS` (percentile first), and a later one
    replaces the current choice only if its worst error is smaller by more
    than ``margin`` (the policy uses two Monte-Carlo standard errors, so that
    simulation noise alone does not move a metric off percentile)."""
    worst: dict[str, dict[str, float]] = {}
    for (metric, _group, method), covs in measured.items():
        err = max(abs(c - nominal) for c in covs)
        w = worst.setdefault(metric, {})
        w[method] = max(w.get(method, 0.0), err)
    chosen = {}
    for metric, w in worst.items():
        order = [m for m in ALL_METHODS if m in w]
        best = order[0]
        for m in order[1:]:
            if w[m] < w[best] - margin - 1e-12:
                best = m
        chosen[metric] = best
    return chosen


def _mc_margin(draws: int) -> float:
    """Two Monte-Carlo standard errors of a coverage near 0.95."""
    return 2.0 * math.sqrt(0.95 * 0.05 / draws) if draws > 0 else 0.0


DEFAULT_METHOD: dict[str, str] = choose_methods(MEASURED, margin=_mc_margin(MEASURED_DRAWS))


def default_method(metric: str) -> str:
    """The measured default interval method of ``metric`` (percentile when the
    harness has not measured it)."""
    return DEFAULT_METHOD.get(metric, "percentile")


def trust(metric: str, group: str, method: str) -> tuple[bool, str]:
    """(trusted, reason): whether the harness measured ``method``'s 95 %
    interval for (metric, group) inside :data:`COVERAGE_BAND` in every
    scenario; the reason names the worst measured coverage otherwise."""
    covs = MEASURED.get((metric, group, method))
    if covs is None:
        if not any(k[0] == metric for k in MEASURED):
            return False, f"coverage of {metric} intervals not measured (docs/intervals.md)"
        return False, f"coverage of the {method} interval not measured for {metric}/{group}"
    lo, hi = COVERAGE_BAND
    bad = [(c, s) for c, s in zip(covs, SCENARIOS, strict=True) if not lo <= c <= hi]
    if not bad:
        return True, ""
    c, s = min(bad, key=lambda cs: -abs(cs[0] - 0.95))
    se = math.sqrt(max(c * (1 - c), 1e-4) / max(MEASURED_DRAWS, 1))
    kind = "too narrow" if c < lo else "too wide (conservative)"
    hint = ""
    if metric == "ece":
        hint = "; sample ECE is biased upward: compare calibration with ce2_debiased"
    return False, (
        f"{method} interval {kind}: covered {c:.3f} (MC SE {se:.3f}) of 0.95 in simulated "
        f"scenario '{s}', outside [{lo}, {hi}]{hint} (docs/intervals.md)"
    )


def apply_policy(table: pd.DataFrame, method: Any = "percentile") -> pd.DataFrame:
    """``table`` (rows with ``metric`` and ``group``, e.g. from
    :func:`kdmetrics.paired_bootstrap`) with the columns ``method`` (the
    interval method of the row: one name or one per row), ``trusted`` and
    ``flag_reason`` (empty when trusted) added. Trust is measured at the 95 %
    level; at other levels it is the 95 % verdict. A new DataFrame; the
    argument is not modified."""
    func = "apply_policy"
    for col in ("metric", "group"):
        if col not in table.columns:
            raise InvalidArgumentError(f"{func}: table has no {col!r} column")
    out = table.copy()
    methods = [method] * len(out) if isinstance(method, str) else list(method)
    if len(methods) != len(out):
        raise ShapeError(f"{func}: method has {len(methods)} entries but table has {len(out)} rows")
    for m in set(methods):
        if m not in ALL_METHODS:
            raise InvalidArgumentError(f"{func}: unknown method {m!r}; choose from {ALL_METHODS}")
    flags = [
        trust(str(metric), str(group), m)
        for metric, group, m in zip(out["metric"], out["group"], methods, strict=True)
    ]
    out["method"] = methods
    out["trusted"] = [f[0] for f in flags]
    out["flag_reason"] = [f[1] for f in flags]
    return out
