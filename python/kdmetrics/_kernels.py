"""The one door to the Rust extension ``kdmetrics._core``.

Every other module calls the kernels through this module, so the boundary
(what crosses it, which errors come back) is visible in one place. Callers
hand over arrays that ``_validation`` has already checked.

Each wrapper takes the public function's name first: a kernel does not know
who called it, so its errors (:mod:`kdmetrics.errors` classes) come back
without a name, and :func:`named` prefixes it, keeping class and attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from kdmetrics import _core
from kdmetrics._validation import check_int
from kdmetrics.errors import KdMetricsError

__version__: str = _core.__version__


@contextmanager
def named(func: str) -> Iterator[None]:
    """Re-raises a kernel's :class:`KdMetricsError` with ``func`` in front of its
    message: the same class with the same attributes."""
    try:
        yield
    except KdMetricsError as e:
        raise e.with_prefix(func) from None


class StatsOut(NamedTuple):
    pred: np.ndarray
    confidence: np.ndarray
    nll: np.ndarray | None
    brier: np.ndarray | None


class ConfusionOut(NamedTuple):
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


class BinsOut(NamedTuple):
    n: np.ndarray
    sum_conf: np.ndarray
    sum_correct: np.ndarray


class GroupSumsOut(NamedTuple):
    sums: np.ndarray
    counts: np.ndarray


def set_num_threads(n: int) -> None:
    """Sets the number of worker threads (0: one per CPU, or RAYON_NUM_THREADS).
    Results never depend on it."""
    _core.set_num_threads(check_int("set_num_threads", "n", n, 0, 1 << 16))


def get_num_threads() -> int:
    """The number of worker threads the kernels run on."""
    return _core.get_num_threads()


def example_stats(
    func: str,
    logits: np.ndarray,
    labels: np.ndarray | None,
    temperature: float,
    *,
    log_probs: bool = False,
    name: str = "logits",
) -> StatsOut:
    with named(func):
        return StatsOut(*_core.example_stats(logits, labels, temperature, log_probs, name))


def predict(func: str, logits: np.ndarray, name: str = "logits") -> np.ndarray:
    with named(func):
        return _core.predict(logits, name)


def top_k_hits(
    func: str, logits: np.ndarray, labels: np.ndarray, k: int, name: str = "logits"
) -> np.ndarray:
    with named(func):
        return _core.top_k_hits(logits, labels, k, name)


def divergences(
    func: str,
    p_logits: np.ndarray,
    q_logits: np.ndarray,
    temperature: float,
    *,
    p_log_probs: bool = False,
    q_log_probs: bool = False,
    p_name: str = "p_logits",
    q_name: str = "q_logits",
) -> tuple[np.ndarray, np.ndarray]:
    with named(func):
        return _core.divergences(
            p_logits, q_logits, temperature, p_log_probs, q_log_probs, p_name, q_name
        )


def nll_curve(
    func: str,
    logits: np.ndarray,
    labels: np.ndarray,
    beta: float,
    *,
    log_probs: bool = False,
    name: str = "logits",
) -> tuple[float, float, float]:
    with named(func):
        return _core.nll_curve(logits, labels, beta, log_probs, name)


def confusion_counts(
    func: str, labels: np.ndarray, preds: np.ndarray, n_classes: int
) -> ConfusionOut:
    with named(func):
        return ConfusionOut(*_core.confusion_counts(labels, preds, n_classes))


def bin_by_edges(
    func: str, confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray, right_closed: bool
) -> BinsOut:
    with named(func):
        return BinsOut(*_core.bin_by_edges(confidence, correct, edges, right_closed))


def bin_equal_mass(
    func: str, confidence: np.ndarray, correct: np.ndarray, n_bins: int
) -> tuple[BinsOut, np.ndarray, np.ndarray]:
    with named(func):
        sums, lo, hi = _core.bin_equal_mass(confidence, correct, n_bins)
    return BinsOut(*sums), lo, hi


def group_sums(func: str, values: np.ndarray, groups: np.ndarray, n_groups: int) -> GroupSumsOut:
    with named(func):
        return GroupSumsOut(*_core.group_sums(values, groups, n_groups))


class ResampleProblem:
    """A prepared paired bootstrap of M models (``_core.ResampleProblem``,
    model 0 the reference) whose errors name the public function ``func``.
    Built once; resampled in ranges."""

    def __init__(
        self,
        func: str,
        labels: np.ndarray,
        preds: list[np.ndarray],
        n_classes: int,
        class_tier: np.ndarray,
        n_tiers: int,
        statistics: list[tuple[str, list[np.ndarray] | None]],
        n_bins: int,
    ) -> None:
        self.func = func
        with named(func):
            self._core = _core.ResampleProblem(
                np.ascontiguousarray(labels, dtype=np.int64),
                [np.ascontiguousarray(p, dtype=np.int64) for p in preds],
                n_classes,
                np.ascontiguousarray(class_tier, dtype=np.int64),
                n_tiers,
                statistics,
                n_bins,
            )

    @property
    def n_stats(self) -> int:
        """Statistics (metric x group) per model."""
        return self._core.n_stats

    @property
    def n_models(self) -> int:
        return self._core.n_models

    @property
    def n_deltas(self) -> int:
        """Delta columns: statistic ``s`` of variant ``m >= 1`` is column
        ``s (M - 1) + m - 1``."""
        return self._core.n_deltas

    def deltas(self, seed: int, start: int, count: int) -> np.ndarray:
        """Deltas (model - reference) of resamples ``start .. start + count``
        (count x n_deltas)."""
        with named(self.func):
            return self._core.deltas(seed, start, count)

    def deltas_into(self, seed: int, start: int, out: np.ndarray) -> None:
        """:meth:`deltas` of resamples ``start .. start + len(out)`` written into
        ``out``, a C-contiguous float64 (rows x n_deltas) array or row slice."""
        with named(self.func):
            self._core.deltas_into(seed, start, out)

    def full(self) -> np.ndarray:
        """Values of every model on the full data (n_stats x M)."""
        with named(self.func):
            return self._core.full()

    def jackknife_accel(self) -> np.ndarray:
        """BCa acceleration of each delta column (n_deltas)."""
        with named(self.func):
            return self._core.jackknife_accel()

    def eval_indices(self, indices: np.ndarray) -> np.ndarray:
        """Values of every model (R x n_stats x M) for explicit draws (rows of ``indices``)."""
        with named(self.func):
            return self._core.eval_indices(indices)


def column_summary(
    func: str, values: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column of the float64 matrix ``values``: non-NaN count, min, max
    (NaN when none), and the counts ``<=`` and ``<`` each of the column's
    ``thresholds`` (``n_cols x T``), in one pass over the rows."""
    with named(func):
        return _core.column_summary(
            np.ascontiguousarray(values, dtype=np.float64),
            np.ascontiguousarray(thresholds, dtype=np.float64),
        )


def order_statistics(
    func: str, values: np.ndarray, cols: np.ndarray, ranks: np.ndarray
) -> np.ndarray:
    """The ``ranks[i]``-th smallest non-NaN value of column ``cols[i]`` of the
    float64 matrix ``values`` (IEEE total order), NaN when out of range."""
    with named(func):
        return _core.order_statistics(
            np.ascontiguousarray(values, dtype=np.float64),
            np.ascontiguousarray(cols, dtype=np.int64),
            np.ascontiguousarray(ranks, dtype=np.int64),
        )


def bootstrap_indices(func: str, n: int, seed: int, i: int, count: int) -> np.ndarray:
    with named(func):
        return _core.bootstrap_indices(n, seed, i, count)
