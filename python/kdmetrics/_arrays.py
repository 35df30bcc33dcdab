"""Array intake: what the metric functions accept as logits or probabilities.

- NumPy arrays (and anything ``np.asarray`` reads) of float16/32/64, any byte
  order and strides, are read as they are: no copy except a byte swap.
- PyTorch tensors of any float dtype, on any device, with or without
  ``requires_grad``, are detached and read without importing torch here (a
  tensor can only exist once its caller imported torch). A CPU float16/32/64
  tensor is shared with NumPy (no copy); a tensor on another device is copied
  to the host, block by block where a kernel works per row.
- bfloat16 (which NumPy lacks) is converted block by block. Where the metric
  works per row (NLL, Brier, ECE, KL, JS, thresholds) each block goes to
  float32 and straight to the kernel: no full-size copy. Where a whole array is
  needed (argmax-based metrics, the bootstrap) the tensor becomes float16 when
  every value is exactly representable there (true for bfloat16 values of
  magnitude in [2**-17, 65280] and 0: a copy the size of the input), else
  float32 (twice the input).
- Probabilities (``probs=True``, never guessed) are validated and turned into
  log-probabilities one block of rows at a time (finite, >= 0, rows summing
  to 1 within the dtype's tolerance), each block in float64, and each block
  goes to the kernel before the next is made. The extra memory is the
  per-example results plus one block (about ``BLOCK_BYTES``), not a full copy.
  Results are bit-identical to taking ``np.log`` of the whole array in
  float64, because the row kernels treat every row on its own.

Logits whose rows all look like probabilities (non-negative, summing to 1) get
a :class:`ProbabilitiesAsLogitsWarning`; they are still read as logits.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kdmetrics.errors import (
    InvalidArgumentError,
    KdMetricsError,
    NonFiniteError,
    ShapeError,
)

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

# How far a row of probabilities may sum from 1, by dtype: float16 holds ~3
# significant digits, so 113 rounded entries can drift by ~1e-2; bfloat16
# holds fewer, but each entry's rounding is relative to it, so a row still
# drifts by at most ~2e-3.
PROBS_ATOL = {"float16": 1e-2, "bfloat16": 1e-2, "float32": 1e-4, "float64": 1e-4}

# Bytes of float64 work space per block of rows (probabilities, bfloat16).
BLOCK_BYTES = 4 << 20
# Probability-looking logits are warned about only with at least this many
# rows: a handful of rows summing to 1 is as likely to be real logits.
MIN_ROWS_TO_WARN = 8

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class ProbabilitiesAsLogitsWarning(UserWarning):
    """Logits whose every row is non-negative and sums to 1: probably
    probabilities passed without ``probs=True``. They are read as logits."""


def _torch_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside the kdmetrics package."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def block_rows(n_classes: int) -> int:
    """Rows per block so that one float64 block takes about ``BLOCK_BYTES``."""
    return max(1, BLOCK_BYTES // (8 * max(1, n_classes)))


def _bf16_block(t: Any) -> np.ndarray:
    """A block of a bfloat16 tensor as a float32 host array (exact)."""
    return t.float().cpu().numpy()


def _tensor_to_numpy(func: str, t: Any, name: str) -> np.ndarray:
    """A whole (detached) tensor as a host NumPy array; see the module docstring."""
    import torch  # already imported by whoever made the tensor

    if t.dtype == torch.bfloat16:
        if t.ndim != 2 or t.shape[0] == 0:
            return _bf16_block(t)
        n = t.shape[0]
        step = block_rows(t.shape[1])
        out: np.ndarray = np.empty(tuple(t.shape), dtype=np.float16)
        for start in range(0, n, step):
            b32 = _bf16_block(t[start : start + step])
            if out.dtype == np.float16:
                with np.errstate(over="ignore"):
                    b16 = b32.astype(np.float16)
                if np.array_equal(b16.astype(np.float32), b32, equal_nan=True):
                    out[start : start + step] = b16
                    continue
                # Not exact in float16: fall back to float32 (exact for bfloat16).
                wide = np.empty(out.shape, dtype=np.float32)
                wide[:start] = out[:start]
                out = wide
            out[start : start + step] = b32
        return out
    if t.device.type != "cpu":
        t = t.cpu()
    try:
        return t.resolve_conj().resolve_neg().numpy()
    except (TypeError, RuntimeError) as e:
        raise InvalidArgumentError(
            f"{func}: {name}: cannot read a torch tensor of dtype {t.dtype} ({e})"
        ) from None


def as_array(func: str, x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)``, also for torch tensors of any dtype and device (detached)."""
    if _torch_tensor(x):
        return _tensor_to_numpy(func, x.detach(), name)
    try:
        return np.asarray(x)
    except (ValueError, TypeError, OverflowError) as e:
        # ragged nested lists, objects NumPy cannot hold in one array
        raise ShapeError(f"{func}: {name} is not an array ({e})") from None


def _float_dtype(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "f" and arr.dtype.itemsize in (2, 4, 8)


def check_scores_shape(func: str, shape: tuple[int, ...], name: str) -> None:
    if len(shape) != 2:
        raise ShapeError(f"{func}: {name} must be 2-D (examples x classes), got shape {shape}")
    if shape[0] == 0:
        raise ShapeError(f"{func}: {name} has no rows")
    if shape[1] < 2:
        raise ShapeError(f"{func}: {name} must have at least 2 classes, got {shape[1]}")


def scores_array(func: str, scores: Any, name: str = "logits") -> np.ndarray:
    """A 2-D float16/32/64 array with >= 1 row and >= 2 columns, not copied
    (except a byte swap, or a tensor that is not a host float16/32/64 one)."""
    arr = as_array(func, scores, name)
    if not _float_dtype(arr):
        raise InvalidArgumentError(
            f"{func}: {name} must be float16, float32 or float64, got dtype {arr.dtype}"
        )
    check_scores_shape(func, arr.shape, name)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


class Rows:
    """A validated 2-D score input (shape and dtype checked) whose rows are
    fetched block by block in a dtype the kernels read.

    ``array`` is set when the input is a host NumPy array (or shares memory
    with one): blocks are views. Otherwise ``tensor`` holds a detached torch
    tensor (bfloat16, or on another device) and each block is converted.
    """

    def __init__(self, func: str, scores: Any, name: str = "logits") -> None:
        self.name = name
        self.array: np.ndarray | None = None
        self.tensor: Any = None
        if _torch_tensor(scores) and (
            str(scores.dtype) == "torch.bfloat16"
            or (scores.device.type != "cpu" and scores.is_floating_point())
        ):
            t = scores.detach()
            if str(t.dtype) not in (
                "torch.bfloat16",
                "torch.float16",
                "torch.float32",
                "torch.float64",
            ):
                raise InvalidArgumentError(
                    f"{func}: {name} must be a float16, bfloat16, float32 or float64 tensor, "
                    f"got {t.dtype}"
                )
            check_scores_shape(func, tuple(t.shape), name)
            self.tensor = t
            self.shape: tuple[int, int] = (int(t.shape[0]), int(t.shape[1]))
            self.dtype_name = str(t.dtype).removeprefix("torch.")
        else:
            self.array = scores_array(func, scores, name)
            self.shape = (int(self.array.shape[0]), int(self.array.shape[1]))
            self.dtype_name = str(self.array.dtype)

    @property
    def direct(self) -> bool:
        """True when the whole input is already an array the kernels read."""
        return self.array is not None

    def fetch(self, start: int, stop: int) -> np.ndarray:
        if self.array is not None:
            return self.array[start:stop]
        t = self.tensor[start:stop]
        if str(t.dtype) == "torch.bfloat16":
            return _bf16_block(t)
        return t.cpu().numpy()

    def whole(self, func: str) -> np.ndarray:
        """The input as one array (converts a tensor; see the module docstring)."""
        if self.array is not None:
            return self.array
        return scores_array(func, self.tensor, self.name)


def shape_of(func: str, scores: Any, name: str = "logits") -> tuple[int, ...]:
    """The shape of an array-like or tensor without converting a tensor."""
    if _torch_tensor(scores):
        return tuple(int(s) for s in scores.shape)
    return tuple(np.shape(scores))


def _probs_error(func: str, name: str, msg: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{func}: {name} (probabilities) {msg}")


def _off_rows(block: np.ndarray, atol: float) -> np.ndarray:
    totals = block.sum(axis=1, dtype=np.float64)
    return np.flatnonzero(np.abs(totals - 1.0) > atol)


def _check_probs_block(
    func: str, w: np.ndarray, block: np.ndarray, name: str, dtype_name: str, offset: int
) -> None:
    """Finite, >= 0, rows summing to 1; ``w`` is ``block`` in float64."""
    if not np.isfinite(w).all():
        r, c = np.argwhere(~np.isfinite(w))[0]
        raise NonFiniteError(
            f"{func}: {name} has a NaN or infinite value at row {r + offset}, column {c}",
            int(r + offset),
            int(c),
        )
    neg = w < 0
    if neg.any():
        r, c = np.argwhere(neg)[0]
        raise _probs_error(
            func, name, f"has a negative value {block[r, c]} at row {r + offset}, column {c}"
        )
    del neg
    atol = PROBS_ATOL[dtype_name]
    totals = w.sum(axis=1)
    off = np.flatnonzero(np.abs(totals - 1.0) > atol)
    if off.size:
        r = int(off[0])
        raise _probs_error(
            func,
            name,
            f"row {r + offset} sums to {totals[r]}, not 1 (tolerance {atol} for {dtype_name})",
        )


def log_probs_block(
    func: str, block: np.ndarray, name: str, dtype_name: str, offset: int = 0
) -> np.ndarray:
    """Validates one block of probability rows and returns its natural log in
    float64 (a fresh block-sized array, -inf where a probability is 0).

    Errors give rows counted from the start of the whole input (``offset``).
    """
    w = np.array(block, dtype=np.float64, order="C")
    _check_probs_block(func, w, block, name, dtype_name, offset)
    with np.errstate(divide="ignore"):
        np.log(w, out=w)
    return w


def check_probabilities(func: str, probs: Any, name: str = "logits") -> None:
    """Validates probabilities block by block (no full-size copy)."""
    rows = Rows(func, probs, name)
    n, k = rows.shape
    step = block_rows(k)
    for start in range(0, n, step):
        b = rows.fetch(start, min(n, start + step))
        _check_probs_block(func, np.asarray(b, dtype=np.float64), b, name, rows.dtype_name, start)


def check_finite(func: str, scores: np.ndarray, name: str = "logits") -> None:
    """Refuses NaN or +-inf, block by block; the error gives row and column."""
    n, k = scores.shape
    step = block_rows(k)
    for start in range(0, n, step):
        b = scores[start : start + step]
        if not np.isfinite(b).all():
            r, c = np.argwhere(~np.isfinite(b))[0]
            raise NonFiniteError(
                f"{func}: {name} has a NaN or infinite value at row {r + start}, column {c}",
                int(r + start),
                int(c),
            )


def log_of_probs(func: str, probs: Any, name: str = "logits") -> np.ndarray:
    """Validated probabilities -> their natural log in float64, as one array.

    Validation runs block by block; the only full-size allocation is the
    result. Prefer :func:`per_row`, which never makes it.
    """
    rows = Rows(func, probs, name)
    n, k = rows.shape
    out = np.empty((n, k), dtype=np.float64)
    step = block_rows(k)
    for start in range(0, n, step):
        stop = min(n, start + step)
        out[start:stop] = log_probs_block(
            func, rows.fetch(start, stop), name, rows.dtype_name, start
        )
    return out


def looks_like_probabilities(rows: Rows) -> bool:
    """Every row finite, non-negative and summing to 1 (within the dtype's
    probability tolerance), at least ``MIN_ROWS_TO_WARN`` rows, and not every
    row constant (a constant row means the same as logits or probabilities)."""
    n, k = rows.shape
    if n < MIN_ROWS_TO_WARN:
        return False
    atol = PROBS_ATOL[rows.dtype_name]
    # Row 0 decides for nearly all real logits without touching the rest.
    first = np.asarray(rows.fetch(0, 1), dtype=np.float64)
    if not (np.isfinite(first).all() and (first >= 0).all()):
        return False
    if abs(first.sum() - 1.0) > atol:
        return False
    varied = False
    step = block_rows(k)
    for start in range(0, n, step):
        b = rows.fetch(start, min(n, start + step))
        with np.errstate(invalid="ignore", over="ignore"):
            if not (np.isfinite(b).all() and (b >= 0).all()) or _off_rows(b, atol).size:
                return False
            varied = varied or bool((b != b[:, :1]).any())
    return varied


def warn_if_probabilities(func: str, rows: Rows) -> None:
    if looks_like_probabilities(rows):
        warnings.warn(
            f"{func}: every row of {rows.name} is non-negative and sums to 1; these look like "
            "probabilities but are read as logits. Pass probs=True if they are probabilities.",
            ProbabilitiesAsLogitsWarning,
            stacklevel=_user_stacklevel(),
        )


_ROW = re.compile(r"at row (\d+)")


def _shift_rows(message: str, offset: int) -> str:
    return _ROW.sub(lambda m: f"at row {int(m.group(1)) + offset}", message)


def shifted(e: KdMetricsError, offset: int) -> KdMetricsError:
    """The same error for a block that starts at row ``offset``: the row in
    its message and its ``row`` attribute count from the start of the input."""
    out = type(e)(_shift_rows(e.message, offset), *e._values())
    if isinstance(out, NonFiniteError) and out.row is not None:
        out.row += offset
    return out


def per_row(
    func: str,
    inputs: Sequence[tuple[Rows, bool]],
    call: Callable[..., tuple[Any, ...]],
) -> tuple[Any, ...]:
    """Runs a row-wise kernel over one or more inputs of equal row count.

    ``inputs`` are ``(rows, probs)`` pairs; ``call(rows_slice, *arrays)`` runs
    the kernel on the arrays (log-probabilities where ``probs``) and returns a
    tuple of per-row arrays (or None). Plain host logits go to the kernel whole,
    as before; probabilities and converted tensors go one block of rows at a
    time, the per-row results written into preallocated outputs. Logits that
    look like probabilities get a :class:`ProbabilitiesAsLogitsWarning`.
    """
    for rows, probs in inputs:
        if not probs:
            warn_if_probabilities(func, rows)
    if all(rows.direct and not probs for rows, probs in inputs):
        return call(slice(None), *(rows.array for rows, _ in inputs))
    n = inputs[0][0].shape[0]
    step = block_rows(max(rows.shape[1] for rows, _ in inputs))
    outs: list[Any] | None = None
    for start in range(0, n, step):
        stop = min(n, start + step)
        blocks = []
        for rows, probs in inputs:
            b = rows.fetch(start, stop)
            if probs:
                b = log_probs_block(func, b, rows.name, rows.dtype_name, start)
            blocks.append(b)
        try:
            res = call(slice(start, stop), *blocks)
        except KdMetricsError as e:
            raise shifted(e, start) from None
        del blocks
        if outs is None:
            outs = [
                None if v is None else np.empty((n, *np.shape(v)[1:]), dtype=np.asarray(v).dtype)
                for v in res
            ]
        for o, v in zip(outs, res, strict=True):
            if o is not None:
                o[start:stop] = v
    assert outs is not None
    return tuple(outs)


class RepeatedPasses:
    """Many passes of a mean-reducing kernel over one input (the temperature fit).

    Logits on the host go to the kernel whole. Probabilities are validated on
    the first pass; when the input fits in one block its log is kept, otherwise
    each pass recomputes the log block by block (time for memory).
    """

    def __init__(self, func: str, rows: Rows, probs: bool) -> None:
        self.func = func
        self.rows = rows
        self.probs = probs
        self.validated = False
        self.step = block_rows(rows.shape[1])
        self.cache: np.ndarray | None = None
        if not probs:
            warn_if_probabilities(func, rows)

    def mean(self, call: Callable[..., tuple[float, ...]]) -> tuple[float, ...]:
        """Row-weighted mean of ``call(rows_slice, block)`` over the blocks."""
        rows = self.rows
        if rows.direct and not self.probs:
            return tuple(call(slice(None), rows.array))
        n = rows.shape[0]
        if n <= self.step:  # one block: make it once, keep it
            if self.cache is None:
                b = rows.fetch(0, n)
                if self.probs:
                    b = log_probs_block(self.func, b, rows.name, rows.dtype_name)
                self.cache = b
            return tuple(call(slice(None), self.cache))
        total: np.ndarray | None = None
        for start in range(0, n, self.step):
            stop = min(n, start + self.step)
            b = rows.fetch(start, stop)
            if self.probs:
                if self.validated:
                    with np.errstate(divide="ignore"):
                        b = np.log(b, dtype=np.float64)
                else:
                    b = log_probs_block(self.func, b, rows.name, rows.dtype_name, start)
            try:
                res = np.asarray(call(slice(start, stop), b), dtype=np.float64)
            except KdMetricsError as e:
                raise shifted(e, start) from None
            total = res * (stop - start) if total is None else total + res * (stop - start)
        self.validated = True
        assert total is not None
        return tuple(float(v) for v in total / n)
