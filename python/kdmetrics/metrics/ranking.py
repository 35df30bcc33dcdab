"""Top-k accuracy: is the true label among the k highest-scoring classes?"""

from __future__ import annotations

from typing import Any

import numpy as np

from kdmetrics._arrays import as_array
from kdmetrics._validation import check_int
from kdmetrics.errors import ShapeError
from kdmetrics.metrics.classification import predictions

# Rows per block when ranking: bounds the boolean temporary to ~4 MB.
_BLOCK_ROWS = 32_768


def top_k_hits(func: str, labels: Any, logits: Any, k: int = 5) -> np.ndarray:
    """Per example, 1.0 when the label is among the ``k`` top classes, else 0.0.

    Ranks follow the argmax tie rule (ties go to the lower class index): the
    label's rank is the number of classes scoring strictly higher plus the
    number of lower-indexed classes scoring the same. With ``k = 1`` this is
    exactly ``pred == label``.
    """
    k = check_int(func, "k", k, minimum=1)
    arr = as_array(func, logits, "logits")
    if arr.ndim != 2:
        raise ShapeError(f"{func}: logits must be 2-D (examples x classes), got shape {arr.shape}")
    # Validates labels, dtype and finiteness (the Rust pass refuses NaN/inf).
    y, _, n_classes = predictions(func, labels, arr)
    if k >= n_classes:  # every label is among the top K classes
        return np.ones(y.shape[0], dtype=np.float64)
    hits = np.empty(y.shape[0], dtype=np.float64)
    cols = np.arange(n_classes)
    for start in range(0, y.shape[0], _BLOCK_ROWS):
        z = arr[start : start + _BLOCK_ROWS]
        if z.dtype == np.float16:
            # Exact (float16 -> float32 is lossless), and NumPy compares
            # float32 several times faster than its emulated float16.
            z = z.astype(np.float32)
        yy = y[start : start + _BLOCK_ROWS]
        z_true = z[np.arange(z.shape[0]), yy][:, None]
        higher = np.count_nonzero(z > z_true, axis=1)
        tied_before = np.count_nonzero((z == z_true) & (cols[None, :] < yy[:, None]), axis=1)
        hits[start : start + z.shape[0]] = (higher + tied_before) < k
    return hits


def top_k_accuracy(labels: Any, logits: Any, *, k: int = 5) -> float:
    """Fraction of examples whose true label is among the ``k`` highest logits.

    Ties follow the argmax rule (lower class index first), so ``k=1`` equals
    :func:`kdmetrics.accuracy`. Higher is better.
    """
    return float(top_k_hits("top_k_accuracy", labels, logits, k).mean())
