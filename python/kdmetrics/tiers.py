"""Class tiers (head / mid / tail) by training-set frequency (docs/conventions.md, Tiers)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from kdmetrics._arrays import as_array
from kdmetrics._validation import labels_array
from kdmetrics.errors import (
    InvalidArgumentError,
    NonFiniteError,
    OutOfRangeError,
    ShapeError,
)

TIER_NAMES: tuple[str, ...] = ("head", "mid", "tail")


def tiers_from_counts(train_counts: Any, sizes: tuple[int, int] = (20, 40)) -> np.ndarray:
    """Tier of each class from its training count: 0 head, 1 mid, 2 tail.

    Classes are ranked by count, descending, ties by class index ascending; the
    first ``sizes[0]`` are head, the next ``sizes[1]`` mid, the rest tail.

    >>> tiers_from_counts([5, 50, 7, 7], sizes=(1, 2)).tolist()
    [2, 0, 1, 1]
    """
    func = "tiers_from_counts"
    counts = as_array(func, train_counts, "train_counts")
    if counts.ndim != 1 or counts.shape[0] == 0:
        raise ShapeError(
            f"{func}: train_counts must be a non-empty 1-D array, got shape {counts.shape}"
        )
    if counts.dtype.kind not in "iuf" or (
        counts.dtype.kind == "f" and not np.isfinite(counts).all()
    ):
        if counts.dtype.kind == "f":
            i = int(np.flatnonzero(~np.isfinite(counts))[0])
            raise NonFiniteError(
                f"{func}: train_counts must be finite numbers, got {counts[i]} at [{i}]", i, None
            )
        raise InvalidArgumentError(
            f"{func}: train_counts must be finite numbers, got dtype {counts.dtype}"
        )
    if (counts < 0).any():
        raise InvalidArgumentError(f"{func}: train_counts must be >= 0, got {counts.min()}")
    head, mid = tier_sizes(func, sizes)
    if head + mid > counts.shape[0]:
        raise ShapeError(
            f"{func}: sizes {sizes} need at least {head + mid} classes, got {counts.shape[0]}"
        )
    order = np.lexsort((np.arange(counts.shape[0]), -counts.astype(np.float64)))
    tiers = np.empty(counts.shape[0], dtype=np.int64)
    tiers[order[:head]] = 0
    tiers[order[head : head + mid]] = 1
    tiers[order[head + mid :]] = 2
    return tiers


def tier_sizes(func: str, sizes: Any) -> tuple[int, int]:
    """``sizes`` as ``(head, mid)``: two non-negative integers."""
    if (
        isinstance(sizes, str | bytes)
        or not isinstance(sizes, Sequence | np.ndarray)
        or (isinstance(sizes, np.ndarray) and sizes.ndim != 1)
        or len(sizes) != 2
        or any(
            isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral) or v < 0
            for v in sizes
        )
    ):
        raise InvalidArgumentError(
            f"{func}: sizes must be two non-negative integers (head, mid), got {sizes!r}"
        )
    return int(sizes[0]), int(sizes[1])


def tier_codes(func: str, tier_of_class: Any, n_classes: int) -> np.ndarray:
    """Validates ``tier_of_class`` (codes 0/1/2 or names) and returns int64 codes."""
    arr = as_array(func, tier_of_class, "tier_of_class")
    if arr.ndim != 1 or arr.shape[0] != n_classes:
        raise ShapeError(
            f"{func}: tier_of_class must have one entry per class ({n_classes}), "
            f"got shape {arr.shape}"
        )
    if arr.dtype.kind in "USO":
        names = {n: i for i, n in enumerate(TIER_NAMES)}
        unknown = [v for v in arr.tolist() if not isinstance(v, str) or v not in names]
        if unknown:
            raise InvalidArgumentError(
                f"{func}: tier_of_class has unknown tier name {unknown[0]!r}; use {TIER_NAMES}"
            )
        return np.array([names[v] for v in arr.tolist()], dtype=np.int64)
    codes = labels_array(func, arr, "tier_of_class")
    bad = np.flatnonzero((codes < 0) | (codes >= len(TIER_NAMES)))
    if bad.size:
        i = int(bad[0])
        raise OutOfRangeError(
            f"{func}: tier_of_class[{i}] = {codes[i]} is not a tier code 0 (head), "
            "1 (mid) or 2 (tail)",
            i,
            int(codes[i]),
            len(TIER_NAMES),
        )
    return codes
