"""Top-1 calibration: binned ECE and the reliability table (SPEC §2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._validation import check_bool, check_n_bins
from kdmetrics.errors import InvalidArgumentError
from kdmetrics.metrics.scoring import example_stats

STRATEGIES = ("uniform", "quantile")


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
