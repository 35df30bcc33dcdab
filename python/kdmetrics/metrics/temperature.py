"""Post-hoc temperature scaling: ``T* = argmin_T NLL(z / T, y)`` (docs/conventions.md)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kdmetrics import _kernels
from kdmetrics._arrays import RepeatedPasses, Rows
from kdmetrics._validation import (
    check_bool,
    check_float,
    check_int,
    check_label_range,
    check_rows,
    labels_array,
)
from kdmetrics.errors import InvalidArgumentError


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and the calibration-set NLL before and after."""

    temperature: float
    nll_before: float
    nll_after: float
    iterations: int
    at_bound: bool

    def __float__(self) -> float:
        return self.temperature


def fit_temperature(
    labels: Any,
    logits: Any,
    *,
    bounds: tuple[float, float] = (0.01, 100.0),
    tol: float = 1e-9,
    max_iter: int = 100,
    probs: bool = False,
) -> TemperatureFit:
    """Fits the temperature minimising the mean NLL of ``softmax(z / T)``.

    NLL is convex in ``beta = 1/T``; we solve ``dNLL/dbeta = 0`` by Newton's
    method on the exact first and second derivatives, safeguarded by bisection
    on a bracket, so it cannot stall the way a fixed-step optimiser (the common
    LBFGS recipe) can. ``bounds`` limits T; if the optimum lies beyond one (e.g.
    a calibration set the model classifies perfectly wants T -> 0) the bound is
    returned with a warning and ``at_bound=True``. ``float(fit)`` is ``T*``.
    """
    func = "fit_temperature"
    y = labels_array(func, labels)
    z = Rows(func, logits)
    check_rows(func, y.shape[0], "logits", z.shape[0], "labels")
    check_label_range(func, y, z.shape[1])
    if (
        isinstance(bounds, str)
        or not isinstance(bounds, Sequence | np.ndarray)
        or (isinstance(bounds, np.ndarray) and bounds.ndim != 1)
        or len(bounds) != 2
    ):
        raise InvalidArgumentError(
            f"{func}: bounds must be a pair (low, high) of temperatures, got {bounds!r}"
        )
    t_lo = check_float(func, "bounds[0]", bounds[0])
    t_hi = check_float(func, "bounds[1]", bounds[1])
    if not 0 < t_lo < t_hi:
        raise InvalidArgumentError(
            f"{func}: bounds must satisfy 0 < low < high < inf, got {bounds!r}"
        )
    if z.dtype_name != "float64" and 1.0 / t_lo > float(np.finfo(np.float32).max):
        # Rows of float16/32 logits are scaled in float32, where 1/T overflows.
        raise InvalidArgumentError(
            f"{func}: bounds[0] = {t_lo!r} is too small for {z.dtype_name} logits (1/T overflows "
            "float32); raise it or pass float64 logits"
        )
    max_iter = check_int(func, "max_iter", max_iter, 1)
    tol = check_float(func, "tol", tol, positive=True)
    probs = check_bool(func, "probs", probs)
    # Probabilities: log-probabilities a block of rows at a time, every pass.
    passes = RepeatedPasses(func, z, probs)

    def curve(beta: float) -> tuple[float, float, float]:
        nll, d1, d2 = passes.mean(
            lambda rows, b: _kernels.nll_curve(func, b, y[rows], beta, log_probs=probs)
        )
        return nll, d1, d2

    nll_before = curve(1.0)[0]
    lo, hi = 1.0 / t_hi, 1.0 / t_lo  # bracket in beta
    d_lo, d_hi = curve(lo)[1], curve(hi)[1]
    at_bound = False
    iterations = 0
    if d_lo >= 0:
        beta, at_bound = lo, True
    elif d_hi <= 0:
        beta, at_bound = hi, True
    else:
        beta = min(max(1.0, lo), hi)
        for iterations in range(1, max_iter + 1):  # noqa: B007
            _, d1, d2 = curve(beta)
            if abs(d1) <= tol:
                break
            if d1 > 0:
                hi = beta
            else:
                lo = beta
            step = beta - d1 / d2 if d2 > 0 else np.nan
            # Newton when it stays inside the bracket, else bisect.
            beta = step if lo < step < hi else 0.5 * (lo + hi)
            if hi - lo <= 1e-12 * hi:
                break
    if at_bound:
        warnings.warn(
            f"{func}: the NLL optimum lies at or beyond T = {1 / beta:g} (bounds {bounds}); "
            "returning the bound",
            RuntimeWarning,
            stacklevel=2,
        )
    return TemperatureFit(
        temperature=1.0 / beta,
        nll_before=nll_before,
        nll_after=curve(beta)[0],
        iterations=iterations,
        at_bound=at_bound,
    )


def split_half(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into a fit half and an evaluation half."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])
