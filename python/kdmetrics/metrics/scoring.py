"""Proper scoring rules over the full distribution: NLL and multi-class Brier."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from kdmetrics import _kernels
from kdmetrics._arrays import Rows, per_row
from kdmetrics._validation import (
    check_bool,
    check_label_range,
    check_rows,
    check_temperature,
    labels_array,
)


class ExampleStats(NamedTuple):
    """Per-example quantities of one pass over the logits."""

    labels: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    nll: np.ndarray | None
    brier: np.ndarray | None

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(nll, brier) per example; only for stats computed with ``scores=True``."""
        if self.nll is None or self.brier is None:
            raise RuntimeError("NLL and Brier were not computed (scores=False)")
        return self.nll, self.brier


def example_stats(
    func: str,
    labels: Any,
    logits: Any,
    temperature: float = 1.0,
    probs: bool = False,
    name: str = "logits",
    scores: bool = True,
) -> ExampleStats:
    """Validates and runs the Rust pass: prediction and confidence per example,
    and NLL and Brier unless ``scores=False`` (then they are None: ECE needs
    neither, and skipping them saves a pass)."""
    t = check_temperature(func, temperature)
    probs = check_bool(func, "probs", probs)
    y = labels_array(func, labels)
    z = Rows(func, logits, name)
    check_rows(func, y.shape[0], name, z.shape[0], "labels")
    check_label_range(func, y, z.shape[1])
    # Probabilities (and bfloat16 / device tensors) go to the kernel a block of
    # rows at a time, as log-probabilities: no full-size copy.
    pred, conf, nll_, brier_ = per_row(
        func,
        [(z, bool(probs))],
        lambda rows, b: _kernels.example_stats(
            func,
            b,
            y[rows] if scores else None,
            t,
            log_probs=bool(probs),
            name=name,
        ),
    )
    return ExampleStats(y, pred, conf, nll_, brier_)


def nll(
    labels: Any,
    logits: Any,
    *,
    temperature: float = 1.0,
    probs: bool = False,
    per_example: bool = False,
) -> float | np.ndarray:
    """Negative log-likelihood in nats: mean of ``logsumexp(z/T) - z_y/T``.

    Accumulated in float64 with no clipping, unlike scikit-learn's ``log_loss``,
    which clips probabilities at the dtype's epsilon (so a confidently wrong
    prediction costs ~36 nats there and its true value here; an exactly zero
    probability is ``inf``). ``probs=True`` reads probabilities instead of logits.
    """
    per_example = check_bool("nll", "per_example", per_example)
    values, _ = example_stats("nll", labels, logits, temperature, probs).scores()
    return values if per_example else float(values.mean())


def brier(
    labels: Any,
    logits: Any,
    *,
    temperature: float = 1.0,
    probs: bool = False,
    per_example: bool = False,
) -> float | np.ndarray:
    """Multi-class Brier score: mean of ``sum_k (p_k - [k = y])^2``, in [0, 2].

    This is the original (Brier 1950) multi-class score; scikit-learn's
    ``brier_score_loss`` for binary problems is half of it at K = 2.
    """
    per_example = check_bool("brier", "per_example", per_example)
    _, values = example_stats("brier", labels, logits, temperature, probs).scores()
    return values if per_example else float(values.mean())
