"""Prediction files (SPEC §5) and the alignment check between them.

A prediction file is an ``.npz`` with ``logits`` (N x K), ``labels`` (N),
optionally ``ids`` (N), ``class_names`` (K), ``tier_of_class`` (K) or
``train_counts`` (K), and free-form scalar metadata (``model``, ``seed``,
``T``, ``alpha``, ...). Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kdmetrics._validation import check_label_range, labels_array, scores_array

KNOWN_KEYS = ("logits", "labels", "ids", "class_names", "tier_of_class", "train_counts")


@dataclass(frozen=True)
class Predictions:
    """The contents of one prediction file."""

    logits: np.ndarray
    labels: np.ndarray
    ids: np.ndarray | None = None
    class_names: np.ndarray | None = None
    tier_of_class: np.ndarray | None = None
    train_counts: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def n_examples(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.logits.shape[1])

    @property
    def name(self) -> str:
        return str(
            self.metadata.get("model") or (os.path.basename(self.path) if self.path else "model")
        )

    def ids_or_positions(self) -> np.ndarray:
        return self.ids if self.ids is not None else np.arange(self.n_examples)


def ids_sha256(ids: Any) -> str:
    """SHA-256 of an id sequence: the ids as text, one per line, UTF-8."""
    text = "\n".join(str(v) for v in np.asarray(ids).tolist())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_predictions(
    path: str | os.PathLike[str],
    logits: Any,
    labels: Any,
    *,
    ids: Any = None,
    class_names: Any = None,
    tier_of_class: Any = None,
    train_counts: Any = None,
    **metadata: Any,
) -> None:
    """Writes a prediction file (uncompressed ``.npz``) after validating it."""
    func = "save_predictions"
    z = scores_array(func, logits)
    y = labels_array(func, labels)
    _check_lengths(func, str(path), z, y, ids, class_names, tier_of_class, train_counts)
    arrays: dict[str, Any] = {"logits": z, "labels": y}
    for key, value in (
        ("ids", ids),
        ("class_names", class_names),
        ("tier_of_class", tier_of_class),
        ("train_counts", train_counts),
    ):
        if value is not None:
            arrays[key] = np.asarray(value)
    for key, value in metadata.items():
        if key in arrays:
            raise ValueError(f"{func}: metadata key {key!r} clashes with an array")
        if value is not None:
            arrays[key] = np.asarray(value)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _check_lengths(func, path, z, y, ids, class_names, tier_of_class, train_counts) -> None:
    n, k = z.shape
    if y.shape[0] != n:
        raise ValueError(f"{func}: {path}: labels has {y.shape[0]} entries but logits has {n} rows")
    check_label_range(func, y, k)
    for key, value, want in (
        ("ids", ids, n),
        ("class_names", class_names, k),
        ("tier_of_class", tier_of_class, k),
        ("train_counts", train_counts, k),
    ):
        if value is not None and np.asarray(value).shape != (want,):
            raise ValueError(
                f"{func}: {path}: {key} must have shape ({want},), got {np.asarray(value).shape}"
            )
    if ids is not None and np.unique(np.asarray(ids)).shape[0] != n:
        raise ValueError(f"{func}: {path}: ids are not unique")


def load_predictions(path: str | os.PathLike[str]) -> Predictions:
    """Reads and validates a prediction file; errors name the file."""
    func = "load_predictions"
    p = str(path)
    if not os.path.exists(p):
        raise ValueError(f"{func}: {p}: no such file")
    try:
        npz = np.load(p, allow_pickle=False)
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{func}: {p}: not a readable .npz file ({e})") from None
    with npz:
        keys = set(npz.files)
        missing = [k for k in ("logits", "labels") if k not in keys]
        if missing:
            raise ValueError(f"{func}: {p}: missing key(s) {missing}; found {sorted(keys)}")
        try:
            arrays = {k: npz[k] for k in npz.files}
        except ValueError as e:
            raise ValueError(f"{func}: {p}: {e}") from None
    try:
        z = scores_array(func, arrays["logits"])
        y = labels_array(func, arrays["labels"])
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None
    _check_lengths(
        func,
        p,
        z,
        y,
        arrays.get("ids"),
        arrays.get("class_names"),
        arrays.get("tier_of_class"),
        arrays.get("train_counts"),
    )
    metadata = {
        k: (v.item() if v.ndim == 0 else v) for k, v in arrays.items() if k not in KNOWN_KEYS
    }
    return Predictions(
        logits=z,
        labels=y,
        ids=arrays.get("ids"),
        class_names=arrays.get("class_names"),
        tier_of_class=arrays.get("tier_of_class"),
        train_counts=arrays.get("train_counts"),
        metadata=metadata,
        path=p,
    )


def check_aligned(files: Sequence[Predictions]) -> str:
    """Checks that prediction files describe the same examples in the same order
    with the same labels and class count; returns the SHA-256 of the ids.

    Files with ids are compared by id; a file without ids must have the same
    length as the others. The error names both files and the first position
    where they differ.
    """
    func = "check_aligned"
    if not files:
        raise ValueError(f"{func}: no prediction files given")
    ref = files[0]
    ref_name = ref.path or ref.name
    for other in files[1:]:
        name = other.path or other.name
        if other.n_examples != ref.n_examples:
            raise ValueError(
                f"{name} has {other.n_examples} examples but {ref_name} has {ref.n_examples}"
            )
        if other.n_classes != ref.n_classes:
            raise ValueError(
                f"{name} has {other.n_classes} classes but {ref_name} has {ref.n_classes}"
            )
        if ref.ids is not None and other.ids is not None:
            a, b = ref.ids, other.ids
            diff = np.flatnonzero(a != b) if a.dtype.kind == b.dtype.kind else np.arange(len(a))
            if diff.size:
                i = int(diff[0])
                raise ValueError(
                    f"{name}: ids differ from {ref_name} at position {i} "
                    f"({b[i]!r} vs {a[i]!r}); files must list the same examples in the same order"
                )
        diff = np.flatnonzero(ref.labels != other.labels)
        if diff.size:
            i = int(diff[0])
            raise ValueError(
                f"{name}: labels differ from {ref_name} at position {i} "
                f"({other.labels[i]} vs {ref.labels[i]}; {diff.size} differences)"
            )
    with_ids = next((f.ids for f in files if f.ids is not None), None)
    return ids_sha256(with_ids if with_ids is not None else np.arange(ref.n_examples))
