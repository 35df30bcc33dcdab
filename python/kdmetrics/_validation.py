"""Input checks shared by the public functions.

Every check raises ``ValueError`` that names the function, the argument, what
was expected and what came. Nothing is copied unless it must be (labels are
made int64; logits are passed to Rust as they are, strided or not).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

# Array intake (tensors, bfloat16, probabilities) lives in _arrays.
from kdmetrics._arrays import (  # noqa: F401  (re-exported)
    FLOAT_DTYPES,
    PROBS_ATOL,
    as_array,
    log_of_probs,
    scores_array,
)

T = TypeVar("T")


def labels_array(func: str, labels: Any, name: str = "labels") -> np.ndarray:
    """A 1-D int64 array of class indices (not yet range-checked)."""
    arr = as_array(func, labels, name)
    if arr.ndim != 1:
        raise ValueError(f"{func}: {name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{func}: {name} is empty")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{func}: {name} must be integer class indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{func}: {name} has values too large for class indices")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_label_range(func: str, labels: np.ndarray, n_classes: int, name: str = "labels") -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{func}: {name}[{i}] = {int(labels[i])} is out of range [0, {n_classes}) "
            f"({bad.size} out-of-range value(s))"
        )


def check_rows(func: str, n_expected: int, arr_name: str, n_got: int, ref_name: str) -> None:
    if n_expected != n_got:
        raise ValueError(f"{func}: {ref_name} has {n_expected} rows but {arr_name} has {n_got}")


def labels_and_scores(
    func: str, labels: Any, logits: Any, name: str = "logits"
) -> tuple[np.ndarray, np.ndarray]:
    y = labels_array(func, labels)
    z = scores_array(func, logits, name)
    check_rows(func, y.shape[0], name, z.shape[0], "labels")
    check_label_range(func, y, z.shape[1])
    return y, z


def check_temperature(func: str, temperature: Any) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"{func}: temperature must be a number, got {temperature!r}") from None
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"{func}: temperature must be finite and > 0, got {temperature!r}")
    return t


def check_ci(func: str, ci: Any) -> float:
    """A confidence level strictly between 0 and 1."""
    try:
        c = float(ci)
    except (TypeError, ValueError):
        raise ValueError(f"{func}: ci must be a number in (0, 1), got {ci!r}") from None
    if not 0.0 < c < 1.0:
        raise ValueError(f"{func}: ci must be in (0, 1), got {ci!r}")
    return c


def check_int(
    func: str, name: str, value: Any, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer in [minimum, maximum] (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{func}: {name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{func}: {name} must be an integer {bound}, got {value!r}")
    return value


def check_n_resamples(func: str, n_resamples: Any) -> int:
    """A resample count: an integer >= 1 (bools refused)."""
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, numbers.Integral)
        or n_resamples < 1
    ):
        raise ValueError(f"{func}: n_resamples must be an integer >= 1, got {n_resamples!r}")
    return int(n_resamples)


_PREFIX = re.compile(r"^[a-z_]+: ")


def call_core(func: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Calls a Rust kernel and re-labels its errors with the public function name."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        raise ValueError(f"{func}: {_PREFIX.sub('', str(e), count=1)}") from None
