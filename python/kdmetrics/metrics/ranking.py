"""Top-k accuracy: is the true label among the k highest-scoring classes?"""

from __future__ import annotations

from typing import Any

import numpy as np

from kdmetrics import _kernels
from kdmetrics._arrays import as_array
from kdmetrics._validation import check_int, labels_and_scores
from kdmetrics.errors import ShapeError


def top_k_hits(func: str, labels: Any, logits: Any, k: int = 5) -> np.ndarray:
    """Per example, 1.0 when the label is among the ``k`` top classes, else 0.0.

    Ranks follow the argmax tie rule (ties go to the lower class index): the
    label's rank is the number of classes scoring strictly higher plus the
    number of lower-indexed classes scoring the same. With ``k = 1`` this is
    exactly ``pred == label``. (A Rust kernel, parallel over rows; it refuses
    NaN and infinite scores like every kernel.)
    """
    k = check_int(func, "k", k, minimum=1)
    arr = as_array(func, logits, "logits")
    if arr.ndim != 2:
        raise ShapeError(f"{func}: logits must be 2-D (examples x classes), got shape {arr.shape}")
    y, z = labels_and_scores(func, labels, arr)
    return _kernels.top_k_hits(func, z, y, k)


def top_k_accuracy(labels: Any, logits: Any, *, k: int = 5) -> float:
    """Fraction of examples whose true label is among the ``k`` highest logits.

    Ties follow the argmax rule (lower class index first), so ``k=1`` equals
    :func:`kdmetrics.accuracy`. Higher is better.
    """
    return float(top_k_hits("top_k_accuracy", labels, logits, k).mean())
