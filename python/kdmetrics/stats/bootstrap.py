"""Paired bootstrap of the difference between two models on the same examples.

The per-example quantities each metric needs are computed once, through the
metric registry (:data:`kdmetrics.metrics.registry.METRICS`: a metric's
``statistic`` kind and its ``per_example`` values). The Rust kernel
(:class:`kdmetrics._kernels.ResampleProblem`) is built once from those and knows
only statistic *kinds* (``example_mean``, ``macro_f1``, ``binned``,
``pair_mean``), never metric names; it draws every resample (its own
xoshiro256++ stream per resample index, seeded from ``(seed, i)``), scores
both models on every group from that same draw, and returns the deltas B - A.
It is the comparison engine's kernel with two models (:func:`kdmetrics.compare`
scores M models on the same draws; each variant's numbers equal this
function's on the pair, bit for bit).
Resamples run in chunks, so Ctrl-C is honoured between chunks and a progress
callback or bar can follow them.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._arrays import as_array
from kdmetrics._validation import (
    check_bool,
    check_ci,
    check_int,
    check_label_range,
    check_n_resamples,
    check_rows,
    labels_array,
    n_classes_of,
    scores_array,
)
from kdmetrics.errors import AlignmentError, InvalidArgumentError, ShapeError
from kdmetrics.metrics.registry import (
    DEFAULT_BOOTSTRAP_METRICS,
    MetricSpec,
    ModelInputs,
    spec,
)
from kdmetrics.metrics.registry import METRICS as _REGISTRY
from kdmetrics.metrics.scoring import ExampleStats
from kdmetrics.tiers import TIER_NAMES, tier_codes

# Every registered metric can be bootstrapped.
METRICS: tuple[str, ...] = tuple(_REGISTRY)
# What is computed when no metrics are named; with ``reference_logits`` the
# default reference metrics are added.
DEFAULT_METRICS: tuple[str, ...] = tuple(
    n for n in DEFAULT_BOOTSTRAP_METRICS if _REGISTRY[n].needs != "reference"
)
METHODS: tuple[str, ...] = ("percentile", "basic", "bca")
COLUMNS: tuple[str, ...] = (
    "metric",
    "group",
    "a",
    "b",
    "delta",
    "median_delta",
    "ci_low",
    "ci_high",
    "p_delta_le_0",
    "n",
    "flips_a_only",
    "flips_b_only",
)
# Added to every table: the row's interval method and whether the simulation
# harness measured its coverage inside the band (docs/intervals.md).
POLICY_COLUMNS: tuple[str, ...] = ("method", "trusted", "flag_reason")
_NORMAL = NormalDist()
# Resample indices and bins are 32 and 16 bits wide in the kernel.
_MAX_EXAMPLES = 2**32 - 1
_MAX_BINS = 65535
# Each chunk of resamples aims at this many seconds: Ctrl-C waits at most
# about one chunk, and the per-chunk overhead (a call, a copy, the wait for the
# chunk's last task) stays around 1 % (benches/bench_bootstrap.py measures it).
_CHUNK_SECONDS = 0.15
# Chunks are whole multiples of this many resamples per worker thread (the
# kernel's task size), so every thread gets the same share.
_TASK = 16
# Resampled deltas are kept in memory up to this size; beyond it they are
# regenerated block by block (resample i depends only on (seed, i)) and
# summarised in passes with bounded memory (kdmetrics.stats.streaming), so
# memory stops growing with the number of resamples.
KEEP_DELTAS_BYTES = 64 * 2**20


@dataclass
class _Problem:
    """The prepared kernel problem, and what the table needs."""

    kernel: _kernels.ResampleProblem
    specs: list[MetricSpec]
    groups: list[str]
    example_group: np.ndarray  # per example: 0 without tiers, else 1 + tier
    correct: list[np.ndarray]  # per model, pred == label

    @property
    def n_models(self) -> int:
        return len(self.correct)

    def column(self, metric_index: int, group_index: int, variant: int) -> int:
        """The delta column of a metric, group and variant (1 .. M - 1)."""
        s = metric_index * len(self.groups) + group_index
        return s * (self.n_models - 1) + variant - 1


def _metric_specs(func: str, metrics: Any, with_reference: bool) -> list[MetricSpec]:
    """The validated, de-duplicated list of metrics; the default reference
    metrics are added when a reference is given."""
    if metrics is None:
        raise InvalidArgumentError(
            f"{func}: metrics must be a metric name or a sequence of names, got None; "
            f"choose from {', '.join(METRICS)}"
        )
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, Iterable):
        raise InvalidArgumentError(
            f"{func}: metrics must be a metric name or a sequence of names, got {metrics!r}"
        )
    names = list(metrics)
    if not names:
        raise InvalidArgumentError(f"{func}: metrics is empty; choose from {', '.join(METRICS)}")
    for m in names:
        if not isinstance(m, str):
            raise InvalidArgumentError(f"{func}: metrics must hold metric names, got {m!r}")
    specs = [spec(func, m) for m in names]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"{func}: metrics has duplicates: {names}")
    if with_reference:
        specs += [
            _REGISTRY[n]
            for n in DEFAULT_BOOTSTRAP_METRICS
            if _REGISTRY[n].needs == "reference" and n not in names
        ]
    else:
        need = [s.name for s in specs if s.needs == "reference"]
        if need:
            raise InvalidArgumentError(
                f"{func}: metric(s) {', '.join(map(repr, need))} need reference_logits "
                "(the teacher)"
            )
    return specs


def _scores_or_preds(func: str, y: np.ndarray, scores: Any, name: str) -> np.ndarray:
    """Validated 2-D scores, or 1-D predicted classes (int64)."""
    arr = as_array(func, scores, name)  # torch tensors too (detached)
    if arr.ndim == 2:
        z = scores_array(func, arr, name)
        check_rows(func, y.shape[0], name, z.shape[0], "labels")
        return z
    if arr.ndim != 1:
        raise ShapeError(
            f"{func}: {name} must be 2-D logits or 1-D predicted classes, got shape {arr.shape}"
        )
    pred = labels_array(func, arr, name)
    check_rows(func, y.shape[0], name, pred.shape[0], "labels")
    return pred


def _model(
    func: str,
    y: np.ndarray,
    arr: np.ndarray,
    name: str,
    reference_logits: Any,
    probs: bool,
    reference_probs: bool,
    need_stats: bool,
) -> ModelInputs:
    """One model's inputs for the registry's ``per_example`` functions. With
    predicted classes, or logits when no metric needs probabilities, only the
    argmax is computed."""
    m = ModelInputs(
        func,
        y,
        arr,
        name,
        reference_logits=reference_logits,
        probs=probs,
        reference_probs=reference_probs,
    )
    if arr.ndim == 1 or not (need_stats or probs):
        pred = arr if arr.ndim == 1 else _kernels.predict(func, arr, name)
        conf = np.full(y.shape[0], np.nan)
        m.__dict__["stats"] = ExampleStats(y, pred, conf, None, None)
    return m


def _prepare(
    func: str,
    labels: Any,
    scores: list[Any],
    score_names: list[str],
    tier_of_class: Any,
    metrics: Any,
    reference_logits: Any,
    n_bins: Any,
    probs: Any = False,
    reference_probs: Any = None,
) -> _Problem:
    """The kernel problem of M models (``scores[0]`` the reference) on the
    same examples; ``score_names`` name them in errors."""
    n_bins = check_int(func, "n_bins", n_bins, 1, _MAX_BINS)
    probs = check_bool(func, "probs", probs)
    if reference_probs is None:  # the reference is read like the models
        reference_probs = probs
    reference_probs = check_bool(func, "reference_probs", reference_probs)
    specs = _metric_specs(func, metrics, reference_logits is not None)

    y = labels_array(func, labels)
    if y.shape[0] < 2:
        raise ShapeError(f"{func}: labels needs at least 2 examples, got {y.shape[0]}")
    if y.shape[0] > _MAX_EXAMPLES:
        raise ShapeError(f"{func}: at most {_MAX_EXAMPLES} examples, got {y.shape[0]}")
    # Class counts first: a mismatch would otherwise surface as a label error.
    # as_array: tensors read, ragged lists refused by name (no copy of arrays).
    scores = [as_array(func, z, name) for z, name in zip(scores, score_names, strict=True)]
    if reference_logits is not None:
        reference_logits = as_array(func, reference_logits, "reference_logits")
    named = [*zip(score_names, scores, strict=True), ("reference_logits", reference_logits)]
    widths = {name: np.shape(v)[1] for name, v in named if v is not None and np.ndim(v) == 2}
    if len(set(widths.values())) > 1:
        desc = " but ".join(f"{n} has {k} classes" for n, k in widths.items())
        raise AlignmentError(f"{func}: {desc}")
    zs = [_scores_or_preds(func, y, z, name) for z, name in zip(scores, score_names, strict=True)]
    for s in specs:
        if s.needs == "predictions":
            continue
        for z, name in zip(zs, score_names, strict=True):
            if z.ndim == 1:
                raise InvalidArgumentError(
                    f"{func}: metric {s.name!r} needs logits, but {name} holds predicted "
                    "classes (1-D); use metrics that need predictions only, such as "
                    "('macro_f1', 'accuracy')"
                )
    two_d = [z for z in zs if z.ndim == 2]
    if two_d:
        k = two_d[0].shape[1]
    else:
        k = n_classes_of(func, y, *zs, names=("labels", *score_names))
        if tier_of_class is not None and np.ndim(tier_of_class) == 1:
            k = max(k, len(tier_of_class))
    check_label_range(func, y, k)
    for z, name in zip(zs, score_names, strict=True):
        if z.ndim == 1:
            check_label_range(func, z, k, name)

    need_stats = any(s.needs != "predictions" or s.statistic == "binned" for s in specs)
    models = [
        _model(func, y, z, name, reference_logits, probs, reference_probs, need_stats)
        for z, name in zip(zs, score_names, strict=True)
    ]

    if tier_of_class is None:
        class_tier = np.zeros(k, dtype=np.int64)
        n_tiers, groups = 1, ["all"]
        example_group = np.zeros(y.shape[0], dtype=np.int64)
    else:
        class_tier = tier_codes(func, tier_of_class, k)
        n_tiers, groups = len(TIER_NAMES), ["all", *TIER_NAMES]
        example_group = class_tier[y] + 1

    def values(v: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(v, dtype=np.float64)

    def share_reference(m: ModelInputs, others: list[ModelInputs]) -> None:
        # The reference's argmax is the same for every model: computed once.
        if "reference_pred" in m.__dict__:
            for o in others:
                o.__dict__.setdefault("reference_pred", m.__dict__["reference_pred"])

    statistics: list[tuple[str, list[np.ndarray] | None]] = []
    for s in specs:
        if s.statistic == "macro_f1":
            statistics.append(("macro_f1", None))
        elif s.statistic == "binned":
            statistics.append(("binned", [values(m.stats.confidence) for m in models]))
        elif s.per_example is None:
            raise InvalidArgumentError(f"{func}: metric {s.name!r} has no per-example values")
        elif s.statistic == "example_mean":
            per_model = []
            for m in models:
                per_model.append(values(s.per_example(m)))
                share_reference(m, models)
            statistics.append(("example_mean", per_model))
        else:  # pair_mean: each variant's inputs, with model 0 as the reference
            pairs = []
            for z, name, m in zip(zs[1:], score_names[1:], models[1:], strict=True):
                pair = ModelInputs(func, y, z, name, reference_logits=zs[0], probs=probs,
                                   reference_probs=probs)  # fmt: skip
                pair.__dict__["stats"] = m.stats
                pair.__dict__["reference_pred"] = models[0].pred
                pairs.append(values(s.per_example(pair)))
            statistics.append(("pair_mean", pairs))
    kernel = _kernels.ResampleProblem(
        func, y, [m.pred for m in models], k, class_tier, n_tiers, statistics, n_bins
    )
    return _Problem(kernel, specs, groups, example_group, [m.pred == y for m in models])


def interval(
    deltas: np.ndarray,
    estimate: np.ndarray,
    ci: float = 0.95,
    method: str = "percentile",
    accel: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval of each column of ``deltas`` (resamples x statistics).

    ``percentile``: quantiles ``(1 - ci)/2`` and ``(1 + ci)/2`` with linear
    interpolation (NumPy's default). ``basic``: ``2 estimate - q_hi``,
    ``2 estimate - q_lo``. ``bca``: Efron's bias-corrected and accelerated
    interval as in ``scipy.stats.bootstrap``: ``z0`` from the fraction of
    resamples below the estimate (ties count half), acceleration ``accel`` from
    the jackknife. Resamples where a statistic is undefined (NaN, e.g. an empty
    tier) are left out of its column. A degenerate BCa (all resamples on one
    side of the estimate, or an undefined acceleration, e.g. identical models)
    gives NaN and a ``RuntimeWarning``.
    """
    func = "interval"
    ci = check_ci(func, ci)
    if method not in METHODS:
        raise InvalidArgumentError(f"{func}: unknown method {method!r}; choose from {METHODS}")
    d = np.asarray(deltas, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    alpha = (1.0 - ci) / 2.0
    n_stats = d.shape[1]
    lo = np.full(n_stats, np.nan)
    hi = np.full(n_stats, np.nan)
    if method != "bca":
        if np.isnan(d).any():
            q = np.nanquantile(d, [alpha, 1.0 - alpha], axis=0)
        else:
            q = np.quantile(d, [alpha, 1.0 - alpha], axis=0)
        if method == "percentile":
            return q[0], q[1]
        return 2 * est - q[1], 2 * est - q[0]
    if accel is None:
        raise InvalidArgumentError(f"{func}: method='bca' needs accel (the jackknife acceleration)")
    z_alpha = _NORMAL.inv_cdf(alpha)
    degenerate = []
    for s in range(n_stats):
        col = d[:, s]
        col = col[~np.isnan(col)]
        a = float(accel[s])
        if col.size == 0 or not np.isfinite(est[s]) or not np.isfinite(a):
            degenerate.append(s)
            continue
        frac = (np.count_nonzero(col < est[s]) + np.count_nonzero(col <= est[s])) / (2 * col.size)
        if not 0.0 < frac < 1.0:
            degenerate.append(s)
            continue
        z0 = _NORMAL.inv_cdf(frac)
        levels = []
        for z in (z_alpha, -z_alpha):
            num = z0 + z
            levels.append(_NORMAL.cdf(z0 + num / (1.0 - a * num)))
        lo[s], hi[s] = np.quantile(col, levels)
    if degenerate:
        warnings.warn(
            f"BCa interval is degenerate (identical resampled values or undefined jackknife "
            f"acceleration) for {len(degenerate)} statistic(s); returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return lo, hi


Progress = Callable[[int, int], Any]


class _ProgressLine:
    """A progress display on stderr: one line redrawn in place on a terminal,
    plain lines every ``every`` seconds (and at the end) otherwise."""

    def __init__(self, func: str, total: int, every: float = 5.0) -> None:
        self.func, self.total, self.every = func, total, every
        self.tty = sys.stderr.isatty()
        self.last = time.monotonic()
        self.t0 = self.last

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        pct = 100.0 * done / total
        text = f"{self.func}: {done}/{total} resamples ({pct:.0f}%, {now - self.t0:.1f} s)"
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if done == total else ""))
            sys.stderr.flush()
        elif now - self.last >= self.every or done == total:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            self.last = now

    def close(self, done: int) -> None:
        if self.tty and done < self.total:
            sys.stderr.write("\n")


def _progress(func: str, progress: Any, total: int) -> Progress | None:
    if progress is None or progress is False:
        return None
    if progress is True:
        return _ProgressLine(func, total)
    if callable(progress):
        return progress  # type: ignore[no-any-return]
    raise InvalidArgumentError(
        f"{func}: progress must be None, True/False or a callable(done, total), got {progress!r}"
    )


def _allocate(func: str, n_resamples: int, n_stats: int) -> np.ndarray:
    """The (n_resamples x n_stats) deltas array, refused (not attempted) when it
    cannot fit in this machine's memory."""
    need = n_resamples * n_stats * 8
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = None
    if physical is not None and need > physical:
        raise InvalidArgumentError(
            f"{func}: n_resamples={n_resamples} needs {need / 2**30:.3g} GiB for the "
            f"resampled deltas ({n_stats} statistics), more than this machine's "
            f"{physical / 2**30:.3g} GiB; use fewer resamples, or compute ranges with start="
        )
    try:
        return np.empty((n_resamples, n_stats))
    except MemoryError:
        raise InvalidArgumentError(
            f"{func}: cannot allocate {need / 2**30:.3g} GiB for n_resamples={n_resamples}"
        ) from None


def run_resamples(
    func: str,
    kernel: _kernels.ResampleProblem,
    seed: int,
    start: int,
    n_resamples: int,
    progress: Progress | None = None,
    chunk_seconds: float = _CHUNK_SECONDS,
) -> np.ndarray:
    """Deltas of resamples ``start .. start + n_resamples`` (rows), computed in
    chunks from Python. Each chunk runs with the GIL released; between chunks
    Python handles signals (Ctrl-C raises ``KeyboardInterrupt`` within about
    one chunk) and ``progress(done, total)`` is called. The chunk size adapts
    so each takes about ``chunk_seconds``; resample ``i`` depends only on
    ``(seed, i)``, so the chunking never changes the result.
    """
    out = _allocate(func, n_resamples, kernel.n_deltas)
    step = _TASK * max(_kernels.get_num_threads(), 1)
    done, chunk = 0, 4 * step
    try:
        while done < n_resamples:
            count = min(chunk, n_resamples - done)
            t0 = time.perf_counter()
            kernel.deltas_into(seed, start + done, out[done : done + count])
            elapsed = time.perf_counter() - t0
            done += count
            if progress is not None:
                progress(done, n_resamples)
            # Aim at chunk_seconds; grow at most 4x per step, so one slow
            # chunk cannot follow a burst of fast ones.
            rate = count / max(elapsed, 1e-6)
            chunk = int(min(rate * chunk_seconds, 4 * count)) // step * step or step
    finally:
        if isinstance(progress, _ProgressLine):
            progress.close(done)
    return out


def paired_bootstrap(
    labels: Any,
    logits_a: Any,
    logits_b: Any,
    *,
    tier_of_class: Any = None,
    metrics: Any = DEFAULT_METRICS,
    reference_logits: Any = None,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    method: str = "auto",
    seed: int = 0,
    return_deltas: bool = False,
    n_bins: int = 15,
    start: int = 0,
    probs: bool = False,
    reference_probs: bool | None = None,
    progress: bool | Progress | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Paired bootstrap of B - A for each (metric, group).

    Both models are scored on the same resampled examples; every metric and
    every group of a resample comes from that one draw. ``metrics`` names any
    registered metric (:data:`kdmetrics.metrics.registry.METRICS`). Groups:
    ``all``, and with ``tier_of_class`` (length K, codes 0/1/2 or names)
    ``head``, ``mid``, ``tail``; a tier's metrics use the examples whose true
    label is in it, except macro F1, the mean F1 over the tier's classes from
    counts over all examples of the resample. A class with
    ``TP + FP + FN = 0`` in a resample is left out of that resample's macro
    average. ECE: ``n_bins`` equal-width, right-closed bins as in
    :func:`kdmetrics.ece`. ``reference_logits`` (a teacher) adds ``kl`` =
    KL(teacher || model) and ``js``, and allows ``teacher_agreement``.
    ``logits_a``/``logits_b`` may be 1-D predicted classes, which support the
    metrics that need predictions only (``accuracy``, ``macro_f1``,
    ``churn``). ``probs=True`` reads ``logits_a``/``logits_b`` as
    probabilities, ``reference_probs`` (default: ``probs``) the reference (validated: finite,
    >= 0, rows summing to 1).

    Returns a DataFrame with one row per (metric, group) and columns
    ``metric, group, a, b, delta`` (B - A on the full data), ``median_delta``,
    ``ci_low, ci_high`` (the ``method`` interval at level ``ci``: "percentile",
    "basic" or "bca", see :func:`interval`), ``p_delta_le_0`` (fraction of
    resamples with delta <= 0), ``n`` (examples in the group) and
    ``flips_a_only`` = #(A right, B wrong), ``flips_b_only`` = #(A wrong,
    B right): filled on accuracy rows (nullable Int64), ``<NA>`` elsewhere.

    A metric of a *pair* of models (statistic kind ``pair_mean``, e.g.
    ``churn``) has no value per model: its row has ``a`` and ``b`` NaN and
    reports the pair's value on the full data in ``delta``, with its
    resampled distribution in ``median_delta``, ``ci_low``/``ci_high`` and
    ``p_delta_le_0`` (the fraction of resamples where it is 0).

    Resample ``i`` draws from its own stream derived from ``(seed, i)``, so
    results do not depend on the thread count, and ``start`` computes resamples
    ``start .. start + n_resamples - 1`` alone: the deltas of ranges computed
    anywhere concatenate to exactly those of one run (then
    :func:`interval` gives the interval). With ``return_deltas=True`` the
    result is ``(table, deltas)``, ``deltas[(metric, group)]`` the 1-D array of
    resampled deltas in resample order.

    The resamples run in chunks: Ctrl-C stops the run within about a tenth of a
    second (``KeyboardInterrupt``). ``progress=True`` shows progress on stderr
    (a line redrawn in place on a terminal, a plain line every 5 s otherwise);
    a callable is called as ``progress(done, total)`` after each chunk.
    """
    func = "paired_bootstrap"
    ci = check_ci(func, ci)
    n_resamples = check_n_resamples(func, n_resamples)
    seed = check_int(func, "seed", seed, 0, 2**64 - 1)
    start = check_int(func, "start", start, 0, 2**64 - 1)
    if start + n_resamples > 2**64:
        raise InvalidArgumentError(f"{func}: start + n_resamples must be at most 2**64")
    if not isinstance(method, str) or method not in (*METHODS, "auto"):
        raise InvalidArgumentError(
            f"{func}: unknown method {method!r}; choose from {('auto', *METHODS)}"
        )
    return_deltas = check_bool(func, "return_deltas", return_deltas)
    report = _progress(func, progress, n_resamples)
    p = _prepare(
        func, labels, [logits_a, logits_b], ["logits_a", "logits_b"], tier_of_class, metrics,
        reference_logits, n_bins, probs, reference_probs,
    )  # fmt: skip
    summary = summarize(
        func, p, seed, start, n_resamples, ci, method, keep=True if return_deltas else None,
        progress=report,
    )  # fmt: skip
    (table,) = variant_tables(p, summary)
    if not return_deltas:
        return table
    assert summary.deltas is not None
    return table, variant_draws(p, summary.deltas, 1)


@dataclass
class Resampled:
    """What :func:`bootstrap_models` returns: a table per variant, and the
    resampled deltas on demand."""

    problem: _Problem
    summary: DeltaSummary
    tables: list[pd.DataFrame]
    seed: int
    n_resamples: int

    def draws(self, metric: str, group: str, variants: list[int]) -> np.ndarray:
        """Resampled deltas (resamples x ``len(variants)``) of ``metric`` in
        ``group`` for the given variants (1 .. M - 1), in resample order: read
        from memory when kept, else computed again (the same numbers: resample
        ``i`` depends only on the seed and ``i``)."""
        p = self.problem
        mi = [s.name for s in p.specs].index(metric)
        cols = [p.column(mi, p.groups.index(group), v) for v in variants]
        if self.summary.deltas is not None:
            return self.summary.deltas[:, cols]
        out = np.empty((self.n_resamples, len(cols)))
        done = 0
        for block in _resample_blocks(p.kernel, self.seed, 0, self.n_resamples, None):
            out[done : done + block.shape[0]] = block[:, cols]
            done += block.shape[0]
        return out


def bootstrap_models(
    func: str,
    labels: Any,
    scores: list[Any],
    score_names: list[str],
    *,
    tier_of_class: Any = None,
    metrics: Any = DEFAULT_METRICS,
    reference_logits: Any = None,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    method: str = "auto",
    seed: int = 0,
    n_bins: int = 15,
    keep_deltas: bool | None = None,
    progress: Progress | None = None,
) -> Resampled:
    """:func:`paired_bootstrap` of every variant (``scores[1:]``) against the
    reference ``scores[0]``, all scored on the same resamples: one draw per
    resample for every model, the reference's statistics computed once. Each
    variant's table equals ``paired_bootstrap(labels, scores[0], scores[v],
    ...)`` with the same seed, bit for bit, plus ``ci_low_adjusted`` and
    ``ci_high_adjusted``: the row's interval at the Bonferroni level
    ``1 - (1 - ci) / n_variants`` (BCa rows: percentile). Arguments are
    validated by the caller. ``keep_deltas``: see :func:`summarize`.
    """
    p = _prepare(
        func, labels, scores, score_names, tier_of_class, metrics, reference_logits, n_bins
    )
    summary = summarize(
        func, p, seed, 0, n_resamples, ci, method, n_adjust=p.n_models - 1, keep=keep_deltas,
        progress=progress,
    )  # fmt: skip
    tables = variant_tables(p, summary, adjusted=True)
    return Resampled(p, summary, tables, seed, n_resamples)


def variant_draws(
    p: _Problem, deltas: np.ndarray, variant: int
) -> dict[tuple[str, str], np.ndarray]:
    """``(metric, group) ->`` the resampled deltas of ``variant`` (1 .. M - 1)."""
    return {
        (ms.name, group): np.ascontiguousarray(deltas[:, p.column(mi, g, variant)])
        for mi, ms in enumerate(p.specs)
        for g, group in enumerate(p.groups)
    }


@dataclass
class DeltaSummary:
    """Per delta column (statistic ``s``, variant ``v``: ``p.column``): what the
    tables report, from the resampled deltas."""

    full: np.ndarray  # n_stats x M, every model on all examples
    estimate: np.ndarray  # variant - reference on all examples (a pair's value)
    method: np.ndarray  # interval method of each column
    lo: np.ndarray
    hi: np.ndarray
    median: np.ndarray  # the 0.5 quantile (linear interpolation)
    p_le_0: np.ndarray  # fraction of defined resamples with delta <= 0
    lo_adjusted: np.ndarray  # the column's method at the Bonferroni level (NaN if not asked)
    hi_adjusted: np.ndarray
    deltas: np.ndarray | None  # resamples x columns, when kept in memory
    passes: int  # times the resamples were computed


def summarize(
    func: str,
    p: _Problem,
    seed: int,
    start: int,
    n_resamples: int,
    ci: float,
    method: str,
    *,
    n_adjust: int | None = None,
    keep: bool | None = None,
    progress: Progress | None = None,
) -> DeltaSummary:
    """Intervals, medians and ``P(delta <= 0)`` of every delta column.

    With ``keep`` (default: when the deltas take at most
    :data:`KEEP_DELTAS_BYTES`) the deltas are computed once and kept;
    otherwise they are regenerated for each pass of
    :func:`kdmetrics.stats.streaming.stream_quantiles`, which holds a fixed
    amount of memory whatever ``n_resamples``. Both give the same numbers:
    every quantile is ``np.nanquantile`` of the column, bit for bit.
    ``n_adjust`` adds each column's interval at the Bonferroni-adjusted level
    ``1 - (1 - ci) / n_adjust``.
    """
    from kdmetrics.stats.policy import default_method
    from kdmetrics.stats.streaming import quantiles_in_memory, stream_quantiles

    full = p.kernel.full()
    n_groups, n_var = len(p.groups), p.n_models - 1
    n_cols = p.kernel.n_deltas
    # One interval method per metric: the one whose coverage the simulation
    # harness measured closest to nominal ("auto"), or the one asked for.
    stat_method = np.repeat(
        [default_method(s.name) if method == "auto" else method for s in p.specs], n_groups
    )
    col_method = np.repeat(stat_method, n_var)
    bca = col_method == "bca"
    accel = p.kernel.jackknife_accel() if bca.any() else None
    pair = np.repeat([s.statistic == "pair_mean" for s in p.specs], n_groups)
    variants = full[:, 1:]
    estimate = np.where(pair[:, None], variants, variants - full[:, :1]).ravel()
    if keep is None:
        keep = n_resamples * n_cols * 8 <= KEEP_DELTAS_BYTES
    deltas = run_resamples(func, p.kernel, seed, start, n_resamples, progress) if keep else None

    def blocks() -> Iterable[np.ndarray]:
        if deltas is not None:
            yield deltas
            return
        yield from _resample_blocks(p.kernel, seed, start, n_resamples, progress)

    alpha = (1.0 - ci) / 2.0
    adj = np.nan if n_adjust is None else (1.0 - ci) / n_adjust / 2.0
    degenerate: list[int] = []

    def levels(summary: Any) -> np.ndarray:
        out = np.empty((n_cols, 5))
        out[:] = [alpha, 1.0 - alpha, 0.5, adj, 1.0 - adj]
        if not bca.any():
            return out
        assert accel is not None
        z_alpha = _NORMAL.inv_cdf(alpha)
        for c in np.flatnonzero(bca):
            n, a = int(summary.n_defined[c]), float(accel[c])
            frac = (summary.count_lt[c, 1] + summary.count_le[c, 1]) / (2 * n) if n else np.nan
            if n == 0 or not np.isfinite(estimate[c]) or not np.isfinite(a) or not 0 < frac < 1:
                degenerate.append(int(c))
                out[c, :2] = np.nan
                continue
            z0 = _NORMAL.inv_cdf(frac)
            for i, z in enumerate((z_alpha, -z_alpha)):
                num = z0 + z
                out[c, i] = _NORMAL.cdf(z0 + num / (1.0 - a * num))
        return out

    thresholds = np.column_stack([np.zeros(n_cols), estimate])
    if deltas is not None:
        q, counted = quantiles_in_memory(deltas, levels, thresholds=thresholds)
    else:
        q, counted = stream_quantiles(blocks, n_cols, levels, thresholds=thresholds)
    if degenerate:
        warnings.warn(
            f"BCa interval is degenerate (identical resampled values or undefined jackknife "
            f"acceleration) for {len(degenerate)} statistic(s); returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    lo, hi = q[:, 0].copy(), q[:, 1].copy()
    lo_adj, hi_adj = q[:, 3].copy(), q[:, 4].copy()
    basic = col_method == "basic"
    lo[basic], hi[basic] = 2 * estimate[basic] - q[basic, 1], 2 * estimate[basic] - q[basic, 0]
    lo_adj[basic] = 2 * estimate[basic] - q[basic, 4]
    hi_adj[basic] = 2 * estimate[basic] - q[basic, 3]
    # BCa at the adjusted level is not defined here: the percentile one stands in.
    with np.errstate(invalid="ignore", divide="ignore"):
        p_le_0 = counted.count_le[:, 0] / counted.n_defined
    return DeltaSummary(
        full=full, estimate=estimate, method=col_method, lo=lo, hi=hi, median=q[:, 2],
        p_le_0=p_le_0, lo_adjusted=lo_adj, hi_adjusted=hi_adj, deltas=deltas,
        passes=counted.passes,
    )  # fmt: skip


def _resample_blocks(
    kernel: _kernels.ResampleProblem,
    seed: int,
    start: int,
    n_resamples: int,
    progress: Progress | None,
    chunk: int = 1024,
) -> Iterable[np.ndarray]:
    """The deltas of resamples ``start .. start + n_resamples`` in blocks of
    ``chunk`` rows (Ctrl-C is honoured between blocks)."""
    done = 0
    while done < n_resamples:
        count = min(chunk, n_resamples - done)
        yield kernel.deltas(seed, start + done, count)
        done += count
        if progress is not None:
            progress(done, n_resamples)


def variant_tables(
    p: _Problem, summary: DeltaSummary, adjusted: bool = False
) -> list[pd.DataFrame]:
    """The table of :func:`paired_bootstrap` for each variant against model 0
    (with ``adjusted``, also ``ci_low_adjusted``/``ci_high_adjusted``), each
    built from whole columns in one step."""
    from kdmetrics.stats.policy import trust

    n_groups, n_specs = len(p.groups), len(p.specs)
    full, est = summary.full, summary.estimate
    pair = np.repeat([s.statistic == "pair_mean" for s in p.specs], n_groups)
    group_n = np.bincount(p.example_group, minlength=n_groups)
    group_n[0] = p.example_group.shape[0]
    metric = np.repeat([s.name for s in p.specs], n_groups).tolist()
    group = list(p.groups) * n_specs
    on_accuracy = np.repeat([s.name == "accuracy" for s in p.specs], n_groups)
    in_group = [np.ones(p.example_group.shape[0], dtype=bool)]
    in_group += [p.example_group == g for g in range(1, n_groups)]
    verdict_of: dict[tuple[str, str, str], tuple[bool, str]] = {}
    tables = []
    for v in range(1, p.n_models):
        cols = [p.column(mi, g, v) for mi in range(n_specs) for g in range(n_groups)]
        a_only = p.correct[0] & ~p.correct[v]
        b_only = ~p.correct[0] & p.correct[v]
        flips_a = np.tile([np.count_nonzero(a_only & sel) for sel in in_group], n_specs)
        flips_b = np.tile([np.count_nonzero(b_only & sel) for sel in in_group], n_specs)
        # method, trusted, flag_reason: the measured coverage verdict of each row.
        methods = summary.method[cols].tolist()
        keys = list(zip(metric, group, methods, strict=True))
        for key in keys:
            if key not in verdict_of:  # the same for every variant: asked once
                verdict_of[key] = trust(*key)
        verdicts = [verdict_of[key] for key in keys]
        data: dict[str, Any] = {
            "metric": metric,
            "group": group,
            "a": np.where(pair, np.nan, full[:, 0]),
            "b": np.where(pair, np.nan, full[:, v]),
            "delta": est[cols],
            "median_delta": summary.median[cols],
            "ci_low": summary.lo[cols],
            "ci_high": summary.hi[cols],
            "p_delta_le_0": summary.p_le_0[cols],
            "n": np.tile(group_n, n_specs).astype(np.int64),
            # Flips belong to accuracy rows; elsewhere <NA> (masked).
            "flips_a_only": pd.arrays.IntegerArray(flips_a.astype(np.int64), ~on_accuracy),
            "flips_b_only": pd.arrays.IntegerArray(flips_b.astype(np.int64), ~on_accuracy),
            "method": methods,
            "trusted": [t for t, _ in verdicts],
            "flag_reason": [r for _, r in verdicts],
        }
        if adjusted:
            data["ci_low_adjusted"] = summary.lo_adjusted[cols]
            data["ci_high_adjusted"] = summary.hi_adjusted[cols]
        tables.append(pd.DataFrame(data))
    return tables


def resample_indices(n: int, seed: int, i: int) -> np.ndarray:
    """The N example indices drawn by resample ``i`` (for audits and tests)."""
    func = "resample_indices"
    n = check_int(func, "n", n, 1, _MAX_EXAMPLES)
    seed = check_int(func, "seed", seed, 0, 2**64 - 1)
    i = check_int(func, "i", i, 0, 2**64 - 1)
    return _kernels.bootstrap_indices(func, n, seed, i, n)


def eval_indices(
    labels: Any,
    logits_a: Any,
    logits_b: Any,
    indices: Any,
    *,
    tier_of_class: Any = None,
    metrics: Any = DEFAULT_METRICS,
    reference_logits: Any = None,
    n_bins: int = 15,
    probs: bool = False,
    reference_probs: bool = False,
) -> pd.DataFrame:
    """The per-resample statistic for explicit index draws (rows of ``indices``):
    columns ``draw, metric, group, a, b``. What :func:`paired_bootstrap`
    computes for each resample, exposed so tests can check it independently.
    A pair metric's ``a`` is 0 and ``b`` its value (so ``b - a`` is its delta).
    """
    func = "eval_indices"
    p = _prepare(
        func, labels, [logits_a, logits_b], ["logits_a", "logits_b"], tier_of_class, metrics,
        reference_logits, n_bins, probs, reference_probs,
    )  # fmt: skip
    raw = np.atleast_2d(np.asarray(indices))
    if raw.ndim != 2 or raw.dtype.kind not in "iu":
        raise InvalidArgumentError(
            f"{func}: indices must be a 2-D integer array (draws x examples), got "
            f"{raw.dtype} with shape {raw.shape}"
        )
    idx = np.ascontiguousarray(raw, dtype=np.int64)
    vals = p.kernel.eval_indices(idx)
    n_groups = len(p.groups)
    rows = [
        (r, ms.name, group, vals[r, mi * n_groups + g, 0], vals[r, mi * n_groups + g, 1])
        for r in range(idx.shape[0])
        for mi, ms in enumerate(p.specs)
        for g, group in enumerate(p.groups)
    ]
    return pd.DataFrame(rows, columns=["draw", "metric", "group", "a", "b"])
