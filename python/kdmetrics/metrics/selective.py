"""Selective prediction: coverage and accuracy behind a confidence threshold."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from kdmetrics._arrays import as_array
from kdmetrics._validation import check_float
from kdmetrics.errors import InvalidArgumentError
from kdmetrics.metrics.scoring import example_stats

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def threshold_table(
    labels: Any,
    logits: Any,
    thresholds: Any = DEFAULT_THRESHOLDS,
    *,
    temperature: float = 1.0,
    probs: bool = False,
) -> pd.DataFrame:
    """For each threshold t: the examples kept (confidence ``c >= t``), coverage
    (their fraction) and accuracy among them (NaN when none is kept)."""
    func = "threshold_table"
    t = as_array(func, thresholds, "thresholds")
    if t.dtype.kind not in "iuf" or t.ndim != 1 or t.size == 0 or not np.isfinite(t).all():
        raise InvalidArgumentError(
            f"{func}: thresholds must be a non-empty 1-D list of finite numbers, got {thresholds!r}"
        )
    t = t.astype(np.float64)
    s = example_stats(func, labels, logits, temperature, probs, scores=False)
    return coverage_table(s.confidence, s.correct, t)


def coverage_table(
    confidence: np.ndarray, correct: np.ndarray, thresholds: np.ndarray
) -> pd.DataFrame:
    order = np.argsort(-confidence, kind="stable")
    conf_desc = confidence[order]
    cum_ok = np.concatenate([[0], np.cumsum(correct[order])])
    # number of examples with c >= t: conf_desc is descending, so search the negation.
    kept = np.searchsorted(-conf_desc, -thresholds, side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(kept > 0, cum_ok[kept] / np.maximum(kept, 1), np.nan)
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "n_kept": kept.astype(np.int64),
            "coverage": kept / confidence.shape[0],
            "accuracy": acc,
        }
    )


class SLAThreshold(NamedTuple):
    """The lowest confidence threshold meeting a target accuracy."""

    target: float
    threshold: float
    coverage: float
    accuracy: float
    n_kept: int


def sla_threshold(
    labels: Any,
    logits: Any,
    target: float = 0.95,
    *,
    temperature: float = 1.0,
    probs: bool = False,
) -> SLAThreshold:
    """The lowest threshold t, searched exactly over the observed confidences,
    whose kept set ``{c >= t}`` reaches accuracy ``>= target``; with its coverage.
    Accuracy is not monotone in t, so every distinct confidence is checked.
    When no threshold reaches the target: threshold NaN, coverage 0.
    """
    func = "sla_threshold"
    target = check_float(func, "target", target)
    if not 0.0 < target <= 1.0:
        raise InvalidArgumentError(f"{func}: target must be in (0, 1], got {target!r}")
    s = example_stats(func, labels, logits, temperature, probs, scores=False)
    return sla_from(s.confidence, s.correct, float(target))


def sla_from(confidence: np.ndarray, correct: np.ndarray, target: float) -> SLAThreshold:
    order = np.argsort(-confidence, kind="stable")
    conf_desc = confidence[order]
    cum_ok = np.cumsum(correct[order])
    # The kept set for t = a distinct value ends at the last occurrence of it.
    last = np.flatnonzero(np.append(conf_desc[1:] != conf_desc[:-1], True))
    kept = last + 1
    acc = cum_ok[last] / kept
    good = np.flatnonzero(acc >= target)
    n = confidence.shape[0]
    if good.size == 0:
        return SLAThreshold(target, float("nan"), 0.0, float("nan"), 0)
    j = good[-1]  # lowest threshold = furthest down the descending order
    return SLAThreshold(
        target, float(conf_desc[last[j]]), float(kept[j] / n), float(acc[j]), int(kept[j])
    )
