"""Class tiers (head / mid / tail) by training-set frequency (docs/conventions.md, Tiers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kdmetrics._validation import labels_array

TIER_NAMES: tuple[str, ...] = ("head", "mid", "tail")


def tiers_from_counts(train_counts: Any, sizes: tuple[int, int] = (20, 40)) -> np.ndarray:
    """Tier of each class from its training count: 0 head, 1 mid, 2 tail.

    Classes are ranked by count, descending, ties by class index ascending; the
    first ``sizes[0]`` are head, the next ``sizes[1]`` mid, the rest tail.

    >>> tiers_from_counts([5, 50, 7, 7], sizes=(1, 2)).tolist()
    [2, 0, 1, 1]
    """
    func = "tiers_from_counts"
    counts = np.asarray(train_counts)
    if counts.ndim != 1 or counts.shape[0] == 0:
        raise ValueError(
            f"{func}: train_counts must be a non-empty 1-D array, got shape {counts.shape}"
        )
    if counts.dtype.kind not in "iuf" or (
        counts.dtype.kind == "f" and not np.isfinite(counts).all()
    ):
        raise ValueError(f"{func}: train_counts must be finite numbers, got dtype {counts.dtype}")
    if (counts < 0).any():
        raise ValueError(f"{func}: train_counts must be >= 0, got {counts.min()}")
    if len(sizes) != 2 or any(int(s) != s or s < 0 for s in sizes):
        raise ValueError(f"{func}: sizes must be two non-negative integers, got {sizes!r}")
    head, mid = int(sizes[0]), int(sizes[1])
    if head + mid > counts.shape[0]:
        raise ValueError(
            f"{func}: sizes {sizes} need at least {head + mid} classes, got {counts.shape[0]}"
        )
    order = np.lexsort((np.arange(counts.shape[0]), -counts.astype(np.float64)))
    tiers = np.empty(counts.shape[0], dtype=np.int64)
    tiers[order[:head]] = 0
    tiers[order[head : head + mid]] = 1
    tiers[order[head + mid :]] = 2
    return tiers


def tier_codes(func: str, tier_of_class: Any, n_classes: int) -> np.ndarray:
    """Validates ``tier_of_class`` (codes 0/1/2 or names) and returns int64 codes."""
    arr = np.asarray(tier_of_class)
    if arr.ndim != 1 or arr.shape[0] != n_classes:
        raise ValueError(
            f"{func}: tier_of_class must have one entry per class ({n_classes}), "
            f"got shape {arr.shape}"
        )
    if arr.dtype.kind in "USO":
        names = {n: i for i, n in enumerate(TIER_NAMES)}
        unknown = [v for v in arr.tolist() if v not in names]
        if unknown:
            raise ValueError(
                f"{func}: tier_of_class has unknown tier name {unknown[0]!r}; use {TIER_NAMES}"
            )
        return np.array([names[v] for v in arr.tolist()], dtype=np.int64)
    codes = labels_array(func, arr, "tier_of_class")
    bad = np.flatnonzero((codes < 0) | (codes >= len(TIER_NAMES)))
    if bad.size:
        raise ValueError(
            f"{func}: tier_of_class[{bad[0]}] = {codes[bad[0]]} is not a tier code 0 (head), "
            "1 (mid) or 2 (tail)"
        )
    return codes
