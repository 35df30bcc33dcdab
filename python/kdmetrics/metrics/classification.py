"""Capacity: accuracy, balanced accuracy, confusion counts, per-class and macro F1.

Every function takes ``(labels, logits_or_preds)``: a 2-D float array is read as
logits (prediction = argmax, ties to the lowest class index, as NumPy does), a
1-D integer array as predicted classes.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._arrays import as_array
from kdmetrics._validation import (
    MAX_CLASSES,
    check_int,
    check_label_range,
    check_rows,
    labels_and_scores,
    labels_array,
    n_classes_of,
)
from kdmetrics.errors import AlignmentError, InvalidArgumentError, ShapeError

ZeroDivision = Any  # "exclude", 0.0 or 1.0


def predictions(func: str, labels: Any, logits_or_preds: Any, n_classes: int | None = None):
    """Validated ``(labels, preds, n_classes)`` from logits or predicted classes."""
    arr = as_array(func, logits_or_preds, "logits_or_preds")
    if arr.ndim == 2:
        y, z = labels_and_scores(func, labels, arr)
        if n_classes is not None and n_classes != z.shape[1]:
            raise AlignmentError(
                f"{func}: n_classes={n_classes!r} but logits has {z.shape[1]} classes"
            )
        pred = _kernels.predict(func, z)
        return y, pred, z.shape[1]
    if arr.ndim != 1:
        raise ShapeError(
            f"{func}: logits_or_preds must be 2-D logits or 1-D predicted classes, "
            f"got shape {arr.shape}"
        )
    y = labels_array(func, labels)
    p = labels_array(func, arr, "preds")
    check_rows(func, y.shape[0], "preds", p.shape[0], "labels")
    if n_classes is None:
        n_classes = n_classes_of(func, y, p, names=("labels", "preds"))
    else:
        n_classes = check_int(func, "n_classes", n_classes, 1, MAX_CLASSES)
    check_label_range(func, y, n_classes)
    check_label_range(func, p, n_classes, "preds")
    return y, p, int(n_classes)


def counts(func: str, labels: Any, logits_or_preds: Any, n_classes: int | None = None):
    """(tp, fp, fn) per class as int64 arrays, and the labels and predictions."""
    y, p, k = predictions(func, labels, logits_or_preds, n_classes)
    tp, fp, fn = _kernels.confusion_counts(func, y, p, k)
    return tp, fp, fn, y, p


def accuracy(labels: Any, logits_or_preds: Any) -> float:
    """Micro accuracy, the mean of ``pred == label``."""
    _, y, p = counts("accuracy", labels, logits_or_preds)[2:]
    return float(np.mean(y == p))


def balanced_accuracy(labels: Any, logits_or_preds: Any) -> float:
    """Mean per-class recall over the classes present in ``labels``
    (scikit-learn's ``balanced_accuracy_score``). Not called accuracy."""
    tp, _, fn, _, _ = counts("balanced_accuracy", labels, logits_or_preds)
    support = tp + fn
    present = support > 0
    return float(np.mean(tp[present] / support[present]))


def confusion_counts(
    labels: Any, logits_or_preds: Any, *, n_classes: int | None = None
) -> pd.DataFrame:
    """Per-class TP, FP, FN and support (``TP + FN``) over all examples."""
    tp, fp, fn, _, _ = counts("confusion_counts", labels, logits_or_preds, n_classes)
    df = pd.DataFrame({"tp": tp, "fp": fp, "fn": fn, "support": tp + fn})
    df.index.name = "class"
    return df


def check_zero_division(func: str, zero_division: ZeroDivision) -> float | None:
    if isinstance(zero_division, str):
        if zero_division == "exclude":
            return None
    elif (
        isinstance(zero_division, numbers.Real)
        and not isinstance(zero_division, bool | np.bool_)
        and zero_division in (0, 1)
    ):
        return float(zero_division)
    raise InvalidArgumentError(
        f"{func}: zero_division must be 'exclude', 0.0 or 1.0, got {zero_division!r}"
    )


def f1_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, fill: float | None
) -> np.ndarray:
    """``2 TP / (2 TP + FP + FN)``; classes with ``TP + FP + FN = 0`` get ``fill``
    (NaN for 'exclude')."""
    denom = 2 * tp + fp + fn
    f1 = np.full(tp.shape, np.nan if fill is None else fill, dtype=np.float64)
    np.divide(2 * tp, denom, out=f1, where=denom > 0)
    return f1


def f1_per_class(
    labels: Any,
    logits_or_preds: Any,
    *,
    n_classes: int | None = None,
    zero_division: ZeroDivision = "exclude",
) -> np.ndarray:
    """Per-class F1 from counts over all examples, ``2 TP / (2 TP + FP + FN)``.

    A class absent from both labels and predictions (``TP + FP + FN = 0``) is
    NaN under ``zero_division="exclude"`` (the default), else 0.0 or 1.0.
    With predicted classes, ``n_classes`` defaults to ``max(labels, preds) + 1``.
    """
    fill = check_zero_division("f1_per_class", zero_division)
    tp, fp, fn, _, _ = counts("f1_per_class", labels, logits_or_preds, n_classes)
    return f1_from_counts(tp, fp, fn, fill)


def macro_f1(
    labels: Any,
    logits_or_preds: Any,
    *,
    classes: Any = None,
    n_classes: int | None = None,
    zero_division: ZeroDivision = "exclude",
) -> float:
    """Mean per-class F1 over ``classes`` (default: all), counts from all examples.

    With ``zero_division="exclude"`` classes with ``TP + FP + FN = 0`` are left
    out, which equals scikit-learn's ``f1_score(average="macro")`` with
    ``labels=None``. ``classes`` (indices or a boolean mask of length K) gives a
    tier's macro F1: a tail class predicted for a head example still counts as a
    tail false positive. NaN when no class of the set is defined.
    """
    func = "macro_f1"
    fill = check_zero_division(func, zero_division)
    tp, fp, fn, _, _ = counts(func, labels, logits_or_preds, n_classes)
    f1 = f1_from_counts(tp, fp, fn, fill)
    if classes is not None:
        f1 = f1[class_subset(func, classes, f1.shape[0])]
    return mean_defined(f1)


def class_subset(func: str, classes: Any, n_classes: int) -> np.ndarray:
    sel = as_array(func, classes, "classes")
    if sel.dtype == bool:
        if sel.shape != (n_classes,):
            raise ShapeError(
                f"{func}: classes as a mask must have length {n_classes}, got shape {sel.shape}"
            )
        return sel
    idx = labels_array(func, sel, "classes")
    check_label_range(func, idx, n_classes, "classes")
    # A class listed twice would count twice in the mean: refuse, never guess.
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1].tolist()
        raise InvalidArgumentError(f"{func}: classes lists class(es) {dup} more than once")
    return idx


def mean_defined(values: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN when there are none."""
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")
