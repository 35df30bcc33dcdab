"""Exact quantiles of many columns in bounded memory, by passes over row blocks.

The comparison engine resamples with a deterministic kernel (resample ``i``
depends only on the seed and ``i``), so the ``R x S`` matrix of resampled
deltas can be regenerated block by block as often as needed.
:func:`stream_quantiles` reads those blocks in two (occasionally more) passes
and returns exactly what ``np.nanquantile(full[:, s], p)`` (method
``"linear"``) returns on the full matrix, while holding only
``O(S x n_bins)`` counters and a candidate buffer of at most
``max_candidates`` values.

How:

* Pass 1 counts, per column, the defined (non-NaN) values, the minimum and
  maximum, the values ``<=`` and ``<`` given thresholds, and a histogram over
  ``n_bins`` equal-width bins whose range is taken from the first block that
  holds a finite value of that column (widened by an eighth of its width on
  each side). Values outside the range land in an underflow or overflow
  region, and ``-inf`` / ``+inf`` in regions of their own. The bin of a value
  is a non-decreasing function of the value, so each region holds a
  contiguous run of the sorted column.
* A quantile at probability ``p`` of ``n`` defined values needs the order
  statistics of ranks ``floor(h)`` and ``floor(h) + 1``, ``h = (n - 1) p``
  (only rank ``n - 1`` when ``h >= n - 1``); the cumulative histogram names
  the region holding each rank. Ranks ``0`` and ``n - 1`` are the exact
  minimum and maximum and need no further pass.
* Pass 2 reads the blocks again and keeps only the values inside the wanted
  regions, then sorts them and picks the ranks. A region that does not fit in
  the candidate budget is split instead: its values are histogrammed in
  ``n_bins`` sub-bins of the order-preserving integer image of float64 (the
  bit pattern with the sign handled), with the exact minimum and maximum of
  every sub-bin. A sub-bin whose minimum equals its maximum (ties: e.g. a
  delta that is exactly 0 in most resamples) is resolved without collecting
  anything; others are collected, or split again, in the next pass.
* The two order statistics are combined exactly as NumPy does: ``(n - 1) * p``
  for the position, and its ``_lerp`` (``a + (b - a) * t``, switching to
  ``b - (b - a) * (1 - t)`` when ``t >= 0.5``).

Passes (calls of ``blocks()``): 1 when every wanted rank is a minimum, a
maximum, an infinity or in a constant column; 2 normally, ties included; 3
when a region had to be split once (a poor pilot range, e.g. a first block of
one row, or a budget too small for the wanted regions). A split cuts the
64-bit key range of a region into ``b`` sub-bins of equal key width and keeps
the one holding the rank, so after ``k`` splits at most ``ceil(2**64 / b**k)``
keys are left, and one key is resolved without reading. Hence at most
``2 + ceil(64 / log2(b))`` passes, ``b`` the fewest sub-bins used in a split:
``n_bins`` (8 passes at most with the default 2048), or fewer when more
regions than columns are split at once, to keep the sub-histograms within
pass 1's size: then ``b >= min(n_bins, (n_bins + 4) // (2 L))`` for ``L``
probabilities per column, and never under 2.

The second pass holds, per block, a few arrays of the block's size (keys and
masks); each block is finished with before the next is asked for, so a
generator may refill one buffer.

The one difference NumPy can show is the sign of a zero: when a column holds
both ``-0.0`` and ``+0.0``, which of them NumPy's partition puts at a given
rank is an accident of its selection algorithm (they compare equal). Here
``-0.0`` sorts before ``+0.0``. The results are equal as numbers either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from operator import index as _as_index

import numpy as np

from kdmetrics.errors import InvalidArgumentError, ShapeError

__all__ = ["ColumnSummary", "stream_quantiles"]

_FUNC = "stream_quantiles"
_SIGN = np.uint64(1 << 63)
_LOW63 = np.uint64((1 << 63) - 1)
_MAX_FLOAT = float(np.finfo(np.float64).max)


@dataclass(frozen=True, eq=False)
class ColumnSummary:
    """What the first pass counted, per column (``S`` columns, ``T`` thresholds).

    Attributes
    ----------
    n_rows : int
        Number of rows over all blocks (``R``).
    n_defined : ndarray of int64, shape (S,)
        Non-NaN values per column.
    count_le, count_lt : ndarray of int64, shape (S, T)
        Non-NaN values ``<= thresholds[s, t]`` and ``< thresholds[s, t]``
        (0 where the threshold is NaN).
    minimum, maximum : ndarray of float64, shape (S,)
        Smallest and largest defined value; NaN where the column has none.
    passes : int
        Times ``blocks()`` was called: 1 in the summary handed to a ``probs``
        callable, the final count in the summary returned.
    peak_candidates : int
        Largest number of values held in the candidate buffer during any pass
        (never more than ``max_candidates``).
    split_regions : int
        Regions too large for the buffer that were split instead of collected.
    """

    n_rows: int
    n_defined: np.ndarray
    count_le: np.ndarray
    count_lt: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    passes: int = 1
    peak_candidates: int = 0
    split_regions: int = 0


# ---------------------------------------------------------------------------
# Order-preserving integer image of float64: -inf < ... < -0.0 < +0.0 < ... < +inf.
# NaN keys fall outside [key(-inf), key(+inf)], so key ranges never hold NaN.


def _to_key(x: np.ndarray) -> np.ndarray:
    bits = x.view(np.uint64)
    # Negative: flip every bit; non-negative: flip the sign bit.
    mask = bits >> np.uint64(63)
    mask *= _LOW63
    mask |= _SIGN
    mask ^= bits
    return mask


def _from_key(k: np.ndarray) -> np.ndarray:
    was_negative = np.uint64(1) - (k >> np.uint64(63))
    return np.asarray(k ^ ((was_negative * _LOW63) | _SIGN)).view(np.float64)


_KEY_NEG_INF = int(_to_key(np.array([-np.inf]))[0])
_KEY_POS_INF = int(_to_key(np.array([np.inf]))[0])


# ---------------------------------------------------------------------------
# Pass-1 regions of a column: 0 = -inf, 1 = finite underflow, 2 .. n_bins + 1 =
# the bins, n_bins + 2 = finite overflow, n_bins + 3 = +inf.


def _scaled_floor(
    x: np.ndarray, lo: np.ndarray, scale: np.ndarray, n_bins: int, order: str = "K"
) -> np.ndarray:
    """``clip(floor((x - lo) * scale), -1, n_bins)`` in a new array (NaN stays
    NaN). The one definition of the binning: pass 1 and the bin-edge search
    both call it, so they agree to the last bit. Non-decreasing in ``x``."""
    t = np.subtract(x, lo, order=order)
    t *= scale
    np.floor(t, out=t)
    np.clip(t, -1.0, float(n_bins), out=t)
    return t


def _region_of(x: np.ndarray, lo: np.ndarray, scale: np.ndarray, n_bins: int) -> np.ndarray:
    t = _scaled_floor(x, lo, scale, n_bins)
    t += 2.0
    np.copyto(t, 0.0, where=x == -np.inf)
    np.copyto(t, float(n_bins + 3), where=x == np.inf)
    return t


def _first_key_at_least(
    regions: np.ndarray, lo: np.ndarray, scale: np.ndarray, n_bins: int
) -> np.ndarray:
    """Smallest key whose value falls in a region ``>= regions`` (1-D arrays,
    every region >= 1, so that key(-inf), in region 0, lies below the answer).

    A vectorised bisection over the 64-bit keys (the binning is monotone in the
    key), started from a bracket of a few ulps around the nominal edge
    ``lo + (region - 2) / scale`` where that bracket is checked to hold the
    answer, and from the whole key range otherwise."""
    r = regions.astype(np.float64)
    # Answer in (a, b]: F(a) < r <= F(b), F = _region_of over keys.
    a = np.full(r.shape, _KEY_NEG_INF, dtype=np.uint64)
    b = np.full(r.shape, _KEY_POS_INF, dtype=np.uint64)
    edge = lo + (r - 2.0) / scale
    tol = 64.0 * (np.spacing(np.abs(edge)) + np.spacing(np.abs(lo))) + np.abs(edge - lo) * 2.0**-45
    lo_guess = _to_key(np.asarray(edge - tol, dtype=np.float64))
    hi_guess = _to_key(np.asarray(edge + tol, dtype=np.float64))
    usable = (
        np.isfinite(edge - tol)
        & np.isfinite(edge + tol)
        & (_region_of(_from_key(lo_guess), lo, scale, n_bins) < r)
        & (_region_of(_from_key(hi_guess), lo, scale, n_bins) >= r)
    )
    a[usable] = lo_guess[usable]
    b[usable] = hi_guess[usable]
    # Known exactly: finite underflow starts at -max, +inf's region at +inf.
    for region, key in ((1, _KEY_NEG_INF + 1), (n_bins + 3, _KEY_POS_INF)):
        b[r == region] = key
        a[r == region] = key - 1
    for _ in range(66):
        active = np.flatnonzero(b - a > np.uint64(1))
        if not active.size:
            break
        aa, bb = a[active], b[active]
        mid = aa + (bb - aa) // np.uint64(2)
        ge = _region_of(_from_key(mid), lo[active], scale[active], n_bins) >= r[active]
        b[active] = np.where(ge, mid, bb)
        a[active] = np.where(ge, aa, mid)
    return b


def _pilot_range(mn: np.ndarray, mx: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``lo`` and ``scale`` (finite, ``scale > 0``) of the pass-1 bins from the
    finite min/max of a first block; the halves keep every step finite."""
    half_width = mx * 0.5 - mn * 0.5
    pad = half_width * 0.25
    pad = np.where(half_width > 0, pad, np.where(mn != 0, np.abs(mn), 1.0))
    lo = np.clip(mn - pad, -_MAX_FLOAT, _MAX_FLOAT)
    hi = np.clip(mx + pad, -_MAX_FLOAT, _MAX_FLOAT)
    scale = (n_bins * 0.5) / (hi * 0.5 - lo * 0.5)
    bad = ~np.isfinite(scale) | ~(scale > 0)
    # Any finite positive scale keeps the binning monotone; only resolution suffers.
    lo = np.where(bad, mn, lo)
    scale = np.where(bad, 1.0, scale)
    return lo, scale


# ---------------------------------------------------------------------------
# Argument checks


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{_FUNC}: {name} must be an integer, got {value!r}")
    try:
        v = _as_index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgumentError(f"{_FUNC}: {name} must be an integer, got {value!r}") from None
    if v < minimum:
        raise InvalidArgumentError(f"{_FUNC}: {name} must be >= {minimum}, got {v}")
    return v


def _check_block(block: object, n_cols: int, pass_no: int, i: int) -> np.ndarray:
    arr = np.asarray(block)
    where = f"block {i} of pass {pass_no}"
    if arr.dtype != np.float64:
        raise InvalidArgumentError(f"{_FUNC}: {where} has dtype {arr.dtype}, expected float64")
    if arr.ndim != 2 or arr.shape[1] != n_cols:
        raise ShapeError(
            f"{_FUNC}: {where} has shape {arr.shape}, expected (rows, {n_cols}) (n_cols)"
        )
    return arr


def _real_matrix(name: str, value: object, n_cols: int, width: str) -> np.ndarray:
    """``value`` as a float64 (n_cols, width) matrix of real numbers."""
    a = np.asarray(value)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise InvalidArgumentError(f"{_FUNC}: {name} must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 2 or a.shape[0] != n_cols:
        raise ShapeError(f"{_FUNC}: {name} has shape {a.shape}, expected ({n_cols}, {width})")
    return a


def _check_probs(probs: object, n_cols: int) -> np.ndarray:
    p = _real_matrix("probs", probs, n_cols, "L")
    bad = ~np.isnan(p) & ~((p >= 0.0) & (p <= 1.0))
    if bad.any():
        s, k = (int(v) for v in np.argwhere(bad)[0])
        raise InvalidArgumentError(
            f"{_FUNC}: probs[{s}, {k}] = {p[s, k]!r} is outside [0, 1] (NaN means not wanted)"
        )
    return p


def _check_thresholds(thresholds: object, n_cols: int) -> np.ndarray:
    if thresholds is None:
        return np.empty((n_cols, 0))
    return _real_matrix("thresholds", thresholds, n_cols, "T")


def _iterate(
    blocks: Callable[[], Iterable[object]], n_cols: int, pass_no: int
) -> Iterator[np.ndarray]:
    for i, b in enumerate(blocks()):
        arr = _check_block(b, n_cols, pass_no, i)
        if arr.shape[0]:
            yield arr


def _changed(pass_no: int, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{_FUNC}: blocks() returned different data on pass {pass_no} ({what}); "
        "it must yield the same blocks on every call"
    )


# ---------------------------------------------------------------------------


def _positions(
    n: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NumPy's position arithmetic for the wanted ``(column, level)`` pairs:
    ``h = (n - 1) p``, the ranks of the two neighbours and ``gamma``; above
    the last index both neighbours are the last element and
    ``gamma = h - (-1)``."""
    s_idx, l_idx = np.nonzero((n[:, None] > 0) & ~np.isnan(p))
    nm1 = n[s_idx] - 1
    h = nm1.astype(np.float64) * p[s_idx, l_idx]
    prev = np.floor(h)
    above = h >= nm1
    prev_index = np.where(above, -1, prev.astype(np.int64))
    gamma = h - prev_index
    rank_a = np.where(above, nm1, prev_index)
    rank_b = np.where(above, nm1, prev_index + 1)
    return s_idx, l_idx, rank_a, rank_b, gamma


def quantiles_in_memory(
    values: np.ndarray,
    probs: np.ndarray | Callable[[ColumnSummary], np.ndarray],
    *,
    thresholds: np.ndarray | None = None,
) -> tuple[np.ndarray, ColumnSummary]:
    """What :func:`stream_quantiles` returns, for a matrix held in memory:
    the counts, minimum and maximum of every column in one pass over the
    rows, then each wanted order statistic by selection (``O(R log m)`` for
    ``m`` ranks of a column, not a sort), both in Rust, combined as
    ``np.nanquantile`` does."""
    from kdmetrics import _kernels

    func = "quantiles_in_memory"
    if not isinstance(values, np.ndarray) or values.ndim != 2 or values.dtype != np.float64:
        raise ShapeError(f"{func}: values must be a 2-D float64 array")
    n_rows, n_cols = values.shape
    thr = _check_thresholds(thresholds, n_cols)
    n, mn, mx, count_le, count_lt = _kernels.column_summary(func, values, thr)
    summary = ColumnSummary(n_rows, n, count_le, count_lt, mn, mx)
    p = _check_probs(probs(summary) if callable(probs) else probs, n_cols)
    result = np.full(p.shape, np.nan)
    s_idx, l_idx, rank_a, rank_b, gamma = _positions(n, p)
    if s_idx.size:
        cols = np.concatenate([s_idx, s_idx])
        got = _kernels.order_statistics(func, values, cols, np.concatenate([rank_a, rank_b]))
        with np.errstate(all="ignore"):  # inf - inf is NaN, as in NumPy
            result[s_idx, l_idx] = _lerp(got[: s_idx.size], got[s_idx.size :], gamma)
    return result, summary


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """NumPy's ``_lerp`` (numpy/lib/_function_base_impl.py), operation for operation."""
    diff_b_a = b - a
    out = np.add(a, diff_b_a * t)
    np.subtract(b, diff_b_a * (1 - t), out=out, where=t >= 0.5)
    return out


def _locate(cum: np.ndarray, rows: np.ndarray, ranks: np.ndarray, stride: int) -> np.ndarray:
    """For each (row, rank): the column ``j`` of ``cum`` (cumulative counts
    along axis 1) with ``cum[row, j-1] <= rank < cum[row, j]``. One
    ``searchsorted`` over the rows laid end to end, each shifted by ``stride``
    (> any count) so the whole array is non-decreasing."""
    width = cum.shape[1]
    shifted = cum + (np.arange(cum.shape[0], dtype=np.int64) * stride)[:, None]
    pos = np.searchsorted(shifted.ravel(), rows * stride + ranks, side="right")
    return pos - rows * width


def stream_quantiles(
    blocks: Callable[[], Iterable[np.ndarray]],
    n_cols: int,
    probs: np.ndarray | Callable[[ColumnSummary], np.ndarray],
    *,
    thresholds: np.ndarray | None = None,
    n_bins: int = 2048,
    max_candidates: int = 1 << 16,
) -> tuple[np.ndarray, ColumnSummary]:
    """Per-column ``np.nanquantile`` (method ``"linear"``) over row blocks, exactly.

    Parameters
    ----------
    blocks : callable
        ``blocks()`` returns a fresh iterable over row blocks: float64 arrays of
        shape ``(rows_b, n_cols)`` (any ``rows_b >= 0``), NaN meaning "undefined
        in that resample". Every call must yield the same data in the same
        order; it is called once per pass. The blocks are never modified.
    n_cols : int
        ``S``, the number of columns.
    probs : ndarray of shape (S, L), or callable
        Probabilities in ``[0, 1]``; NaN entries are not wanted and give NaN.
        A callable receives the pass-1 :class:`ColumnSummary` and returns the
        array (for levels that depend on the counts, as BCa's do).
    thresholds : ndarray of shape (S, T), optional
        Per-column thresholds whose ``<=`` and ``<`` counts pass 1 records.
    n_bins : int, default 2048
        Bins per column in pass 1 (and sub-bins per split region), >= 2.
    max_candidates : int, default 65536
        Most values held at once in the candidate buffer, >= 1.

    Returns
    -------
    quantiles : ndarray of float64, shape (S, L)
        ``np.nanquantile(full[:, s], probs[s, l])`` bit for bit (up to the sign
        of a zero in a column holding both ``-0.0`` and ``+0.0``), where
        ``full`` stacks the blocks; NaN where the column has no defined value
        or the probability is NaN.
    summary : ColumnSummary
        The pass-1 counts, with ``passes``, ``peak_candidates`` and
        ``split_regions`` filled in.

    Raises
    ------
    InvalidArgumentError
        Bad ``n_cols``, ``n_bins``, ``max_candidates``, a probability outside
        ``[0, 1]``, a block that is not float64, or ``blocks()`` yielding
        different data on a later pass.
    ShapeError
        A block, ``probs`` or ``thresholds`` of the wrong shape.

    Notes
    -----
    Memory: ``S x (n_bins + 4)`` pass-1 counters, the same order for the
    sub-bins of split regions, and at most ``max_candidates`` buffered values.
    """
    if not callable(blocks):
        raise InvalidArgumentError(f"{_FUNC}: blocks must be a callable returning an iterable")
    n_cols = _check_int("n_cols", n_cols, 1)
    n_bins = _check_int("n_bins", n_bins, 2)
    max_candidates = _check_int("max_candidates", max_candidates, 1)
    thr = _check_thresholds(thresholds, n_cols)
    if not callable(probs):
        probs = _check_probs(probs, n_cols)

    with np.errstate(all="ignore"):  # overflow to +-inf is part of the binning's design
        summary, hist, lo, scale = _first_pass(blocks, n_cols, thr, n_bins)
        p = _check_probs(probs(summary) if callable(probs) else probs, n_cols)
        result, passes, peak, splits = _quantiles(
            blocks, summary, hist, lo, scale, p, n_bins, max_candidates
        )
    return result, replace(summary, passes=passes, peak_candidates=peak, split_regions=splits)


def _first_pass(
    blocks: Callable[[], Iterable[np.ndarray]], n_cols: int, thr: np.ndarray, n_bins: int
) -> tuple[ColumnSummary, np.ndarray, np.ndarray, np.ndarray]:
    n_reg = n_bins + 4
    n_thr = thr.shape[1]
    n_rows = 0
    n_def = np.zeros(n_cols, dtype=np.int64)
    le = np.zeros((n_cols, n_thr), dtype=np.int64)
    lt = np.zeros((n_cols, n_thr), dtype=np.int64)
    cmin = np.full(n_cols, np.inf)
    cmax = np.full(n_cols, -np.inf)
    lo = np.zeros(n_cols)
    scale = np.ones(n_cols)
    ranged = np.zeros(n_cols, dtype=bool)
    hist = np.zeros(n_cols * n_reg, dtype=np.int64)
    # Columns are binned `chunk` at a time, in a (column, row) layout, so that
    # the counters one bincount touches stay in cache; keys are local to a chunk.
    chunk = max(1, (1 << 16) // n_reg)
    local = (np.arange(n_cols) % chunk).astype(np.float64)[:, None] * n_reg
    local2 = local + 2.0
    dump = float(chunk * n_reg)  # NaN goes to one extra slot, dropped

    for blk in _iterate(blocks, n_cols, 1):
        rows = blk.shape[0]
        n_rows += rows
        nan = np.isnan(blk)
        has_nan = bool(nan.any())
        defined_here = rows - np.count_nonzero(nan, axis=0)
        n_def += defined_here
        # Not fmin/fmax (nor nanmin): NumPy's SIMD fmax returns NaN against a
        # signalling NaN. Mask the NaNs out instead (+-inf for all-NaN columns).
        low = np.where(nan, np.inf, blk) if has_nan else blk
        high = np.where(nan, -np.inf, blk) if has_nan else blk
        bmin = low.min(axis=0)
        bmax = high.max(axis=0)
        np.minimum(cmin, bmin, out=cmin)
        np.maximum(cmax, bmax, out=cmax)
        for t in range(n_thr):
            le[:, t] += np.count_nonzero(blk <= thr[:, t], axis=0)
            lt[:, t] += np.count_nonzero(blk < thr[:, t], axis=0)
        has_inf = bool((bmin == -np.inf).any() or (bmax == np.inf).any())
        if not ranged.all():
            if has_inf:
                finite = np.isfinite(blk)
                fmin = np.where(finite, blk, np.inf).min(axis=0)
                fmax = np.where(finite, blk, -np.inf).max(axis=0)
                has_finite = finite.any(axis=0)
            else:
                fmin, fmax, has_finite = bmin, bmax, defined_here > 0
            new = ~ranged & has_finite
            if new.any():
                # The pilot range of a column: its first block with a finite value.
                # Earlier values of that column were NaN or +-inf, which have
                # regions of their own whatever the range.
                new_lo, new_scale = _pilot_range(fmin[new], fmax[new], n_bins)
                lo[new] = new_lo
                scale[new] = new_scale
                ranged |= new
        bt = blk.T
        t_ = _scaled_floor(bt, lo[:, None], scale[:, None], n_bins, order="C")
        t_ += local2
        if has_inf:
            np.copyto(t_, np.broadcast_to(local, t_.shape), where=bt == -np.inf)
            np.copyto(t_, np.broadcast_to(local + (n_reg - 1), t_.shape), where=bt == np.inf)
        if has_nan:
            np.copyto(t_, dump, where=nan.T)
        keys = t_.astype(np.intp)
        for c0 in range(0, n_cols, chunk):
            c1 = min(n_cols, c0 + chunk)
            counts = np.bincount(keys[c0:c1].ravel(), minlength=chunk * n_reg + 1)
            h = hist[c0 * n_reg : c1 * n_reg]
            h += counts[: (c1 - c0) * n_reg]

    cmin[n_def == 0] = np.nan
    cmax[n_def == 0] = np.nan
    summary = ColumnSummary(
        n_rows=n_rows, n_defined=n_def, count_le=le, count_lt=lt, minimum=cmin, maximum=cmax
    )
    return summary, hist.reshape(n_cols, n_reg), lo, scale


def _quantiles(
    blocks: Callable[[], Iterable[np.ndarray]],
    summary: ColumnSummary,
    hist: np.ndarray,
    lo: np.ndarray,
    scale: np.ndarray,
    p: np.ndarray,
    n_bins: int,
    max_candidates: int,
) -> tuple[np.ndarray, int, int, int]:
    n_cols, n_reg = hist.shape
    n_rows = summary.n_rows
    stride = n_rows + 1
    n = summary.n_defined
    result = np.full(p.shape, np.nan)

    s_idx, l_idx, rank_a, rank_b, gamma = _positions(n, p)
    if s_idx.size == 0:
        return result, 1, 0, 0
    # With t = 0, a + (b - a) * 0 is a + 0.0 whatever b, unless b - a is not
    # finite (an infinity, or an overflow: NumPy then gives NaN), which cannot
    # happen when max - min is finite. Then b = a gives the same bits.
    spread_finite = np.isfinite(summary.maximum - summary.minimum)[s_idx]
    rank_b = np.where((gamma == 0) & spread_finite, rank_a, rank_b)

    # Distinct (column, rank) order statistics.
    uniq, inv = np.unique(
        np.concatenate([s_idx * stride + rank_a, s_idx * stride + rank_b]), return_inverse=True
    )
    t_col = uniq // stride
    t_rank = uniq % stride
    t_val = np.full(uniq.shape, np.nan)

    # Free: the minimum, the maximum, a constant column.
    is_min = t_rank == 0
    is_max = t_rank == n[t_col] - 1
    t_val[is_min] = summary.minimum[t_col[is_min]]
    t_val[is_max] = summary.maximum[t_col[is_max]]
    const = summary.minimum[t_col] == summary.maximum[t_col]
    t_val[const] = summary.minimum[t_col[const]]
    pending = np.flatnonzero(~(is_min | is_max | const))

    passes, peak, splits = 1, 0, 0
    if pending.size:
        col = t_col[pending]
        rank = t_rank[pending]
        cum = np.cumsum(hist, axis=1)
        region = _locate(cum, col, rank, stride)
        below = np.where(region > 0, cum[col, np.maximum(region - 1, 0)], 0)
        # The +-inf regions hold one value each.
        t_val[pending[region == 0]] = -np.inf
        t_val[pending[region == n_reg - 1]] = np.inf
        keep = (region > 0) & (region < n_reg - 1)
        pending, col, rank, region, below = (a[keep] for a in (pending, col, rank, region, below))
    if pending.size:
        # One work item per distinct (column, region), with the region's exact
        # key range [ka, kb]: the keys of the bin edges, found by bisection.
        w_uniq, w_of = np.unique(col * n_reg + region, return_inverse=True)
        w_col = w_uniq // n_reg
        w_reg = w_uniq % n_reg
        w_lo, w_scale = lo[w_col], scale[w_col]
        w_ka = _first_key_at_least(w_reg, w_lo, w_scale, n_bins)
        w_kb = _first_key_at_least(w_reg + 1, w_lo, w_scale, n_bins)
        w_kb = w_kb - np.uint64(1)
        w_count = hist[w_col, w_reg]
        w_exact = np.zeros(w_col.shape, dtype=bool)  # [ka, kb] are edges, not min/max
        rel = rank - below
        while True:
            # Resolved without reading: a range holding one value (ties), or
            # the first / last rank of a range whose ends are its exact min / max.
            v_ka, v_kb = _from_key(w_ka)[w_of], _from_key(w_kb)[w_of]
            exact = w_exact[w_of]
            lowest = exact & (rel == 0)
            highest = exact & (rel == w_count[w_of] - 1)
            single = v_ka == v_kb
            t_val[pending[lowest]] = v_ka[lowest]
            t_val[pending[highest | single]] = v_kb[highest | single]
            keep = ~(lowest | highest | single)
            pending, w_of, rel = pending[keep], w_of[keep], rel[keep]
            if not pending.size:
                break
            used_w, w_of = np.unique(w_of, return_inverse=True)
            w_col, w_ka, w_kb, w_count, w_exact = (
                a[used_w] for a in (w_col, w_ka, w_kb, w_count, w_exact)
            )
            passes += 1
            step = _next_pass(
                blocks,
                passes,
                n_rows,
                n_cols,
                n_bins,
                max_candidates,
                w_col,
                w_ka,
                w_kb,
                w_count,
                w_of,
                rel,
            )
            peak = max(peak, step.used)
            splits += step.n_split
            t_val[pending[step.got]] = _from_key(step.keys[step.got])
            pending = pending[~step.got]
            w_col, w_ka, w_kb, w_count = step.w_col, step.w_ka, step.w_kb, step.w_count
            w_of, rel = step.w_of, step.rel
            w_exact = np.ones(w_col.shape, dtype=bool)
    a_val = t_val[inv[: s_idx.size]]
    b_val = t_val[inv[s_idx.size :]]
    result[s_idx, l_idx] = _lerp(a_val, b_val, gamma)
    return result, passes, peak, splits


@dataclass(frozen=True, eq=False)
class _PassResult:
    got: np.ndarray  # (pending,) bool: collected
    keys: np.ndarray  # (pending,) uint64: the key of each collected order statistic
    w_col: np.ndarray  # new work items (sub-bins of split regions)
    w_ka: np.ndarray
    w_kb: np.ndarray
    w_count: np.ndarray
    w_of: np.ndarray  # (pending not collected,) new work item of each
    rel: np.ndarray  # (pending not collected,) rank inside it
    used: int
    n_split: int


def _next_pass(
    blocks: Callable[[], Iterable[np.ndarray]],
    pass_no: int,
    n_rows: int,
    n_cols: int,
    n_bins: int,
    max_candidates: int,
    w_col: np.ndarray,
    w_ka: np.ndarray,
    w_kb: np.ndarray,
    w_count: np.ndarray,
    w_of: np.ndarray,
    rel: np.ndarray,
) -> _PassResult:
    """One more read of the blocks: collect the work items that fit in the
    budget (smallest first), split the others into sub-bins of their key range."""
    n_w = w_col.size
    order = np.argsort(w_count, kind="stable")
    collect = np.zeros(n_w, dtype=bool)
    collect[order[np.cumsum(w_count[order]) <= max_candidates]] = True
    capacity = int(w_count[collect].sum())
    split_ids = np.flatnonzero(~collect)
    n_split = int(split_ids.size)
    sid_of = np.full(n_w, -1, dtype=np.intp)
    sid_of[split_ids] = np.arange(n_split)
    # Sub-bins per split region: keep the sub-histograms within the size of pass 1's.
    sub_bins = max(2, min(n_bins, (n_cols * (n_bins + 4)) // max(n_split, 1)))
    width = w_kb - w_ka + np.uint64(1)  # >= 1; < 2**64 since keys of +-inf bound it
    step = (width - np.uint64(1)) // np.uint64(sub_bins) + np.uint64(1)

    # Slots: the work items of each column, side by side, padded with empty ranges.
    cols, col_pos = np.unique(w_col, return_inverse=True)
    by_col = np.argsort(col_pos, kind="stable")
    first = np.searchsorted(col_pos[by_col], np.arange(cols.size))
    slot = np.empty(n_w, dtype=np.intp)
    slot[by_col] = np.arange(n_w) - first[col_pos[by_col]]
    n_slots = int(slot.max()) + 1
    # Membership of key u in [ka, kb] as one unsigned test: u - ka <= kb - ka.
    lo_key = np.zeros((cols.size, n_slots), dtype=np.uint64)
    span = np.zeros((cols.size, n_slots), dtype=np.uint64)
    owner = np.full((cols.size, n_slots), -1, dtype=np.intp)  # -1: padding
    lo_key[col_pos, slot] = w_ka
    span[col_pos, slot] = w_kb - w_ka
    owner[col_pos, slot] = np.arange(n_w)
    padded = bool((owner < 0).any())
    all_cols = cols.size == n_cols
    n_sub = cols.size

    buf_k = np.empty(capacity, dtype=np.uint64)
    buf_w = np.empty(capacity, dtype=np.intp)
    fill = 0
    s_count = np.zeros(n_split * sub_bins, dtype=np.int64)
    s_min = np.full(n_split * sub_bins, np.iinfo(np.uint64).max, dtype=np.uint64)
    s_max = np.zeros(n_split * sub_bins, dtype=np.uint64)
    rows_seen = 0
    for blk in _iterate(blocks, n_cols, pass_no):
        rows_seen += blk.shape[0]
        u = _to_key(blk if all_cols else blk[:, cols])  # a new C-ordered array
        split_w, split_k = [], []
        for j in range(n_slots):
            # flatnonzero: much cheaper than a 2-D nonzero when hits are few.
            hits = np.flatnonzero((u - lo_key[:, j]) <= span[:, j])
            wid = owner[hits % n_sub, j]
            keys = u.ravel()[hits]
            if padded:  # a padding slot [0, 0] can only catch a NaN of key 0
                real = wid >= 0
                wid, keys = wid[real], keys[real]
            if not wid.size:
                continue
            c = collect[wid]
            kc = keys[c]
            if kc.size:
                if fill + kc.size > capacity:
                    raise _changed(pass_no, "more values in a region than pass 1 counted")
                buf_k[fill : fill + kc.size] = kc
                buf_w[fill : fill + kc.size] = wid[c]
                fill += kc.size
            if kc.size < keys.size:
                split_w.append(wid[~c])
                split_k.append(keys[~c])
        if split_w:
            ws = np.concatenate(split_w)
            ks = np.concatenate(split_k)
            flat = sid_of[ws] * sub_bins + ((ks - w_ka[ws]) // step[ws]).astype(np.intp)
            s_count += np.bincount(flat, minlength=s_count.size)
            np.minimum.at(s_min, flat, ks)
            np.maximum.at(s_max, flat, ks)
    if rows_seen != n_rows:
        raise _changed(pass_no, f"{rows_seen} rows instead of {n_rows}")
    if fill != capacity:
        raise _changed(pass_no, "fewer values in a region than pass 1 counted")

    got = collect[w_of]
    keys_out = np.zeros(w_of.shape, dtype=np.uint64)
    if capacity:
        by = np.lexsort((buf_k, buf_w))
        counts = np.bincount(buf_w, minlength=n_w)
        starts = np.cumsum(counts) - counts
        keys_out[got] = buf_k[by[starts[w_of[got]] + rel[got]]]

    new_w_of = np.empty(0, dtype=np.intp)
    new_rel = np.empty(0, dtype=np.int64)
    new = np.empty(0, dtype=np.intp)
    if n_split:
        sc = s_count.reshape(n_split, sub_bins)
        if (sc.sum(axis=1) != w_count[split_ids]).any():
            raise _changed(pass_no, "a split region's count differs from pass 1's")
        sid_t = sid_of[w_of[~got]]
        r = rel[~got]
        cum = np.cumsum(sc, axis=1)
        sb = _locate(cum, sid_t, r, n_rows + 1)
        below = np.where(sb > 0, cum[sid_t, np.maximum(sb - 1, 0)], 0)
        new, new_w_of = np.unique(sid_t * sub_bins + sb, return_inverse=True)
        new_rel = r - below
    return _PassResult(
        got=got,
        keys=keys_out,
        w_col=w_col[split_ids[new // sub_bins]],
        w_ka=s_min[new],
        w_kb=s_max[new],
        w_count=s_count[new],
        w_of=new_w_of,
        rel=new_rel,
        used=fill,
        n_split=n_split,
    )
