"""Paired bootstrap of the difference between two models on the same examples.

The per-example quantities each metric needs are computed once, through the
metric registry (:data:`kdmetrics.metrics.registry.METRICS`: a metric's
``statistic`` kind and its ``per_example`` values). The Rust kernel
(:class:`kdmetrics._kernels.PairedProblem`) is built once from those and knows
only statistic *kinds* (``example_mean``, ``macro_f1``, ``binned``,
``pair_mean``), never metric names; it draws every resample (its own
xoshiro256++ stream per resample index, seeded from ``(seed, i)``), scores
both models on every group from that same draw, and returns the deltas B - A.
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


@dataclass
class _Problem:
    """The prepared kernel problem, and what the table needs."""

    kernel: _kernels.PairedProblem
    specs: list[MetricSpec]
    groups: list[str]
    example_group: np.ndarray  # per example: 0 without tiers, else 1 + tier
    correct_a: np.ndarray
    correct_b: np.ndarray


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
    logits_a: Any,
    logits_b: Any,
    tier_of_class: Any,
    metrics: Any,
    reference_logits: Any,
    n_bins: Any,
    probs: Any = False,
    reference_probs: Any = None,
) -> _Problem:
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
    logits_a = as_array(func, logits_a, "logits_a")
    logits_b = as_array(func, logits_b, "logits_b")
    if reference_logits is not None:
        reference_logits = as_array(func, reference_logits, "reference_logits")
    shapes = {
        name: np.shape(v)
        for name, v in (("logits_a", logits_a), ("logits_b", logits_b), ("reference_logits",
                                                                          reference_logits))
        if v is not None and np.ndim(v) == 2
    }  # fmt: skip
    widths = {name: s[1] for name, s in shapes.items()}
    if len(set(widths.values())) > 1:
        desc = " but ".join(f"{n} has {k} classes" for n, k in widths.items())
        raise AlignmentError(f"{func}: {desc}")
    za = _scores_or_preds(func, y, logits_a, "logits_a")
    zb = _scores_or_preds(func, y, logits_b, "logits_b")
    for s in specs:
        if s.needs == "predictions":
            continue
        for z, name in ((za, "logits_a"), (zb, "logits_b")):
            if z.ndim == 1:
                raise InvalidArgumentError(
                    f"{func}: metric {s.name!r} needs logits, but {name} holds predicted "
                    "classes (1-D); use metrics that need predictions only, such as "
                    "('macro_f1', 'accuracy')"
                )
    if za.ndim == 2 or zb.ndim == 2:
        k = (za if za.ndim == 2 else zb).shape[1]
    else:
        k = n_classes_of(func, y, za, zb, names=("labels", "logits_a", "logits_b"))
        if tier_of_class is not None and np.ndim(tier_of_class) == 1:
            k = max(k, len(tier_of_class))
    check_label_range(func, y, k)
    for z, name in ((za, "logits_a"), (zb, "logits_b")):
        if z.ndim == 1:
            check_label_range(func, z, k, name)

    need_stats = any(s.needs != "predictions" or s.statistic == "binned" for s in specs)
    ma = _model(func, y, za, "logits_a", reference_logits, probs, reference_probs, need_stats)
    mb = _model(func, y, zb, "logits_b", reference_logits, probs, reference_probs, need_stats)

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

    statistics: list[tuple[str, np.ndarray | None, np.ndarray | None]] = []
    for s in specs:
        if s.statistic == "macro_f1":
            statistics.append(("macro_f1", None, None))
        elif s.statistic == "binned":
            statistics.append(("binned", values(ma.stats.confidence), values(mb.stats.confidence)))
        elif s.per_example is None:
            raise InvalidArgumentError(f"{func}: metric {s.name!r} has no per-example values")
        elif s.statistic == "example_mean":
            statistics.append(
                ("example_mean", values(s.per_example(ma)), values(s.per_example(mb)))
            )
        else:  # pair_mean: model B's inputs, with model A as the reference
            pair = ModelInputs(func, y, zb, "logits_b", reference_logits=za, probs=probs,
                               reference_probs=probs)  # fmt: skip
            pair.__dict__["stats"] = mb.stats
            pair.__dict__["reference_pred"] = ma.pred
            statistics.append(("pair_mean", None, values(s.per_example(pair))))
    kernel = _kernels.PairedProblem(
        func, y, ma.pred, mb.pred, k, class_tier, n_tiers, statistics, n_bins
    )
    return _Problem(kernel, specs, groups, example_group, ma.pred == y, mb.pred == y)


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
    kernel: _kernels.PairedProblem,
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
    out = _allocate(func, n_resamples, kernel.n_stats)
    step = _TASK * max(_kernels.get_num_threads(), 1)
    done, chunk = 0, 4 * step
    try:
        while done < n_resamples:
            count = min(chunk, n_resamples - done)
            t0 = time.perf_counter()
            out[done : done + count] = kernel.deltas(seed, start + done, count)
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
        func, labels, logits_a, logits_b, tier_of_class, metrics, reference_logits, n_bins,
        probs, reference_probs,
    )  # fmt: skip
    deltas = run_resamples(func, p.kernel, seed, start, n_resamples, report)
    # policy imports this module (its calibration bootstrap shares our draws).
    from kdmetrics.stats.policy import apply_policy, default_method

    full = p.kernel.full()
    n_groups = len(p.groups)
    # One interval method per metric: the one whose coverage the simulation
    # harness measured closest to nominal ("auto"), or the one asked for.
    row_method = np.repeat(
        [default_method(s.name) if method == "auto" else method for s in p.specs], n_groups
    )
    accel = p.kernel.jackknife_accel() if "bca" in row_method else None
    pair = np.repeat([s.statistic == "pair_mean" for s in p.specs], n_groups)
    estimate = np.where(pair, full[:, 1], full[:, 1] - full[:, 0])
    full[pair] = np.nan
    lo = np.full(estimate.shape, np.nan)
    hi = np.full(estimate.shape, np.nan)
    for m in np.unique(row_method):
        cols = np.flatnonzero(row_method == m)
        lo[cols], hi[cols] = interval(
            deltas[:, cols], estimate[cols], ci, str(m), None if accel is None else accel[cols]
        )
    with warnings.catch_warnings():
        # An all-NaN column (a tier never drawn) is a NaN median, not a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(deltas, axis=0)
    defined = (~np.isnan(deltas)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_le_0 = (deltas <= 0).sum(axis=0) / defined

    group_n = np.bincount(p.example_group, minlength=n_groups)
    group_n[0] = p.example_group.shape[0]
    a_only = p.correct_a & ~p.correct_b
    b_only = ~p.correct_a & p.correct_b
    flips = []
    for g in range(n_groups):
        sel = slice(None) if g == 0 else p.example_group == g
        flips.append((int(a_only[sel].sum()), int(b_only[sel].sum())))
    rows = []
    for mi, ms in enumerate(p.specs):
        for g, group in enumerate(p.groups):
            s = mi * n_groups + g
            fa, fb = flips[g] if ms.name == "accuracy" else (pd.NA, pd.NA)
            rows.append(
                (ms.name, group, full[s, 0], full[s, 1], estimate[s], median[s], lo[s], hi[s],
                 p_le_0[s], int(group_n[g]), fa, fb)
            )  # fmt: skip
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["flips_a_only"] = table["flips_a_only"].astype("Int64")
    table["flips_b_only"] = table["flips_b_only"].astype("Int64")
    # method, trusted, flag_reason: the measured coverage verdict of each row.
    table = apply_policy(table, method=list(row_method))
    if not return_deltas:
        return table
    out = {
        (ms.name, group): np.ascontiguousarray(deltas[:, mi * n_groups + g])
        for mi, ms in enumerate(p.specs)
        for g, group in enumerate(p.groups)
    }
    return table, out


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
        func, labels, logits_a, logits_b, tier_of_class, metrics, reference_logits, n_bins,
        probs, reference_probs,
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
