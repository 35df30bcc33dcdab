"""Input checks shared by the public functions.

Every check raises a :mod:`kdmetrics.errors` class (all ``ValueError``
subclasses) whose message names the function, the argument, what was expected
and what came. Nothing is copied unless it must be (labels are made int64;
big-endian floats are byte-swapped; logits are otherwise passed to Rust as they
are, strided or not).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

# Array intake (tensors, bfloat16, probabilities) lives in _arrays.
from kdmetrics._arrays import (  # noqa: F401  (re-exported)
    FLOAT_DTYPES,
    PROBS_ATOL,
    as_array,
    log_of_probs,
    scores_array,
)
from kdmetrics.errors import (
    InvalidArgumentError,
    OutOfRangeError,
    ShapeError,
)

# Largest class count / bin count / resample count a kernel accepts: far above
# any real use, low enough that the per-class or per-bin buffers always fit.
MAX_CLASSES = 1 << 24
MAX_BINS = 1 << 24


def labels_array(func: str, labels: Any, name: str = "labels") -> np.ndarray:
    """A 1-D int64 array of class indices (not yet range-checked)."""
    arr = as_array(func, labels, name)
    if arr.ndim != 1:
        raise ShapeError(f"{func}: {name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{func}: {name} is empty")
    if arr.dtype.kind not in "iu":
        raise InvalidArgumentError(
            f"{func}: {name} must be integer class indices, got dtype {arr.dtype}"
        )
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.max() > np.iinfo(np.int64).max:
        i = int(np.argmax(arr > np.iinfo(np.int64).max))
        raise OutOfRangeError(
            f"{func}: {name} has values too large for class indices", i, int(arr[i]), None
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_label_range(func: str, labels: np.ndarray, n_classes: int, name: str = "labels") -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise OutOfRangeError(
            f"{func}: {name}[{i}] = {int(labels[i])} is out of range [0, {n_classes}) "
            f"({bad.size} out-of-range value(s))",
            i,
            int(labels[i]),
            int(n_classes),
        )


def n_classes_of(func: str, *arrays: np.ndarray, names: tuple[str, ...] = ("labels",)) -> int:
    """``max + 1`` over 1-D class-index arrays, refused above :data:`MAX_CLASSES`
    (raw ids such as ``10**12`` are not class indices; pass ``n_classes``)."""
    k = 0
    for arr, name in zip(arrays, names, strict=True):
        top = int(arr.max())
        if top >= MAX_CLASSES:
            i = int(np.argmax(arr))
            raise OutOfRangeError(
                f"{func}: {name}[{i}] = {top} is too large for a class index (at most "
                f"{MAX_CLASSES - 1}); labels must be indices 0..K-1, not raw ids",
                i,
                top,
                MAX_CLASSES,
            )
        k = max(k, top + 1)
    return k


def check_rows(func: str, n_expected: int, arr_name: str, n_got: int, ref_name: str) -> None:
    if n_expected != n_got:
        raise ShapeError(f"{func}: {ref_name} has {n_expected} rows but {arr_name} has {n_got}")


def labels_and_scores(
    func: str, labels: Any, logits: Any, name: str = "logits"
) -> tuple[np.ndarray, np.ndarray]:
    y = labels_array(func, labels)
    z = scores_array(func, logits, name)
    check_rows(func, y.shape[0], name, z.shape[0], "labels")
    check_label_range(func, y, z.shape[1])
    return y, z


def check_float(
    func: str,
    name: str,
    value: Any,
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """A finite real number (bools, strings and None refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{func}: {name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{func}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{func}: {name} must be finite, got {value!r}")
    if positive and not v > 0:
        raise InvalidArgumentError(f"{func}: {name} must be > 0, got {value!r}")
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise InvalidArgumentError(
            f"{func}: {name} must be in [{minimum}, {maximum}], got {value!r}"
        )
    return v


def check_temperature(func: str, temperature: Any) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise InvalidArgumentError(f"{func}: temperature must be a number, got {temperature!r}")
    t = float(temperature)
    if not (np.isfinite(t) and t > 0):
        raise InvalidArgumentError(
            f"{func}: temperature must be finite and > 0, got {temperature!r}"
        )
    return t


def check_ci(func: str, ci: Any) -> float:
    """A confidence level strictly between 0 and 1."""
    if isinstance(ci, bool) or not isinstance(ci, numbers.Real):
        raise InvalidArgumentError(f"{func}: ci must be a number in (0, 1), got {ci!r}")
    c = float(ci)
    if not 0.0 < c < 1.0:
        raise InvalidArgumentError(f"{func}: ci must be in (0, 1), got {ci!r}")
    return c


def check_int(
    func: str, name: str, value: Any, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer in [minimum, maximum] (bools, floats, NaN and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentError(f"{func}: {name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InvalidArgumentError(f"{func}: {name} must be an integer {bound}, got {value!r}")
    return value


def check_bool(func: str, name: str, value: Any) -> bool:
    """A flag: ``True``/``False`` (NumPy bools too); anything else refused."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise InvalidArgumentError(f"{func}: {name} must be True or False, got {value!r}")


def check_n_bins(func: str, n_bins: Any) -> int:
    """A bin count: an integer in ``[1, 2**24]``."""
    if (
        isinstance(n_bins, bool)
        or not isinstance(n_bins, numbers.Integral)
        or not 1 <= int(n_bins) <= MAX_BINS
    ):
        raise InvalidArgumentError(
            f"{func}: n_bins must be a positive integer (at most {MAX_BINS}), got {n_bins!r}"
        )
    return int(n_bins)


# Beyond this a resample count is a typo, not a request: the Monte Carlo error
# of an interval endpoint is already negligible at 10^6, and 10^9 resamples of
# a few thousand examples take days (memory would not stop the run: large
# counts are summarised in bounded memory).
MAX_RESAMPLES = 10**9


def check_n_resamples(func: str, n_resamples: Any) -> int:
    """A resample count: an integer in ``[1, 10^9]`` (bools refused)."""
    return check_int(func, "n_resamples", n_resamples, 1, MAX_RESAMPLES)
