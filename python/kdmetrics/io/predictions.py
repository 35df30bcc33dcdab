"""Prediction files and the alignment check between them.

A prediction file is an ``.npz`` with ``logits`` (N x K), ``labels`` (N),
optionally ``ids`` (N), ``class_names`` (K), ``tier_of_class`` (K) or
``train_counts`` (K), and free-form metadata (``model``, ``seed``, ``T``,
``alpha``, ...): scalars, or arrays of numbers or strings. Nothing is pickled.
A file of probabilities (``save_predictions(..., probs=True)``) stores them
under ``probs`` instead of ``logits``, so no reader can take them for logits.

:func:`load_predictions` also reads other tools' layouts (``.npz`` with other
key names, ``.npy`` pairs, torch ``.pt`` dicts, CSV/Parquet tables: see
:mod:`kdmetrics.io.formats`), always mapped explicitly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kdmetrics._arrays import as_array, check_finite, check_probabilities
from kdmetrics._validation import check_bool, check_label_range, labels_array, scores_array
from kdmetrics.errors import AlignmentError, InvalidArgumentError, ShapeError
from kdmetrics.io.formats import Mapping, read

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
    # True when ``logits`` holds probabilities (pass ``probs=True`` to metrics).
    probs: bool = False

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
    """SHA-256 of an id sequence: the ids as text (``str(id)``), joined by
    newlines, UTF-8.

    Two consequences, kept so that the hashes of existing files stay stable:
    integer ids and their decimal strings hash alike (``[1, 2]`` and
    ``["1", "2"]``: by design, the same examples), and an id containing a
    newline could collide with two ids, which is why :func:`save_predictions`
    refuses such ids.
    """
    arr = as_array("ids_sha256", ids, "ids")
    if arr.ndim != 1:
        raise ShapeError(f"ids_sha256: ids must be 1-D, got shape {arr.shape}")
    text = "\n".join(str(v) for v in arr.tolist())
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
    probs: bool = False,
    allow_nonfinite: bool = False,
    **metadata: Any,
) -> None:
    """Writes a prediction file (uncompressed ``.npz``) after validating it.

    Everything written can be read back by :func:`load_predictions`: a value
    that ``np.savez`` would pickle (a dict, an object array, ids mixing types
    or holding None) is refused here, naming it; ids that are paths become
    strings. NaN or infinite logits are refused unless ``allow_nonfinite``
    (no metric can use them). ``probs=True``: ``logits`` holds probabilities
    (validated: finite, >= 0, rows summing to 1) and is stored as ``probs``.
    """
    func = "save_predictions"
    p = str(path)
    z = scores_array(func, logits, "probs" if probs else "logits")
    y = labels_array(func, labels)
    if probs:
        check_probabilities(func, z, "probs")
    elif not allow_nonfinite:
        check_finite(func, z, "logits")
    ids = None if ids is None else _ids_to_save(func, p, ids)
    _check_lengths(func, p, z, y, ids, class_names, tier_of_class, train_counts)
    arrays: dict[str, Any] = {"probs" if probs else "logits": z, "labels": y}
    for key, value in (
        ("ids", ids),
        ("class_names", class_names),
        ("tier_of_class", tier_of_class),
        ("train_counts", train_counts),
    ):
        if value is not None:
            arrays[key] = _plain_array(func, p, key, value)
    for key, value in metadata.items():
        if key in arrays or key in KNOWN_KEYS or key == "probs":
            raise InvalidArgumentError(f"{func}: metadata key {key!r} clashes with an array")
        if value is not None:
            arrays[key] = _plain_array(func, p, f"metadata {key!r}", value)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _plain_array(func: str, path: str, what: str, value: Any) -> np.ndarray:
    """``value`` as an array ``np.load(allow_pickle=False)`` can read back."""
    if isinstance(value, (dict, set)):
        raise InvalidArgumentError(
            f"{func}: {path}: {what} is a {type(value).__name__}, which would be pickled "
            "and could not be loaded; store scalars or arrays (e.g. json.dumps(value))"
        )
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged lists
        raise InvalidArgumentError(f"{func}: {path}: {what} is not an array ({e})") from None
    if arr.dtype.kind == "O":
        if arr.size and all(isinstance(v, (str, os.PathLike)) for v in arr.ravel().tolist()):
            return np.asarray([os.fspath(v) for v in arr.ravel().tolist()]).reshape(arr.shape)
        kinds = sorted({type(v).__name__ for v in arr.ravel().tolist()})
        raise InvalidArgumentError(
            f"{func}: {path}: {what} holds Python objects ({', '.join(kinds)}), which would be "
            "pickled and could not be loaded; store numbers or strings"
        )
    return arr


def _ids_to_save(func: str, path: str, ids: Any) -> np.ndarray:
    """Ids as a 1-D int or str array (paths become strings)."""
    values = list(ids.tolist() if isinstance(ids, np.ndarray) else ids)
    for i, v in enumerate(values):
        if v is None:
            raise InvalidArgumentError(f"{func}: {path}: ids[{i}] is None")
    arr = _plain_array(func, path, "ids", values)
    if arr.ndim != 1:
        raise ShapeError(f"{func}: {path}: ids must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iuU":
        raise InvalidArgumentError(
            f"{func}: {path}: ids must be integers or strings, got dtype {arr.dtype}"
        )
    if arr.dtype.kind == "U":
        bad = np.flatnonzero(np.char.find(arr, "\n") >= 0)
        if bad.size:
            raise InvalidArgumentError(
                f"{func}: {path}: ids[{int(bad[0])}] contains a newline, which would make "
                "the ids' SHA-256 ambiguous"
            )
    return arr


def _check_lengths(func, path, z, y, ids, class_names, tier_of_class, train_counts) -> None:
    n, k = z.shape
    if y.shape[0] != n:
        raise ShapeError(f"{func}: {path}: labels has {y.shape[0]} entries but logits has {n} rows")
    try:
        check_label_range(func, y, k)
    except ValueError as e:
        raise InvalidArgumentError(f"{path}: {e}") from None
    for key, value, want in (
        ("ids", ids, n),
        ("class_names", class_names, k),
        ("tier_of_class", tier_of_class, k),
        ("train_counts", train_counts, k),
    ):
        if value is not None and np.asarray(value).shape != (want,):
            raise ShapeError(
                f"{func}: {path}: {key} must have shape ({want},), got {np.asarray(value).shape}"
            )
    if ids is not None:
        arr = np.asarray(ids)
        if arr.dtype.kind == "O":
            raise InvalidArgumentError(f"{func}: {path}: ids must be integers or strings")
        uniq, counts = np.unique(arr, return_counts=True)
        if uniq.shape[0] != n:
            dup = uniq[counts > 1][0]
            raise InvalidArgumentError(
                f"{func}: {path}: ids are not unique ({dup.item()!r} appears "
                f"{int(counts[counts > 1][0])} times)"
            )


def load_predictions(
    path: str | os.PathLike[str],
    *,
    logits_key: str | None = None,
    labels_key: str | None = None,
    ids_key: str | None = None,
    probs: bool | None = None,
    fmt: str | None = None,
) -> Predictions:
    """Reads and validates a prediction file; every error names the file.

    ``logits_key``, ``labels_key`` and ``ids_key`` say where the scores,
    labels and ids are (a key of an ``.npz`` or ``.pt`` dict, a ``.npy`` file,
    a table column; see :mod:`kdmetrics.io.formats`); by default the canonical
    ``logits``, ``labels`` and (optional) ``ids``. ``probs=True`` says the
    scores are probabilities (validated here); by default they are logits,
    except in a canonical file that stores them as ``probs``. Nothing is
    guessed from the values. ``fmt`` overrides the layout the extension
    implies (``npz``, ``npy``, ``pt``, ``csv``, ``parquet``).
    """
    func = "load_predictions"
    if probs is not None:
        probs = check_bool(func, "probs", probs)
    p = str(path)
    if not os.path.exists(p):
        raise InvalidArgumentError(f"{func}: {p}: no such file")
    mapping = Mapping(logits_key, labels_key, ids_key)
    raw = read(func, p, mapping, fmt)
    file_probs = bool(raw.extra.pop("__probs__", False))
    is_probs = file_probs if probs is None else bool(probs)
    name = "probs" if file_probs else mapping.logits
    try:
        z = scores_array(func, raw.scores, name)
        y = labels_array(func, raw.labels, mapping.labels)
        if is_probs:
            check_probabilities(func, z, name)
    except ValueError as e:
        raise InvalidArgumentError(f"{p}: {e}") from None
    arrays = raw.extra
    ids = raw.ids
    if ids is not None:
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iuUS":
            raise ShapeError(
                f"{func}: {p}: ids must be a 1-D array of integers or strings, "
                f"got dtype {ids.dtype} and shape {ids.shape}"
            )
    _check_lengths(
        func,
        p,
        z,
        y,
        ids,
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
        ids=ids,
        class_names=arrays.get("class_names"),
        tier_of_class=arrays.get("tier_of_class"),
        train_counts=arrays.get("train_counts"),
        metadata=metadata,
        path=p,
        probs=is_probs,
    )


def checked_labels(func: str, labels: Any, n_classes: int, name: str = "labels") -> np.ndarray:
    """Labels as int64 class indices in ``[0, n_classes)``: float labels, -1
    (an "ignore" marker) and labels >= K are refused, naming the position."""
    y = labels_array(func, labels, name)
    check_label_range(func, y, n_classes, name)
    return y


def check_aligned(files: Sequence[Predictions]) -> str:
    """Checks that prediction files describe the same examples in the same order
    with the same labels and class count; returns the SHA-256 of the ids.

    Files with ids are compared by id; a file without ids must have the same
    length as the others, and then a permutation of rows that share a label
    cannot be seen: save ids. Labels are checked first (integers in
    ``[0, K)``). To reorder files by id instead of refusing them, see
    :func:`kdmetrics.io.align_predictions`. The error names both files and the first position
    where they differ.
    """
    func = "check_aligned"
    if not files:
        raise ShapeError(f"{func}: no prediction files given")
    ref = files[0]
    ref_name = ref.path or ref.name
    for f in files:  # Predictions built by hand were never validated
        checked_labels(func, f.labels, f.n_classes, f"{f.path or f.name}: labels")
    for other in files[1:]:
        name = other.path or other.name
        if other.n_examples != ref.n_examples:
            raise AlignmentError(
                f"{name} has {other.n_examples} examples but {ref_name} has {ref.n_examples}"
            )
        if other.n_classes != ref.n_classes:
            raise AlignmentError(
                f"{name} has {other.n_classes} classes but {ref_name} has {ref.n_classes}"
            )
        if ref.ids is not None and other.ids is not None:
            a, b = ref.ids, other.ids
            diff = np.flatnonzero(a != b) if a.dtype.kind == b.dtype.kind else np.arange(len(a))
            if diff.size:
                i = int(diff[0])
                raise AlignmentError(
                    f"{name}: ids differ from {ref_name} at position {i} "
                    f"({b[i].item()!r} vs {a[i].item()!r}); files must list the same examples "
                    "in the same order (align='id' / --align-by-id reorders by id)"
                )
        diff = np.flatnonzero(ref.labels != other.labels)
        if diff.size:
            i = int(diff[0])
            raise AlignmentError(
                f"{name}: labels differ from {ref_name} at position {i} "
                f"({other.labels[i]} vs {ref.labels[i]}; {diff.size} differences)"
            )
    with_ids = next((f.ids for f in files if f.ids is not None), None)
    return ids_sha256(with_ids if with_ids is not None else np.arange(ref.n_examples))
