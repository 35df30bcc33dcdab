"""Top-1 calibration: binned ECE and the reliability table (docs/conventions.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._validation import check_bool, check_n_bins
from kdmetrics.errors import InvalidArgumentError
from kdmetrics.metrics.scoring import example_stats

STRATEGIES = ("uniform", "quantile")


def check_strategy(func: str, strategy: Any) -> None:
    """``strategy`` is one of :data:`STRATEGIES` (a string; arrays refused)."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise InvalidArgumentError(
            f"{func}: strategy must be one of {STRATEGIES}, got {strategy!r}"
        )


def bin_sums(
    func: str,
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int,
    strategy: str,
    right: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin (count, sum of confidence, sum of correct, lo, hi) in Rust."""
    n_bins = check_n_bins(func, n_bins)
    right = check_bool(func, "right", right)
    check_strategy(func, strategy)
    conf = np.ascontiguousarray(confidence, dtype=np.float64)
    ok = np.ascontiguousarray(correct, dtype=bool)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        count, sum_conf, sum_ok = _kernels.bin_by_edges(func, conf, ok, edges, bool(right))
        return count, sum_conf, sum_ok, edges[:-1], edges[1:]
    if strategy == "quantile":
        (count, sum_conf, sum_ok), lo, hi = _kernels.bin_equal_mass(func, conf, ok, n_bins)
        return count, sum_conf, sum_ok, lo, hi
    raise InvalidArgumentError(f"{func}: strategy must be one of {STRATEGIES}, got {strategy!r}")


def ece_from_sums(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> float:
    """``sum_b |B_b|/n |acc_b - conf_b|`` = ``sum_b |sum_correct_b - sum_conf_b| / n``."""
    return float(np.abs(sum_correct - sum_conf).sum() / count.sum())


def bin_table(
    func: str,
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int,
    strategy: str,
    right: bool,
) -> pd.DataFrame:
    """Per-bin count, mean confidence and accuracy from per-example values."""
    count, sum_conf, sum_ok, lo, hi = bin_sums(func, confidence, correct, n_bins, strategy, right)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, sum_conf / np.maximum(count, 1), np.nan)
        acc = np.where(count > 0, sum_ok / np.maximum(count, 1), np.nan)
    return pd.DataFrame(
        {
            "lo": lo,
            "hi": hi,
            "count": count.astype(np.int64),
            "confidence": mean_conf,
            "accuracy": acc,
            "gap": acc - mean_conf,
            "weight": count / count.sum(),
            # Kept for an exact ECE: |sum_correct - sum_conf| / n per bin.
            "sum_confidence": sum_conf,
            "sum_correct": sum_ok,
        }
    ).rename_axis("bin")


def ece_from_table(table: pd.DataFrame) -> float:
    return ece_from_sums(
        table["count"].to_numpy(),
        table["sum_confidence"].to_numpy(),
        table["sum_correct"].to_numpy(),
    )


def reliability_table(
    labels: Any,
    logits: Any,
    n_bins: int = 15,
    *,
    temperature: float = 1.0,
    strategy: str = "uniform",
    right: bool = True,
    probs: bool = False,
) -> pd.DataFrame:
    """Per-bin table for reliability diagrams: lo, hi, count, mean confidence,
    accuracy, gap (accuracy - confidence) and weight (count / n). Empty bins
    have NaN confidence and accuracy. See :func:`ece` for the binning options.
    """
    s = example_stats("reliability_table", labels, logits, temperature, probs, scores=False)
    return bin_table("reliability_table", s.confidence, s.correct, n_bins, strategy, right)


def ece(
    labels: Any,
    logits: Any,
    n_bins: int = 15,
    *,
    temperature: float = 1.0,
    strategy: str = "uniform",
    right: bool = True,
    probs: bool = False,
) -> float:
    """Top-1 expected calibration error (Guo et al. 2017):
    ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` with confidence ``max_k p_k``.

    ``strategy="uniform"``: ``n_bins`` equal-width bins with edges
    ``np.linspace(0, 1, n_bins + 1)``. ``right=True`` (default) puts ``c`` in
    the bin with ``lo < c <= hi`` (bin 0 also takes ``c = 0``, and a saturated
    ``c = 1.0`` lands in the last bin); ``right=False`` uses ``lo <= c < hi``
    with the last bin closed, which reproduces netcal's ``ECE`` (and
    torchmetrics' ``multiclass_calibration_error`` except exactly at 1.0).
    ``strategy="quantile"``: equal-mass bins, examples sorted by confidence (ties
    by index), bin b holding sorted positions ``[b n / B, (b + 1) n / B)``.
    """
    s = example_stats("ece", labels, logits, temperature, probs, scores=False)
    count, sum_conf, sum_ok, _, _ = bin_sums(
        "ece", s.confidence, s.correct, n_bins, strategy, right
    )
    return ece_from_sums(count, sum_conf, sum_ok)


def bin_ids(
    func: str, confidence: np.ndarray, n_bins: int, strategy: str = "uniform", right: bool = True
) -> np.ndarray:
    """The bin of each example under the same rules as :func:`ece` (NumPy).

    Uniform bins: ``right=True`` puts ``c`` in the bin with ``lo < c <= hi``
    (``c = 0`` in bin 0); ``right=False`` uses ``lo <= c < hi`` with the last
    bin closed. Quantile bins: examples sorted by confidence (ties by index),
    bin b holding sorted positions ``[b n / B, (b + 1) n / B)``.
    """
    n_bins = check_n_bins(func, n_bins)
    check_strategy(func, strategy)
    conf = np.asarray(confidence, dtype=np.float64)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        if right:
            ids = np.searchsorted(edges, conf, side="left") - 1
        else:
            ids = np.searchsorted(edges, conf, side="right") - 1
        return np.clip(ids, 0, n_bins - 1).astype(np.int64)
    if strategy == "quantile":
        n = conf.shape[0]
        order = np.argsort(conf, kind="stable")
        ids = np.empty(n, dtype=np.int64)
        # Bin b starts at sorted position floor(b n / B); empty bins are skipped.
        starts = (np.arange(n_bins, dtype=np.int64) * n) // n_bins
        ids[order] = np.searchsorted(starts, np.arange(n), side="right") - 1
        return ids
    raise InvalidArgumentError(f"{func}: strategy must be one of {STRATEGIES}, got {strategy!r}")


def debiased_l2_from_sums(
    count: np.ndarray, sum_gap: np.ndarray, sum_gap_sq: np.ndarray, n: float | None = None
) -> np.ndarray:
    """Debiased squared binned L2 calibration error from per-bin sums.

    With ``g_i = correct_i - confidence_i``, bin b holding ``n_b`` examples,
    mean gap ``m_b = sum_gap_b / n_b`` and sample variance
    ``s2_b = (sum_gap_sq_b - n_b m_b^2) / (n_b - 1)``, the estimate is
    ``sum_b (n_b / n) (m_b^2 - s2_b / n_b)``: each bin's squared mean gap
    minus its own sampling variance, so that, given the bin counts, it is
    unbiased for ``sum_b (n_b / n) E[g | b]^2``. Bins with fewer than 2
    examples contribute 0. The last axis indexes bins; leading axes
    (resamples, groups) broadcast. ``n`` defaults to ``count.sum(-1)``.
    """
    count = np.asarray(count, dtype=np.float64)
    total = count.sum(axis=-1) if n is None else np.float64(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum_gap / count
        var = (sum_gap_sq - count * mean**2) / (count - 1.0)
        term = np.where(count >= 2, count * (mean**2 - np.maximum(var, 0.0) / count), 0.0)
        return term.sum(axis=-1) / total


def ece_debiased(
    labels: Any,
    logits: Any,
    n_bins: int = 15,
    *,
    temperature: float = 1.0,
    strategy: str = "uniform",
    right: bool = True,
    probs: bool = False,
    squared: bool = False,
) -> float:
    """Debiased binned top-1 L2 calibration error (after Kumar et al. 2019).

    Plain binned ECE (:func:`ece`) is biased upward: sampling noise in each
    bin's gap ``acc - conf`` only adds to ``|gap|``, most for a
    well-calibrated model and for few examples per bin. This estimator works
    on the squared gaps instead, where the noise's contribution is known and
    can be removed: with ``g_i = 1[pred_i = y_i] - max_k p_ik``,

    ``CE2 = sum_b (n_b / n) * (mean_b(g)^2 - var_b(g) / n_b)``

    (``var_b`` the sample variance of ``g`` in bin b, ddof 1; bins with fewer
    than 2 examples contribute 0). Given the bin counts, ``CE2`` is unbiased
    for the population's binned squared calibration error
    ``sum_b P(b) E[g | b]^2``. Kumar et al. subtract the label variance only
    (``acc_b (1 - acc_b) / (n_b - 1)``), which is the same when confidences
    in a bin are equal; the variance of ``g`` also covers the spread of
    confidences within a bin.

    ``squared=True`` returns ``CE2`` itself, which can be slightly negative
    for a well-calibrated model and is the quantity to *compare* (differences
    of ``CE2`` are unbiased; the coverage harness in ``benches/coverage.py``
    measures their bootstrap intervals). The default returns
    ``sqrt(max(CE2, 0))``, on the scale of a calibration gap. Binning options
    as in :func:`ece`.
    """
    func = "ece_debiased"
    s = example_stats(func, labels, logits, temperature, probs, scores=False)
    ids = bin_ids(func, s.confidence, n_bins, strategy, right)
    gap = s.correct.astype(np.float64) - s.confidence.astype(np.float64)
    nb = int(n_bins)
    count = np.bincount(ids, minlength=nb).astype(np.float64)
    sum_gap = np.bincount(ids, weights=gap, minlength=nb)
    sum_gap_sq = np.bincount(ids, weights=gap * gap, minlength=nb)
    ce2 = float(debiased_l2_from_sums(count, sum_gap, sum_gap_sq))
    return ce2 if squared else float(np.sqrt(max(ce2, 0.0)))
