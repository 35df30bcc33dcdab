"""Streaming quantiles: bit-equal to np.nanquantile on the stacked blocks, bounded memory."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdmetrics.errors import InvalidArgumentError, ShapeError
from kdmetrics.stats.streaming import ColumnSummary, quantiles_in_memory, stream_quantiles

# Values that make ties, signed zeros, infinities, subnormals and overflow common.
POOL = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, np.nan, np.inf, -np.inf, 1e300, -1e300, 5e-324, 1e-17]


class Source:
    """blocks() over row slices of ``full``; counts its calls and hands out
    read-only blocks (a write would raise)."""

    def __init__(self, full: np.ndarray, sizes: list[int], fortran: bool = False):
        assert sum(sizes) == full.shape[0]
        self.full = full
        self.sizes = sizes
        self.fortran = fortran
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self._gen()

    def _gen(self):
        start = 0
        for size in self.sizes:
            blk = self.full[start : start + size]
            if self.fortran:
                blk = np.asfortranarray(blk)
            blk.flags.writeable = False
            yield blk
            start += size


def reference(full: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """np.nanquantile one column and one probability at a time."""
    out = np.full(probs.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf inside NumPy's lerp
        for s in range(probs.shape[0]):
            col = full[:, s]
            if np.isnan(col).all():
                continue
            for k in range(probs.shape[1]):
                if not np.isnan(probs[s, k]):
                    out[s, k] = np.nanquantile(col, float(probs[s, k]))
    return out


def assert_same(got: np.ndarray, full: np.ndarray, probs: np.ndarray) -> None:
    """Bit-equal, except the sign of a zero in a column holding both -0.0 and
    +0.0 (NumPy's partition orders those ties arbitrarily): equal as numbers there."""
    ref = reference(full, probs)
    assert got.shape == ref.shape and got.dtype == np.float64
    bits_equal = got.view(np.uint64) == ref.view(np.uint64)
    zeros = full == 0
    mixed = (zeros & np.signbit(full)).any(axis=0) & (zeros & ~np.signbit(full)).any(axis=0)
    number_equal = (got == ref) | (np.isnan(got) & np.isnan(ref))
    ok = bits_equal | (mixed[:, None] & number_equal)
    assert ok.all(), (got[~ok], ref[~ok], np.argwhere(~ok))


def split_rows(draw, n_rows: int) -> list[int]:
    """Random block sizes summing to n_rows, including 0- and 1-row blocks."""
    sizes = []
    left = n_rows
    while left > 0:
        size = draw(st.sampled_from([0, 1, 2, 5, 17, left]))
        size = min(size, left)
        sizes.append(size)
        left -= size
    if draw(st.booleans()):
        sizes.insert(draw(st.integers(0, len(sizes))), 0)
    return sizes or [0]


@st.composite
def problems(draw, max_rows=60, max_cols=5):
    """(full, probs, block sizes, n_bins, max_candidates, fortran). Hypothesis
    draws the structure; the values come from a seeded generator (drawing
    arrays element by element is slow)."""
    n_rows = draw(st.integers(0, max_rows))
    n_cols = draw(st.integers(1, max_cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["pool", "grid", "bits", "normal"]))
    shape = (n_rows, n_cols)
    if kind == "pool":
        full = rng.choice(np.array(POOL), shape)
    elif kind == "grid":  # heavy ties
        full = rng.choice(np.array([0.0, 0.0, 0.0, 1.0, -2.0, np.nan]), shape)
    elif kind == "bits":  # any float64: subnormals, huge values, NaN payloads
        full = rng.integers(0, 2**64, shape, dtype=np.uint64, endpoint=False).view(np.float64)
    else:
        full = rng.normal(0.0, 10.0, shape)
    # Whole columns: all-NaN, constant, one defined value.
    for s in range(n_cols):
        special = draw(st.sampled_from([None, None, "nan", "const", "one"]))
        if special == "nan":
            full[:, s] = np.nan
        elif special == "const":
            full[:, s] = draw(st.sampled_from([2.5, -0.0, 0.0, np.inf]))
        elif special == "one" and n_rows:
            full[:, s] = np.nan
            full[draw(st.integers(0, n_rows - 1)), s] = draw(st.sampled_from([7.0, -0.0]))
    n_probs = draw(st.integers(0, 5))
    probs = rng.uniform(0.0, 1.0, (n_cols, n_probs))
    special_p = rng.random(probs.shape) < 0.4
    probs[special_p] = rng.choice(np.array([0.0, 1.0, 0.5, 0.025, 0.975, np.nan]), probs.shape)[
        special_p
    ]
    sizes = split_rows(draw, n_rows)
    n_bins = draw(st.sampled_from([2, 3, 16, 2048]))
    max_candidates = draw(st.sampled_from([1, 3, 50, 1 << 16]))
    fortran = draw(st.booleans())
    return full, probs, sizes, n_bins, max_candidates, fortran


def run(full, probs, sizes, fortran=False, **kw):
    src = Source(full, sizes, fortran)
    snapshot = full.copy()
    got, summary = stream_quantiles(src, full.shape[1], probs, **kw)
    assert np.array_equal(full, snapshot, equal_nan=True)
    assert src.calls == summary.passes
    return got, summary


@given(problems())
def test_matches_nanquantile_bit_for_bit(problem):
    full, probs, sizes, n_bins, max_candidates, fortran = problem
    got, summary = run(full, probs, sizes, fortran, n_bins=n_bins, max_candidates=max_candidates)
    assert_same(got, full, probs)
    assert summary.peak_candidates <= max_candidates
    assert summary.n_rows == full.shape[0]
    # Pass bound: pass 1, the splits (each shrinks a 64-bit key range by a
    # factor of at least 2), one collection pass.
    assert 1 <= summary.passes <= 2 + 64


@given(problems())
def test_in_memory_quantiles_are_the_streamed_ones(problem):
    """The kept-deltas path (selection in Rust) gives the same numbers and
    counts as the streamed one, and both are np.nanquantile."""
    full, probs, sizes, *_ = problem
    full = np.ascontiguousarray(full)
    snapshot = full.copy()
    thr = np.column_stack([np.zeros(full.shape[1]), np.ones(full.shape[1])])
    with np.errstate(invalid="ignore"):
        got, summary = quantiles_in_memory(full, probs, thresholds=thr)
    assert np.array_equal(full, snapshot, equal_nan=True)
    assert_same(got, full, probs)
    streamed, s2 = run(full, probs, sizes, thresholds=thr)
    assert np.array_equal(got, streamed, equal_nan=True)
    for name in ("n_defined", "count_le", "count_lt"):
        assert np.array_equal(getattr(summary, name), getattr(s2, name))
    for name in ("minimum", "maximum"):  # Rust one pass vs NumPy per block
        assert np.array_equal(getattr(summary, name), getattr(s2, name), equal_nan=True)


def test_in_memory_extremes_follow_the_total_order():
    """A zero extreme takes its sign from the total order (-0.0 < +0.0), not
    from the order of the rows; all-NaN columns give NaN."""
    values = np.array([[0.0, np.nan, -0.0], [-0.0, np.nan, -0.0], [0.0, np.nan, -0.0]])
    _, summary = quantiles_in_memory(values, np.full((3, 1), 0.5))
    assert [np.signbit(x) for x in summary.minimum[[0, 2]]] == [True, True]
    assert [np.signbit(x) for x in summary.maximum[[0, 2]]] == [False, True]
    assert np.isnan(summary.minimum[1]) and np.isnan(summary.maximum[1])
    assert summary.n_defined.tolist() == [3, 0, 3]


@given(problems(max_rows=40), st.integers(0, 3))
def test_first_pass_counts(problem, n_thr):
    full, _, sizes, n_bins, _, _ = problem
    n_cols = full.shape[1]
    rng = np.random.default_rng(n_thr)
    thr = rng.choice(np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan, 0.5]), (n_cols, n_thr))
    probs = np.full((n_cols, 1), np.nan)
    _, summary = run(full, probs, sizes, thresholds=thr, n_bins=n_bins)
    defined = ~np.isnan(full)
    assert np.array_equal(summary.n_defined, defined.sum(axis=0))
    with np.errstate(invalid="ignore"):  # comparisons with signalling NaNs
        for t in range(n_thr):
            assert np.array_equal(summary.count_le[:, t], (full <= thr[:, t]).sum(axis=0))
            assert np.array_equal(summary.count_lt[:, t], (full < thr[:, t]).sum(axis=0))
    # Per column with NaN removed (NumPy's nanmin/nanmax mishandle signalling NaNs).
    for s in range(n_cols):
        col = full[:, s][~np.isnan(full[:, s])]
        expected = (col.min(), col.max()) if col.size else (np.nan, np.nan)
        got = (summary.minimum[s], summary.maximum[s])
        assert np.array_equal(got, expected, equal_nan=True)
    # Nothing wanted: one pass.
    assert summary.passes == 1


def test_hand_checked():
    full = np.array(
        [
            [1.0, np.nan, 5.0, 0.0],
            [2.0, np.nan, 5.0, -3.0],
            [3.0, np.nan, 5.0, np.nan],
            [4.0, np.nan, 5.0, 0.0],
        ]
    )
    probs = np.array([[0.5, 0.25, 1.0], [0.5, 0.0, 1.0], [0.1, 0.9, np.nan], [0.5, 0.0, 0.75]])
    got, summary = run(full, probs, [1, 0, 3])
    # (n - 1) p = 1.5 -> 2.5; 0.75 -> 1 + 0.75; p = 1 -> the maximum.
    expected = np.array(
        [[2.5, 1.75, 4.0], [np.nan, np.nan, np.nan], [5.0, 5.0, np.nan], [0.0, -3.0, 0.0]]
    )
    assert np.array_equal(got, expected, equal_nan=True)
    assert summary.n_defined.tolist() == [4, 0, 4, 3]


def test_signalling_nan_is_just_undefined():
    # NumPy's SIMD fmax / nanmax return NaN against a signalling NaN; the
    # first pass must not use them.
    snan = np.array([0xFFF2C76F73D9E888, 0x7FF0000000000001], dtype=np.uint64).view(np.float64)
    full = np.array([[1e300, 5.0], [snan[0], 1.0], [2.0, snan[1]], [-3.0, 4.0]])
    probs = np.array([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]])
    got, summary = run(full, probs, [2, 2])
    assert summary.maximum.tolist() == [1e300, 5.0]
    assert summary.minimum.tolist() == [-3.0, 1.0]
    assert summary.n_defined.tolist() == [3, 3]
    assert np.array_equal(got, [[-3.0, 2.0, 1e300], [1.0, 4.0, 5.0]])


def test_lerp_switch_at_one_half_reproduced():
    # a + (b - a) t and b - (b - a)(1 - t) differ in the last bit for some of
    # these positions; NumPy takes the second from t = 0.5 on.
    rng = np.random.default_rng(0)
    full = rng.normal(size=(101, 3)) * 1e3
    probs = np.tile(np.linspace(0.0, 1.0, 257), (3, 1))
    got, _ = run(full, probs, [50, 51])
    assert_same(got, full, probs)
    ordered = np.sort(full[:, 0])
    h = 100 * probs[0]
    i = np.minimum(np.floor(h).astype(int), 99)
    a, b, t = ordered[i], ordered[i + 1], h - i
    forward, backward = a + (b - a) * t, b - (b - a) * (1 - t)
    differ = (forward != backward) & (t >= 0.5)
    assert differ.any()  # the switch matters here ...
    assert np.array_equal(got[0][differ], backward[differ])  # ... and is reproduced


def test_ties_resolved_without_collecting_them():
    # A delta that is exactly 0 in 60% of resamples: the median's region is
    # one value; with a budget far below its count it still takes 2 passes.
    rng = np.random.default_rng(1)
    full = rng.normal(size=(5000, 8))
    full[rng.random((5000, 8)) < 0.6] = 0.0
    probs = np.tile([0.3, 0.5, 0.7], (8, 1))
    got, summary = run(full, probs, [1000] * 5, max_candidates=200)
    assert_same(got, full, probs)
    assert summary.passes == 2
    assert summary.split_regions > 0
    assert summary.peak_candidates <= 200


def test_poor_pilot_range_forces_refinement():
    # First block narrow, the rest spread wide: every wanted rank sits in the
    # overflow or underflow region, which is too big to collect.
    rng = np.random.default_rng(2)
    first = rng.uniform(0.0, 1e-6, size=(10, 4))
    rest = rng.normal(0.0, 1e3, size=(3000, 4))
    full = np.vstack([first, rest])
    probs = np.tile([0.025, 0.5, 0.975], (4, 1))
    got, summary = run(full, probs, [10, 1000, 1000, 1000], max_candidates=500)
    assert_same(got, full, probs)
    assert summary.split_regions > 0
    assert summary.passes == 3
    assert summary.peak_candidates <= 500


def test_tiny_bins_and_budget_terminate():
    rng = np.random.default_rng(3)
    full = rng.standard_cauchy(size=(400, 3))
    probs = np.tile([0.01, 0.5, 0.99], (3, 1))
    got, summary = run(full, probs, [7, 393], n_bins=2, max_candidates=1)
    assert_same(got, full, probs)
    assert summary.peak_candidates <= 1
    assert summary.passes <= 2 + 64


def test_normal_case_two_passes():
    rng = np.random.default_rng(4)
    full = rng.normal(size=(10_000, 20))
    probs = np.tile([0.025, 0.975], (20, 1))
    got, summary = run(full, probs, [1000] * 10)
    assert_same(got, full, probs)
    assert summary.passes == 2
    assert summary.split_regions == 0


def test_minimum_and_maximum_need_one_pass():
    rng = np.random.default_rng(5)
    full = rng.normal(size=(300, 4))
    probs = np.tile([0.0, 1.0], (4, 1))
    got, summary = run(full, probs, [100, 200])
    assert_same(got, full, probs)
    assert summary.passes == 1


def test_probs_callable_receives_pass_one_counts():
    rng = np.random.default_rng(6)
    full = rng.normal(size=(2000, 3))
    thr = np.zeros((3, 1))
    seen: list[ColumnSummary] = []

    def levels(summary: ColumnSummary) -> np.ndarray:
        seen.append(summary)
        frac = summary.count_lt[:, 0] / summary.n_defined  # a BCa-like level
        return np.stack([frac / 2, frac], axis=1)

    got, summary = run(full, levels, [500] * 4, thresholds=thr)
    assert len(seen) == 1 and seen[0].passes == 1
    assert_same(got, full, levels(summary))


def test_many_columns_uneven_blocks():
    rng = np.random.default_rng(7)
    full = rng.normal(size=(1500, 300))
    full[rng.random(full.shape) < 0.05] = np.nan
    full[:, ::7] = np.round(full[:, ::7])  # ties
    probs = np.tile([0.025, 0.5, 0.975], (300, 1))
    got, summary = run(full, probs, [0, 499, 1, 1000])
    assert_same(got, full, probs)
    assert summary.passes == 2
    # A first block of one row gives a poor pilot range: refinement, still exact.
    got, summary = run(full, probs, [1, 0, 499, 1000])
    assert_same(got, full, probs)
    assert 3 <= summary.passes <= 4 and summary.split_regions > 0
    assert summary.peak_candidates <= 1 << 16


def test_errors():
    full = np.zeros((4, 2))
    src = Source(full, [4])
    with pytest.raises(InvalidArgumentError, match="stream_quantiles: probs"):
        stream_quantiles(src, 2, np.array([[0.5], [1.5]]))
    with pytest.raises(ShapeError, match="stream_quantiles: probs"):
        stream_quantiles(src, 2, np.array([0.5, 0.5]))
    with pytest.raises(ShapeError, match="thresholds"):
        stream_quantiles(src, 2, np.full((2, 1), 0.5), thresholds=np.zeros(2))
    with pytest.raises(ShapeError, match="block 0 of pass 1"):
        stream_quantiles(src, 3, np.full((3, 1), 0.5))
    with pytest.raises(InvalidArgumentError, match="float64"):
        stream_quantiles(lambda: [np.zeros((2, 2), np.float32)], 2, np.full((2, 1), 0.5))
    with pytest.raises(InvalidArgumentError, match="n_bins"):
        stream_quantiles(src, 2, np.full((2, 1), 0.5), n_bins=1)
    with pytest.raises(InvalidArgumentError, match="max_candidates"):
        stream_quantiles(src, 2, np.full((2, 1), 0.5), max_candidates=0)
    with pytest.raises(InvalidArgumentError, match="n_cols"):
        stream_quantiles(src, True, np.full((2, 1), 0.5))


def test_blocks_that_change_between_passes_are_refused():
    rng = np.random.default_rng(8)
    data = [rng.normal(size=(200, 2)), rng.normal(size=(200, 2))]
    calls = []

    def blocks():
        calls.append(1)
        return [data[len(calls) > 1]]

    with pytest.raises(InvalidArgumentError, match="different data on pass 2"):
        stream_quantiles(blocks, 2, np.full((2, 1), 0.5))

    def fewer_rows():
        calls.append(1)
        return [data[0][: 200 if len(calls) == 1 else 100]]

    calls.clear()
    with pytest.raises(InvalidArgumentError, match="rows instead of"):
        stream_quantiles(fewer_rows, 2, np.full((2, 1), 0.5))


def test_pass_count_bound_default_bins():
    # Values spread over the whole float range with a narrow pilot: the splits
    # work on 64-bit keys, 11 bits at a time with 2048 sub-bins.
    rng = np.random.default_rng(9)
    mags = 10.0 ** rng.uniform(-300, 300, size=(5000, 2))
    full = np.vstack([np.ones((1, 2)), mags * rng.choice([-1.0, 1.0], size=mags.shape)])
    probs = np.tile([0.1, 0.5, 0.9], (2, 1))
    got, summary = run(full, probs, [1, 2500, 2500], max_candidates=100)
    assert_same(got, full, probs)
    # The documented bound: b >= min(n_bins, (n_bins + 4) // (2 L)) sub-bins.
    b = min(2048, 2052 // (2 * probs.shape[1]))
    assert summary.passes <= 2 + math.ceil(64 / math.log2(b))


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(problems(max_rows=300, max_cols=8))
def test_matches_nanquantile_long(problem):
    full, probs, sizes, n_bins, max_candidates, fortran = problem
    got, summary = run(full, probs, sizes, fortran, n_bins=n_bins, max_candidates=max_candidates)
    assert_same(got, full, probs)
    assert summary.peak_candidates <= max_candidates


@pytest.mark.slow
def test_large_matrix():
    rng = np.random.default_rng(10)
    full = rng.standard_t(3, size=(10_000, 2000))
    full[rng.random(full.shape) < 0.01] = np.nan
    full[rng.random(10_000) < 0.6, :50] = 0.0
    probs = np.tile([0.005, 0.025, 0.5, 0.975, 0.995], (2000, 1))
    got, summary = run(full, probs, [1000] * 10)
    assert_same(got, full, probs)
    assert summary.peak_candidates <= 1 << 16
