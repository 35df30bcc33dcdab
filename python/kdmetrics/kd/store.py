"""Teacher logits for training: memory-mapped, id-checked, fetched by index.

A teacher file holds ``logits`` (N x K, float16/32/64) and ``ids`` (N) in the
training set's order, either as

- an uncompressed ``.npz`` (what :func:`save_teacher_logits` writes): the
  ``logits`` member is memory-mapped in place, at its offset inside the zip
  (``np.load(mmap_mode=...)`` silently ignores ``mmap_mode`` for ``.npz``).
  A *compressed* ``.npz`` cannot be mapped; it is loaded whole, and a
  ``.npy`` is the better choice for very large teachers;
- a ``.npy`` of logits (``np.load(mmap_mode="r")``) with its ids in the
  sidecar ``<name>.ids.npy`` or passed as ``ids=``.

Only the rows of a batch are read and upcast to float32
(:meth:`TeacherLogits.fetch`). Rows are fetched by the example index the data
loader carries, never by batch position, so a shuffled loader gets the right
rows. :meth:`TeacherLogits.check_aligned` refuses a teacher whose length, id
order or class count differ from the training set's, naming the first bad
position, and warns (:class:`NearChanceTeacherWarning`) when the teacher's
argmax accuracy on the training labels is near chance, the signature of a
misaligned file.

Integrity: opening a teacher reads it once, in chunks, and refuses

- a damaged ``.npz`` member: a memory-mapped member bypasses the zip reader,
  so its CRC-32 is verified by streaming the member through :mod:`zipfile`
  first (about the cost of reading the file once; a compressed member is
  checked by NumPy as it is loaded);
- NaN or infinite logits (e.g. a float16 overflow when the file was saved),
  which would otherwise drop rows from the KD term and poison the gradients;
- a single class (K = 1).

What the alignment check cannot see: it trusts the ids. A file whose *rows*
were permuted or shifted while its ``ids`` stayed in training order passes
the id check; the only defence is the accuracy test above, which warns for a
full shuffle or shift (accuracy falls to about chance) but not for a partial
one (say 15 % of rows shuffled), and runs only when labels are passed
(:func:`kdmetrics.kd.train` always passes them). Write teacher files from the
same ordered data set the student trains on.
"""

from __future__ import annotations

import hashlib
import os
import struct
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kdmetrics.errors import (
    AlignmentError,
    InvalidArgumentError,
    NonFiniteError,
    OutOfRangeError,
    ShapeError,
)
from kdmetrics.io.predictions import ids_sha256
from kdmetrics.kd.config import IGNORE_INDEX

_CHUNK_BYTES = 1 << 24  # read files in 16 MiB pieces


class NearChanceTeacherWarning(UserWarning):
    """The teacher's argmax accuracy on the training labels is near chance."""


def near_chance_threshold(labels: np.ndarray, n_classes: int) -> tuple[float, float]:
    """``(chance, threshold)``: chance is the accuracy of always predicting the
    most frequent training label (at least ``1/K``); a teacher warns below
    ``min(2 · chance, (1 + chance) / 2)``.

    A misaligned teacher (rows shifted or shuffled against the labels) scores
    ``Σ_c π_c ρ_c ≤ max_c π_c`` in expectation, i.e. at most chance; any
    teacher worth distilling is well above twice that. The ``(1 + chance)/2``
    cap keeps the rule meaningful when one class dominates.
    """
    counts = np.bincount(labels, minlength=n_classes)
    chance = max(float(counts.max()) / max(labels.shape[0], 1), 1.0 / n_classes)
    return chance, min(2.0 * chance, (1.0 + chance) / 2.0)


def _ids_array(ids: Any) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    return arr


def _has_duplicates(ids: np.ndarray) -> bool:
    # Sort and compare neighbours: several times faster than np.unique's hash
    # path on millions of ids.
    s = np.sort(ids, kind="stable")
    return bool((s[1:] == s[:-1]).any())


def _first_mismatch(a: np.ndarray, b: np.ndarray) -> int | None:
    """First position where two equal-length id arrays differ (compared as
    text when their kinds differ, so ids 7 and "7" agree)."""
    if a.dtype.kind != b.dtype.kind and not (a.dtype.kind in "iu" and b.dtype.kind in "iu"):
        a, b = a.astype(str), b.astype(str)
    diff = np.flatnonzero(a != b)
    return int(diff[0]) if diff.size else None


def _mmap_npz_member(path: str, member: str) -> np.ndarray | None:
    """Memory-maps ``member`` of an uncompressed ``.npz``; None when compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as f:
            # The local header repeats name and extra with its own lengths.
            f.seek(info.header_offset)
            local = f.read(30)
            if local[:4] != b"PK\x03\x04":
                raise InvalidArgumentError(f"{path}: corrupt zip header for {member}")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            f.seek(start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            data_offset = f.tell()
    if dtype.hasobject:
        raise InvalidArgumentError(f"{path}: {member} holds Python objects; save logits as floats")
    return np.memmap(
        path, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C", offset=data_offset
    )


def _verify_member_crc(path: str, member: str) -> None:
    """Streams ``member`` through zipfile, which checks its CRC-32 at the end."""
    with zipfile.ZipFile(path) as zf, zf.open(member) as f:
        while f.read(_CHUNK_BYTES):
            pass


def _check_finite(func: str, name: str, logits: np.ndarray) -> None:
    """Refuses NaN/inf logits, reading row blocks (a memory map stays mapped)."""
    rows = max(1, _CHUNK_BYTES // max(1, logits.shape[1] * logits.dtype.itemsize))
    for start in range(0, logits.shape[0], rows):
        block = np.asarray(logits[start : start + rows])
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise NonFiniteError(
                f"{func}: {name}: logits row {start + int(bad[0])} holds NaN or inf "
                f"({bad.size}+ row(s)); teacher logits must be finite (a float16 overflow "
                "when the file was saved?)",
                start + int(bad[0]),
                None,
            )


def _sidecar(path: str) -> str:
    return path[: -len(".npy")] + ".ids.npy"


@dataclass
class TeacherLogits:
    """One teacher's logits over the training set; see the module docstring."""

    logits: np.ndarray
    ids: np.ndarray
    path: str | None = None
    _row_of_id: dict[Any, int] | None = field(default=None, repr=False)
    _file_sha256: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        func = "TeacherLogits"
        if self.logits.ndim != 2 or self.logits.dtype.kind != "f":
            raise ShapeError(
                f"{func}: {self.name}: logits must be a 2-D float array, "
                f"got shape {self.logits.shape} dtype {self.logits.dtype}"
            )
        self.ids = _ids_array(self.ids)
        if self.ids.shape != (self.logits.shape[0],):
            raise ShapeError(
                f"{func}: {self.name}: ids must have shape ({self.logits.shape[0]},), "
                f"got {self.ids.shape}"
            )
        if _has_duplicates(self.ids):
            raise InvalidArgumentError(f"{func}: {self.name}: ids are not unique")
        if self.logits.shape[1] < 2:
            raise ShapeError(
                f"{func}: {self.name}: logits have {self.logits.shape[1]} class(es); "
                "a teacher needs at least 2"
            )
        _check_finite(func, self.name, self.logits)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, ids: Any = None) -> TeacherLogits:
        """Opens a teacher file memory-mapped (``.npz`` or ``.npy``; see module doc)."""
        func = "TeacherLogits.open"
        p = os.fspath(path)
        if not os.path.exists(p):
            raise InvalidArgumentError(f"{func}: {p}: no such file")
        if p.endswith(".npy"):
            try:
                logits = np.load(p, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:
                raise InvalidArgumentError(f"{func}: {p}: not a readable .npy file ({e})") from None
            if ids is None:
                side = _sidecar(p)
                if not os.path.exists(side):
                    raise InvalidArgumentError(
                        f"{func}: {p}: no ids; pass ids= or save them as {side} "
                        "(teacher rows are matched to training examples by id)"
                    )
                try:
                    ids = np.load(side, allow_pickle=False)
                except (ValueError, OSError, EOFError) as e:
                    raise InvalidArgumentError(
                        f"{func}: {side}: not a readable .npy file ({e})"
                    ) from None
            return cls(logits=logits, ids=np.asarray(ids), path=p)
        try:
            with np.load(p, allow_pickle=False) as npz:
                files = set(npz.files)
                missing = [
                    k
                    for k in ("logits", "ids")
                    if k not in files and not (k == "ids" and ids is not None)
                ]
                if missing:
                    raise InvalidArgumentError(
                        f"{func}: {p}: missing key(s) {missing}; found {sorted(files)}"
                    )
                file_ids = npz["ids"] if "ids" in files else None
                logits = _mmap_npz_member(p, "logits.npy")
                if logits is None:  # compressed: cannot be mapped; NumPy checks the CRC
                    logits = npz["logits"]
                else:
                    _verify_member_crc(p, "logits.npy")
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise InvalidArgumentError(
                f"{func}: {p}: not a readable .npz/.npy file ({e})"
            ) from None
        return cls(logits=logits, ids=np.asarray(file_ids if ids is None else ids), path=p)

    @property
    def name(self) -> str:
        return self.path or "teacher"

    @property
    def n_examples(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.logits.shape[1])

    @property
    def ids_sha256(self) -> str:
        """SHA-256 of the id order (:func:`kdmetrics.ids_sha256`)."""
        return ids_sha256(self.ids)

    def file_sha256(self) -> str:
        """SHA-256 of the file's bytes (of the logits when not from a file), cached."""
        if self._file_sha256 is None:
            h = hashlib.sha256()
            if self.path is not None:
                with open(self.path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 22), b""):
                        h.update(chunk)
            else:
                h.update(np.ascontiguousarray(self.logits).tobytes())
            self._file_sha256 = h.hexdigest()
        return self._file_sha256

    def fetch(self, indices: Any) -> torch.Tensor:
        """Rows for example *positions* in the training set, as float32 (B, K)."""
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ShapeError(f"fetch: indices must be 1-D integers, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_examples):
            j = int(np.flatnonzero((idx < 0) | (idx >= self.n_examples))[0])
            raise OutOfRangeError(
                f"fetch: {self.name}: index out of range [0, {self.n_examples}): "
                f"{int(idx.min()) if idx.min() < 0 else int(idx.max())}",
                j,
                int(idx[j]),
                self.n_examples,
            )
        # Fancy indexing a memmap reads only these rows; upcast per batch only.
        return torch.from_numpy(np.asarray(self.logits[idx], dtype=np.float32))

    def fetch_ids(self, ids: Any) -> torch.Tensor:
        """Rows for example ids, as float32 (B, K)."""
        if self._row_of_id is None:
            self._row_of_id = {v: i for i, v in enumerate(self.ids.tolist())}
        wanted = _ids_array(ids).tolist()
        try:
            rows = [self._row_of_id[v] for v in wanted]
        except KeyError as e:
            raise AlignmentError(
                f"fetch_ids: {self.name}: id {e.args[0]!r} not in the teacher file"
            ) from None
        return self.fetch(np.asarray(rows, dtype=np.int64))

    def check_aligned(
        self,
        ids: Any,
        *,
        labels: Any = None,
        n_classes: int | None = None,
        min_accuracy: float | None = None,
    ) -> str:
        """Checks this teacher against a data set's ``ids`` (length, order,
        identity) and the student's ``n_classes``; raises ValueError naming the
        first bad position. With ``labels``, warns when the teacher's argmax
        accuracy is below ``min_accuracy`` (default: :func:`near_chance_threshold`).
        Returns the SHA-256 of the id order.
        """
        func = "check_aligned"
        want = _ids_array(ids)
        if n_classes is not None and self.n_classes != n_classes:
            raise AlignmentError(
                f"{func}: {self.name} has {self.n_classes} classes but the student has {n_classes}"
            )
        n = min(self.n_examples, want.shape[0])
        bad = _first_mismatch(self.ids[:n], want[:n])
        if bad is not None:
            hint = ""
            if self.n_examples == want.shape[0] and set(self.ids.tolist()) == set(want.tolist()):
                hint = " (same ids in another order: save the teacher in the training set's order)"
            raise AlignmentError(
                f"{func}: {self.name}: ids differ from the training set at position {bad} "
                f"({self.ids[bad].item()!r} vs {want[bad].item()!r}){hint}"
            )
        if self.n_examples != want.shape[0]:
            raise ShapeError(
                f"{func}: {self.name} has {self.n_examples} rows but the training set has "
                f"{want.shape[0]}; first unmatched position {n}"
            )
        if labels is not None:
            y = np.asarray(labels)
            if y.dtype.kind not in "iu" or y.shape != (want.shape[0],):
                raise ShapeError(
                    f"{func}: labels must be {want.shape[0]} integer class indices, got shape "
                    f"{y.shape} dtype {y.dtype}"
                )
            y = y.astype(np.int64)
            out_of_range = np.flatnonzero(((y < 0) & (y != IGNORE_INDEX)) | (y >= self.n_classes))
            if out_of_range.size:
                i = int(out_of_range[0])
                raise OutOfRangeError(
                    f"{func}: labels[{i}] = {y[i]} is out of range "
                    f"[0, {self.n_classes}) of {self.name}'s classes",
                    i,
                    int(y[i]),
                    self.n_classes,
                )
            acc = self.accuracy(y)
            labelled = y[y != IGNORE_INDEX]
            chance, threshold = near_chance_threshold(labelled, self.n_classes)
            threshold = threshold if min_accuracy is None else float(min_accuracy)
            if acc < threshold:
                warnings.warn(
                    f"{self.name}: teacher argmax accuracy on the training labels is {acc:.4f}, "
                    f"near chance ({chance:.4f}; warning below {threshold:.4f}): the file is "
                    "almost surely misaligned with the training set",
                    NearChanceTeacherWarning,
                    stacklevel=2,
                )
        return ids_sha256(want)

    def accuracy(self, labels: np.ndarray, chunk: int = 65536) -> float:
        """Argmax accuracy against ``labels``, read in chunks (memory-mapped);
        examples labelled ``IGNORE_INDEX`` (-100) are left out."""
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (self.n_examples,):
            raise ShapeError(
                f"accuracy: labels must have shape ({self.n_examples},), got {y.shape}"
            )
        hits = 0
        for start in range(0, self.n_examples, chunk):
            rows = np.asarray(self.logits[start : start + chunk])
            hits += int((rows.argmax(axis=1) == y[start : start + chunk]).sum())
        return hits / max(int((y != IGNORE_INDEX).sum()), 1)


def check_teachers(
    teachers: Sequence[TeacherLogits],
    ids: Any,
    *,
    labels: Any = None,
    n_classes: int | None = None,
    min_accuracy: float | None = None,
) -> str:
    """Runs :meth:`TeacherLogits.check_aligned` on every teacher (all must pass
    before a multi-teacher run); returns the SHA-256 of the id order."""
    if not teachers:
        raise InvalidArgumentError("check_teachers: no teachers given")
    sha = ""
    for t in teachers:
        sha = t.check_aligned(ids, labels=labels, n_classes=n_classes, min_accuracy=min_accuracy)
    return sha


def save_teacher_logits(path: str | os.PathLike[str], logits: Any, ids: Any) -> None:
    """Writes a teacher file: an uncompressed ``.npz`` (``logits``, ``ids``),
    or for a ``.npy`` path the logits there and the ids in ``<name>.ids.npy``.
    Both can be memory-mapped by :meth:`TeacherLogits.open`."""
    func = "save_teacher_logits"
    p = os.fspath(path)
    z = np.asarray(logits)
    i = _ids_array(ids)
    if z.ndim != 2 or z.dtype.kind != "f":
        raise ShapeError(f"{func}: logits must be a 2-D float array, got {z.shape} {z.dtype}")
    if i.shape != (z.shape[0],):
        raise ShapeError(f"{func}: ids must have shape ({z.shape[0]},), got {i.shape}")
    if _has_duplicates(i):
        raise InvalidArgumentError(f"{func}: ids are not unique")
    if p.endswith(".npy"):
        np.save(p, z, allow_pickle=False)
        np.save(_sidecar(p), i, allow_pickle=False)
    else:
        with open(p, "wb") as f:
            np.savez(f, logits=z, ids=i)
