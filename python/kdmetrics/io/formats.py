"""Readers for the layouts other tools write, each mapped explicitly.

Every reader returns a :class:`RawPredictions`: the score array (logits, or
probabilities when the caller says so), the labels, optional ids and any scalar
metadata, all as found. Nothing is guessed: which key, file or column holds the
scores, labels and ids is given by the caller (``logits_key``, ``labels_key``,
``ids_key``; the defaults are the canonical names ``logits``, ``labels`` and
``ids``), and a missing one is an error that says what was found instead.

Layouts (chosen by the path, or ``fmt``):

``npz``
    a NumPy ``.npz`` archive; keys name its members. Nothing is unpickled.
``npy``
    a folder of ``.npy`` files, keys naming the files (``logits`` reads
    ``logits.npy``); or one ``.npy`` file holding the scores, with
    ``labels_key`` (and ``ids_key``) naming sibling ``.npy`` files (default
    ``labels.npy`` beside it). ``.npy`` files are memory-mapped.
``pt``
    a ``torch.save`` dict of tensors or arrays (``.pt``/``.pth``), read with
    ``weights_only=True`` (nothing is unpickled beyond tensors and plain
    values). Needs torch, imported only here.
``csv`` / ``parquet``
    a table read through pandas (Parquet needs pyarrow). The scores are either
    one list column (``logits_key`` = its name; in CSV each cell a JSON list
    like ``[0.1, 0.9]``), or one column per class: ``logits_key`` is then a
    comma-separated list of column names or a glob pattern (``prob_*``) whose
    matching columns are taken in the table's column order.
"""

from __future__ import annotations

import fnmatch
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kdmetrics._arrays import as_array
from kdmetrics.errors import InvalidArgumentError, ShapeError

FORMATS = ("npz", "npy", "pt", "csv", "parquet")
_EXTENSIONS = {
    ".npz": "npz",
    ".npy": "npy",
    ".pt": "pt",
    ".pth": "pt",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class RawPredictions:
    """What a reader found, before validation."""

    scores: Any
    labels: Any
    ids: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # other arrays / metadata


@dataclass(frozen=True)
class Mapping:
    """Which key, file or column holds each array. ``None`` = canonical name;
    an ids key given explicitly must exist, the default ``ids`` may be absent."""

    logits_key: str | None = None
    labels_key: str | None = None
    ids_key: str | None = None

    @property
    def logits(self) -> str:
        return self.logits_key or "logits"

    @property
    def labels(self) -> str:
        return self.labels_key or "labels"

    @property
    def ids(self) -> str:
        return self.ids_key or "ids"


def detect_format(func: str, path: str, fmt: str | None) -> str:
    """The layout of ``path``: ``fmt`` if given, else from the extension (a
    folder is a folder of ``.npy`` files)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InvalidArgumentError(f"{func}: unknown format {fmt!r}; choose from {FORMATS}")
        return fmt
    if os.path.isdir(path):
        return "npy"
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise InvalidArgumentError(
            f"{func}: {path}: cannot tell the layout from the extension {ext!r}; "
            f"known: {', '.join(sorted(_EXTENSIONS))} or a folder of .npy files"
        )
    return _EXTENSIONS[ext]


def _missing(func: str, path: str, what: str, key: str, found: Any) -> InvalidArgumentError:
    return InvalidArgumentError(f"{func}: {path}: {what} {key!r} not found; found {sorted(found)}")


def read(func: str, path: str, mapping: Mapping, fmt: str | None = None) -> RawPredictions:
    """Reads ``path`` in its layout; see the module docstring."""
    kind = detect_format(func, path, fmt)
    reader = {
        "npz": _read_npz,
        "npy": _read_npy,
        "pt": _read_pt,
        "csv": _read_table,
        "parquet": _read_table,
    }[kind]
    return reader(func, path, mapping, kind)


def _read_npz(func: str, path: str, mapping: Mapping, kind: str) -> RawPredictions:
    with open(path, "rb") as fh:  # closed on every path, also when np.load fails
        return _read_npz_file(func, path, fh, mapping)


def _read_npz_file(func: str, path: str, fh: Any, mapping: Mapping) -> RawPredictions:
    try:
        npz = np.load(fh, allow_pickle=False)
    except Exception as e:  # a truncated or foreign file
        raise InvalidArgumentError(f"{func}: {path}: not a readable .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise InvalidArgumentError(
            f"{func}: {path}: holds a single array, not an .npz archive; "
            "rename it .npy to read it as scores"
        )
    with npz:
        keys = set(npz.files)
        # The canonical file of probabilities stores them under "probs".
        logits_key = mapping.logits
        if mapping.logits_key is None and "logits" not in keys and "probs" in keys:
            logits_key = "probs"
        missing = [k for k in (logits_key, mapping.labels) if k not in keys]
        if mapping.ids_key is not None and mapping.ids_key not in keys:
            missing.append(mapping.ids_key)
        if missing:
            raise InvalidArgumentError(
                f"{func}: {path}: missing key(s) {missing}; found {sorted(keys)}"
            )
        try:
            arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
            raise InvalidArgumentError(
                f"{func}: {path}: damaged or unreadable .npz member ({e})"
            ) from None
    scores = arrays.pop(logits_key)
    labels = arrays.pop(mapping.labels)
    ids = arrays.pop(mapping.ids, None)
    raw = RawPredictions(scores, labels, ids, arrays)
    if logits_key == "probs" and mapping.logits_key is None:
        raw.extra["__probs__"] = True
    return raw


def _load_npy(func: str, path: str) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise InvalidArgumentError(f"{func}: {path}: not a readable .npy file ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise InvalidArgumentError(f"{func}: {path}: not a .npy file (an archive?)")
    return arr


def _npy_path(base: str, key: str) -> str:
    name = key if key.endswith(".npy") else key + ".npy"
    return name if os.path.isabs(name) else os.path.join(base, name)


def _read_npy(func: str, path: str, mapping: Mapping, kind: str) -> RawPredictions:
    if os.path.isdir(path):
        base = path
        found = sorted(f for f in os.listdir(path) if f.endswith(".npy"))
        scores_path = _npy_path(base, mapping.logits)
        if not os.path.exists(scores_path):
            raise _missing(func, path, "file", os.path.basename(scores_path), found)
    else:
        base = os.path.dirname(path)
        found = sorted(f for f in os.listdir(base or ".") if f.endswith(".npy"))
        scores_path = path
    labels_path = _npy_path(base, mapping.labels)
    if not os.path.exists(labels_path):
        raise InvalidArgumentError(
            f"{func}: {path}: labels file {labels_path!r} not found (labels_key names it); "
            f"found {found}"
        )
    ids_path = _npy_path(base, mapping.ids)
    ids = None
    if os.path.exists(ids_path):
        ids = np.asarray(_load_npy(func, ids_path))
    elif mapping.ids_key is not None:
        raise InvalidArgumentError(
            f"{func}: {path}: ids file {ids_path!r} not found; found {found}"
        )
    return RawPredictions(
        _load_npy(func, scores_path), np.asarray(_load_npy(func, labels_path)), ids
    )


def _read_pt(func: str, path: str, mapping: Mapping, kind: str) -> RawPredictions:
    try:
        import torch
    except ImportError:
        raise InvalidArgumentError(
            f"{func}: {path}: reading .pt files needs torch (pip install torch)"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InvalidArgumentError(
            f"{func}: {path}: not a readable torch file ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(obj, dict):
        raise InvalidArgumentError(
            f"{func}: {path}: expected a dict of tensors, found a {type(obj).__name__}"
        )
    keys = [str(k) for k in obj]
    missing = [k for k in (mapping.logits, mapping.labels) if k not in obj]
    if mapping.ids_key is not None and mapping.ids_key not in obj:
        missing.append(mapping.ids_key)
    if missing:
        raise InvalidArgumentError(
            f"{func}: {path}: missing key(s) {missing}; found {sorted(keys)}"
        )
    scores = obj[mapping.logits]
    labels = as_array(func, obj[mapping.labels], mapping.labels)
    ids = obj.get(mapping.ids)
    if ids is not None:
        ids = as_array(func, ids, mapping.ids)
    extra: dict[str, Any] = {}
    used = {mapping.logits, mapping.labels, mapping.ids}
    for k, v in obj.items():
        if k in used or not isinstance(k, str):
            continue
        if isinstance(v, (str, int, float, bool)):
            extra[k] = np.asarray(v)
        elif isinstance(v, torch.Tensor) or isinstance(v, np.ndarray):
            extra[k] = as_array(func, v, k)
    return RawPredictions(scores, labels, ids, extra)


def _table_scores(func: str, path: str, df: Any, key: str) -> np.ndarray:
    cols = [str(c) for c in df.columns]
    if key in cols:  # one list column
        cells = df[key].tolist()
        rows = []
        for i, cell in enumerate(cells):
            if isinstance(cell, str):
                try:
                    cell = json.loads(cell)
                except json.JSONDecodeError:
                    raise InvalidArgumentError(
                        f"{func}: {path}: column {key!r} row {i} is not a list of numbers: "
                        f"{cell[:60]!r}"
                    ) from None
            rows.append(np.asarray(cell))
        lengths = {r.shape for r in rows}
        if len(lengths) != 1 or any(r.ndim != 1 for r in rows):
            first = next(i for i, r in enumerate(rows) if r.shape != rows[0].shape or r.ndim != 1)
            raise ShapeError(
                f"{func}: {path}: column {key!r} holds lists of different lengths "
                f"(row 0: {rows[0].shape}, row {first}: {rows[first].shape})"
            )
        return np.stack(rows) if rows else np.empty((0, 0))
    if "," in key:
        names = [c.strip() for c in key.split(",")]
        missing = [c for c in names if c not in cols]
        if missing:
            raise InvalidArgumentError(
                f"{func}: {path}: column(s) {missing} not found; found {cols}"
            )
    elif any(ch in key for ch in "*?["):
        names = [c for c in cols if fnmatch.fnmatchcase(c, key)]
        if not names:
            raise InvalidArgumentError(f"{func}: {path}: no column matches {key!r}; found {cols}")
    else:
        raise InvalidArgumentError(
            f"{func}: {path}: column {key!r} not found; found {cols}. Name a list column, "
            "a comma-separated list of per-class columns, or a glob pattern like 'prob_*'"
        )
    return df[names].to_numpy()


def _table_column(func: str, path: str, df: Any, key: str, what: str) -> np.ndarray:
    cols = [str(c) for c in df.columns]
    if key not in cols:
        raise InvalidArgumentError(f"{func}: {path}: {what} column {key!r} not found; found {cols}")
    col = df[key]
    if col.dtype.kind in "iufb":
        return col.to_numpy()
    if col.isna().any():
        raise InvalidArgumentError(f"{func}: {path}: {what} column {key!r} has missing values")
    values = col.tolist()
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=str)
    return np.asarray(values)


def _read_table(func: str, path: str, mapping: Mapping, kind: str) -> RawPredictions:
    import pandas as pd

    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        else:
            sep = "\t" if path.lower().endswith(".tsv") else ","
            df = pd.read_csv(path, sep=sep)
    except ImportError as e:
        raise InvalidArgumentError(
            f"{func}: {path}: reading Parquet needs pyarrow (pip install pyarrow): {e}"
        ) from None
    except Exception as e:
        raise InvalidArgumentError(f"{func}: {path}: not a readable {kind} table ({e})") from None
    scores = _table_scores(func, path, df, mapping.logits)
    labels = _table_column(func, path, df, mapping.labels, "labels")
    ids = None
    if mapping.ids in [str(c) for c in df.columns]:
        ids = _table_column(func, path, df, mapping.ids, "ids")
    elif mapping.ids_key is not None:
        raise InvalidArgumentError(
            f"{func}: {path}: ids column {mapping.ids_key!r} not found; "
            f"found {[str(c) for c in df.columns]}"
        )
    return RawPredictions(scores, labels, ids)
