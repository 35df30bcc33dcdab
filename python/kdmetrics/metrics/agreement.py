"""Agreement between two models' top-1 predictions, whatever the label.

``teacher_agreement`` (top-1 fidelity, Stanton et al. 2021) is a property of
one model measured against a reference; ``churn`` is its complement between
two models (the fraction of examples whose predicted class changes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kdmetrics import _kernels
from kdmetrics._arrays import as_array
from kdmetrics._validation import check_rows, scores_array
from kdmetrics.errors import InvalidArgumentError, ShapeError


def predicted_classes(func: str, scores: Any, name: str) -> np.ndarray:
    """Argmax of 2-D logits (or probabilities: same argmax), or 1-D predicted classes."""
    arr = as_array(func, scores, name)
    if arr.ndim == 1:
        if arr.dtype.kind not in "iu":
            raise InvalidArgumentError(
                f"{func}: {name} must be 2-D logits or 1-D integer predictions, got dtype "
                f"{arr.dtype}"
            )
        if arr.shape[0] == 0:
            raise ShapeError(f"{func}: {name} is empty")
        return np.ascontiguousarray(arr, dtype=np.int64)
    z = scores_array(func, arr, name)
    return _kernels.predict(func, z, name)


def agreement_hits(func: str, logits: Any, reference_logits: Any, names=("logits", "reference")):
    """Per example, 1.0 where the two models predict the same class."""
    a = predicted_classes(func, logits, names[0])
    b = predicted_classes(func, reference_logits, names[1])
    check_rows(func, b.shape[0], names[0], a.shape[0], names[1])
    return (a == b).astype(np.float64)


def teacher_agreement(logits: Any, reference_logits: Any) -> float:
    """Top-1 agreement: fraction of examples where the model's argmax equals the
    reference's (the teacher's). Needs no labels. Higher is better.

    Either argument may be 2-D logits (probabilities give the same argmax) or
    1-D predicted classes.
    """
    func = "teacher_agreement"
    return float(
        agreement_hits(func, logits, reference_logits, ("logits", "reference_logits")).mean()
    )


def churn(logits_a: Any, logits_b: Any) -> float:
    """Prediction churn: fraction of examples whose argmax differs between
    model A and model B, whatever the label (``1 - agreement``). Symmetric.
    Lower means the two models behave more alike.
    """
    func = "churn"
    return float(1.0 - agreement_hits(func, logits_a, logits_b, ("logits_a", "logits_b")).mean())
