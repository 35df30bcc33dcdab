"""Paired bootstrap: RNG stream, determinism, per-resample statistic, intervals, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import logsumexp

import kdmetrics
from kdmetrics.stats.bootstrap import (
    COLUMNS,
    POLICY_COLUMNS,
    eval_indices,
    interval,
    resample_indices,
)

# ---------------------------------------------------------------- the stream

M64 = (1 << 64) - 1


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & M64


def _xoshiro_step(s: list[int]) -> int:
    out = (_rotl((s[0] + s[3]) & M64, 23) + s[0]) & M64
    t = (s[1] << 17) & M64
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return out


def reference_indices(n: int, seed: int, i: int, count: int) -> list[int]:
    """The documented stream, written out slowly: four xoshiro256++ lanes seeded by
    SplitMix64 from splitmix64(splitmix64(seed) ^ i); each output gives two 32-bit
    words, high first; Lemire's rejection maps a word to [0, n)."""
    _, key = _splitmix64(seed)
    _, sm = _splitmix64(key ^ i)
    lanes = []
    for _ in range(4):
        lane = []
        for _ in range(4):
            sm, v = _splitmix64(sm)
            lane.append(v)
        lanes.append(lane)
    threshold = (2**32 - n) % n
    out: list[int] = []
    while len(out) < count:
        for lane in lanes:
            x = _xoshiro_step(lane)
            for u in (x >> 32, x & 0xFFFFFFFF):
                m = u * n
                if len(out) < count and (m & 0xFFFFFFFF) >= threshold:
                    out.append(m >> 32)
    return out


def test_xoshiro_reference_vector():
    s = [1, 2, 3, 4]
    assert [_xoshiro_step(s) for _ in range(3)] == [41943041, 58720359, 3588806011781223]


def test_rng_golden_values():
    # Pinned: also in rust/bootstrap/rng.rs. Changing the stream changes every
    # published interval, so this must fail loudly.
    assert resample_indices(1000, 0, 0)[:8].tolist() == [245, 25, 469, 405, 413, 324, 872, 437]
    assert resample_indices(6430, 42, 7)[:8].tolist() == [
        6107,
        618,
        2615,
        2146,
        6418,
        1601,
        3776,
        2728,
    ]


@pytest.mark.parametrize(
    ("n", "seed", "i"), [(2, 0, 0), (37, 5, 3), (1000, 2**64 - 1, 123), (6430, 42, 7)]
)
def test_rng_matches_python_reference(n, seed, i):
    assert resample_indices(n, seed, i).tolist() == reference_indices(n, seed, i, n)


def test_rng_is_roughly_uniform():
    n = 7
    counts = np.zeros(n)
    for i in range(300):
        counts += np.bincount(resample_indices(n, 1, i), minlength=n)
    expected = counts.sum() / n
    assert stats.chisquare(counts, np.full(n, expected)).pvalue > 1e-4


# ---------------------------------------------------------------- data


def make_data(n=400, k=12, seed=0, gap=0.05, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    base = rng.normal(size=(n, k))
    za = base + rng.normal(scale=0.8, size=(n, k))
    zb = base + rng.normal(scale=0.8, size=(n, k))
    za[np.arange(n), y] += 1.5
    zb[np.arange(n), y] += 1.5 + 10 * gap
    teacher = base.copy()
    teacher[np.arange(n), y] += 2.5
    tiers = np.arange(k) % 3
    return y, za.astype(dtype), zb.astype(dtype), teacher.astype(dtype), tiers


@pytest.fixture
def threads():
    yield kdmetrics.set_num_threads
    kdmetrics.set_num_threads(0)


# ---------------------------------------------------------------- determinism


def _run(**kw):
    y, za, zb, t, tiers = make_data()
    return kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, reference_logits=t, return_deltas=True, **kw
    )


def test_thread_count_does_not_matter(threads):
    threads(1)
    t1, d1 = _run(n_resamples=300, method="bca")
    threads(2)
    t2, d2 = _run(n_resamples=300, method="bca")
    pd.testing.assert_frame_equal(t1, t2, check_exact=True)
    for key in d1:
        np.testing.assert_array_equal(d1[key], d2[key])


def test_rayon_num_threads_env_does_not_matter():
    script = textwrap.dedent(
        """
        import hashlib
        import numpy as np
        import kdmetrics
        rng = np.random.default_rng(0)
        y = rng.integers(0, 12, 400)
        za, zb = rng.normal(size=(2, 400, 12)).astype(np.float32)
        _, d = kdmetrics.paired_bootstrap(y, za, zb, tier_of_class=np.arange(12) % 3,
                                          n_resamples=200, return_deltas=True)
        h = hashlib.sha256()
        for key in sorted(d):
            h.update(np.ascontiguousarray(d[key]).tobytes())
        print(kdmetrics.get_num_threads(), h.hexdigest())
        """
    )
    outs = []
    for n in ("1", "2"):
        env = {**os.environ, "RAYON_NUM_THREADS": n}
        r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.split())
    assert [o[0] for o in outs] == ["1", "2"]
    assert outs[0][1] == outs[1][1]


def test_ranges_merge_exactly():
    y, za, zb, _, tiers = make_data()
    kw = dict(tier_of_class=tiers, return_deltas=True, seed=11)
    _, whole = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=120, **kw)
    _, first = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=70, **kw)
    _, rest = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=50, start=70, **kw)
    for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([first[key], rest[key]]))
    # And the merged deltas give the same interval as one run.
    table = kdmetrics.paired_bootstrap(
        y, za, zb, n_resamples=120, tier_of_class=tiers, seed=11, method="percentile"
    )
    keys = list(zip(table.metric, table.group, strict=True))
    merged = np.column_stack([np.concatenate([first[k], rest[k]]) for k in keys])
    lo, hi = interval(merged, table.delta.to_numpy(), 0.95, "percentile")
    np.testing.assert_array_equal(lo, table.ci_low.to_numpy())
    np.testing.assert_array_equal(hi, table.ci_high.to_numpy())


def test_deltas_written_in_place_are_the_returned_ones():
    """``deltas_into`` (what the engine uses: rows of one preallocated array)
    fills exactly what ``deltas`` returns, and refuses a wrong width."""
    from kdmetrics.stats.bootstrap import _prepare

    y, za, zb, _, tiers = make_data()
    p = _prepare("t", y, [za, zb], ["a", "b"], tiers, ("accuracy", "ece", "nll"), None, 15)
    want = p.kernel.deltas(5, 3, 40)
    out = np.full((50, p.kernel.n_deltas), np.nan)
    p.kernel.deltas_into(5, 3, out[4:44])
    np.testing.assert_array_equal(out[4:44], want)
    assert np.isnan(out[:4]).all() and np.isnan(out[44:]).all()
    with pytest.raises(ValueError, match="columns"):
        p.kernel.deltas_into(5, 3, np.empty((4, p.kernel.n_deltas + 1)))


def test_seed_changes_resamples():
    y, za, zb, _, _ = make_data()
    _, d0 = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=50, return_deltas=True, seed=0)
    _, d1 = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=50, return_deltas=True, seed=1)
    assert not np.array_equal(d0[("accuracy", "all")], d1[("accuracy", "all")])


# ---------------------------------------------------------------- the table


def test_table_matches_summary_and_flips():
    y, za, zb, t, tiers = make_data()
    table = kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, reference_logits=t, n_resamples=50
    )
    assert list(table.columns) == [*COLUMNS, *POLICY_COLUMNS]
    sa = kdmetrics.summary(y, za, tier_of_class=tiers, reference_logits=t)
    sb = kdmetrics.summary(y, zb, tier_of_class=tiers, reference_logits=t)
    pa, pb = za.argmax(1), zb.argmax(1)
    ex_tier = tiers[y]
    for row in table.itertuples():
        assert row.a == pytest.approx(sa.loc[row.group, row.metric], rel=1e-9, abs=1e-12)
        assert row.b == pytest.approx(sb.loc[row.group, row.metric], rel=1e-9, abs=1e-12)
        assert row.delta == row.b - row.a
        sel = (
            np.ones(len(y), bool)
            if row.group == "all"
            else ex_tier == ("head", "mid", "tail").index(row.group)
        )
        assert row.n == sel.sum()
        if row.metric == "accuracy":
            ca, cb = pa[sel] == y[sel], pb[sel] == y[sel]
            assert row.flips_a_only == int((ca & ~cb).sum())
            assert row.flips_b_only == int((~ca & cb).sum())
        else:
            assert pd.isna(row.flips_a_only) and pd.isna(row.flips_b_only)
    assert set(table.metric) == {"macro_f1", "accuracy", "ece", "nll", "brier", "kl", "js"}


def test_deltas_summaries_and_basic_interval():
    y, za, zb, _, tiers = make_data()
    table, d = kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, n_resamples=400, return_deltas=True, method="percentile"
    )
    basic = kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, n_resamples=400, method="basic"
    )
    for row, brow in zip(table.itertuples(), basic.itertuples(), strict=True):
        x = d[(row.metric, row.group)]
        assert x.shape == (400,)
        assert row.median_delta == np.quantile(x, 0.5)  # the linear-interpolation median
        assert row.p_delta_le_0 == np.mean(x <= 0)
        lo, hi = np.quantile(x, [0.025, 0.975])
        assert (row.ci_low, row.ci_high) == (
            pytest.approx(lo, rel=1e-12),
            pytest.approx(hi, rel=1e-12),
        )
        assert brow.ci_low == pytest.approx(2 * row.delta - hi)
        assert brow.ci_high == pytest.approx(2 * row.delta - lo)


def test_predictions_work_for_accuracy_and_f1():
    y, za, zb, _, tiers = make_data()
    kw = dict(tier_of_class=tiers, metrics=("macro_f1", "accuracy"), n_resamples=100)
    from_logits = kdmetrics.paired_bootstrap(y, za, zb, **kw)
    from_preds = kdmetrics.paired_bootstrap(y, za.argmax(1), zb.argmax(1), **kw)
    pd.testing.assert_frame_equal(from_logits, from_preds)


def test_identical_models():
    y, za, _, _, tiers = make_data()
    table = kdmetrics.paired_bootstrap(y, za, za, tier_of_class=tiers, n_resamples=200)
    assert (table.ci_low == 0).all() and (table.ci_high == 0).all()
    assert (table.p_delta_le_0 == 1).all()
    with pytest.warns(RuntimeWarning, match="degenerate"):
        bca = kdmetrics.paired_bootstrap(y, za, za, n_resamples=200, method="bca")
    assert bca.ci_low.isna().all() and bca.ci_high.isna().all()


# ---------------------------------------------------------------- vs scipy


def _macro_f1_rows(y, p, k):
    """Macro F1 of each row of (R, n) label / prediction arrays (excluding undefined classes)."""
    y2, p2 = y.reshape(-1, y.shape[-1]), p.reshape(-1, p.shape[-1])
    r = y2.shape[0]
    rows = np.arange(r)[:, None] * k
    hit = y2 == p2
    tp = np.bincount((rows + y2)[hit], minlength=r * k).reshape(r, k)
    fn = np.bincount((rows + y2)[~hit], minlength=r * k).reshape(r, k)
    fp = np.bincount((rows + p2)[~hit], minlength=r * k).reshape(r, k)
    d = 2 * tp + fp + fn
    f1 = np.where(d > 0, 2 * tp / np.maximum(d, 1), np.nan)
    return np.nanmean(f1, axis=1).reshape(y.shape[:-1])


@pytest.mark.parametrize("method", ["percentile", "BCa"])
@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_agrees_with_scipy(method, metric):
    y, za, zb, _, _ = make_data(n=300, k=6, seed=3, gap=0.03)
    pa, pb = za.argmax(1), zb.argmax(1)
    k = za.shape[1]

    def statistic(y, pa, pb, axis=-1):
        if metric == "accuracy":
            return (pb == y).mean(axis=axis) - (pa == y).mean(axis=axis)
        return _macro_f1_rows(y, pb, k) - _macro_f1_rows(y, pa, k)

    n_res = 4000
    ref = stats.bootstrap(
        (y, pa, pb), statistic, paired=True, vectorized=True, n_resamples=n_res,
        method=method, rng=np.random.default_rng(0),
    )  # fmt: skip
    ours = kdmetrics.paired_bootstrap(
        y, pa, pb, metrics=(metric,), n_resamples=n_res, method=method.lower()
    ).iloc[0]
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours.delta == pytest.approx(statistic(y, pa, pb))
    # Monte Carlo error of an endpoint with 4000 resamples is a few % of the width.
    assert abs(ours.ci_low - ref.confidence_interval.low) < 0.12 * width
    assert abs(ours.ci_high - ref.confidence_interval.high) < 0.12 * width


# ---------------------------------------------------------------- coverage


def _coverage(n_sims, n, n_resamples, method="percentile"):
    """Fraction of intervals covering the true accuracy difference (0.05)."""
    rng = np.random.default_rng(123)
    k = 5
    hits = 0
    for _ in range(n_sims):
        y = rng.integers(0, k, n)
        u = rng.random(n)
        # Correlated correctness: P(A right) = 0.70, P(B right) = 0.75.
        ca = u < 0.70
        cb = u < 0.75
        flip = rng.random(n) < 0.2
        cb = np.where(flip, rng.random(n) < 0.75, cb)
        pa = np.where(ca, y, (y + 1) % k)
        pb = np.where(cb, y, (y + 2) % k)
        row = kdmetrics.paired_bootstrap(
            y, pa, pb, metrics=("accuracy",), n_resamples=n_resamples, method=method,
            seed=int(rng.integers(2**32)),
        ).iloc[0]  # fmt: skip
        hits += row.ci_low <= 0.05 <= row.ci_high
    return hits / n_sims


def test_coverage_short():
    # 60 intervals: a 95% procedure covers >= 50 of them with probability > 0.99.
    assert _coverage(60, 300, 400) >= 50 / 60


@pytest.mark.slow
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_coverage_long(method):
    cov = _coverage(1000, 400, 2000, method)
    assert 0.93 <= cov <= 0.97


# ---------------------------------------------------------------- the per-resample statistic


def _reference(y, za, zb, teacher, tiers, idx, n_bins):
    """Obviously-correct NumPy: metrics of both models on y[idx], per group."""
    out = {}
    zs = {"a": za.astype(np.float64), "b": zb.astype(np.float64)}
    t = teacher.astype(np.float64)
    log_t = t - logsumexp(t, axis=1, keepdims=True)
    k = za.shape[1]
    yy = y[idx]
    edges = np.linspace(0, 1, n_bins + 1)
    groups = {"all": np.ones(len(idx), bool)}
    for g, name in enumerate(("head", "mid", "tail")):
        groups[name] = tiers[yy] == g
    for m, z in zs.items():
        logp = z - logsumexp(z, axis=1, keepdims=True)
        p = np.exp(logp)
        pred = z.argmax(1)[idx]
        conf = kdmetrics.metrics.scoring.example_stats("t", y, z.astype(zs[m].dtype)).confidence[
            idx
        ]
        nll = -logp[np.arange(len(y)), y][idx]
        onehot = np.eye(k)[y]
        brier = ((p - onehot) ** 2).sum(1)[idx]
        kl = (np.exp(log_t) * (log_t - logp)).sum(1)[idx]
        mix = np.log((np.exp(log_t) + p) / 2)
        js = (0.5 * (np.exp(log_t) * (log_t - mix)).sum(1) + 0.5 * (p * (logp - mix)).sum(1))[idx]
        correct = pred == yy
        f1 = np.full(k, np.nan)
        for c in range(k):
            tp = np.sum((yy == c) & (pred == c))
            fp = np.sum((yy != c) & (pred == c))
            fn = np.sum((yy == c) & (pred != c))
            if tp + fp + fn:
                f1[c] = 2 * tp / (2 * tp + fp + fn)
        for name, sel in groups.items():
            classes = (
                np.ones(k, bool) if name == "all" else tiers == ("head", "mid", "tail").index(name)
            )
            f = f1[classes]
            out[("macro_f1", name, m)] = np.nanmean(f) if (~np.isnan(f)).any() else np.nan
            if not sel.any():
                for metric in ("accuracy", "ece", "nll", "brier", "kl", "js"):
                    out[(metric, name, m)] = np.nan
                continue
            out[("accuracy", name, m)] = correct[sel].mean()
            b = np.clip(np.searchsorted(edges, conf[sel], side="left") - 1, 0, n_bins - 1)
            ece = 0.0
            for j in range(n_bins):
                inb = b == j
                if inb.any():
                    ece += (
                        inb.sum()
                        / sel.sum()
                        * abs(correct[sel][inb].mean() - conf[sel][inb].mean())
                    )
            out[("ece", name, m)] = ece
            for metric, v in (("nll", nll), ("brier", brier), ("kl", kl), ("js", js)):
                out[(metric, name, m)] = v[sel].mean()
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_statistic_matches_numpy_reference(data):
    n = data.draw(st.integers(2, 30), label="n")
    k = data.draw(st.integers(2, 6), label="k")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    n_bins = data.draw(st.integers(1, 20), label="n_bins")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    # Coarse logits make exact argmax ties (to the lowest index) common.
    za = rng.integers(-3, 4, (n, k)).astype(np.float64) / 2
    zb = rng.normal(size=(n, k))
    teacher = rng.normal(size=(n, k))
    tiers = rng.integers(0, 3, k)
    idx = rng.integers(0, n, (data.draw(st.integers(1, 3), label="draws"), n))
    got = eval_indices(y, za, zb, idx, tier_of_class=tiers, reference_logits=teacher, n_bins=n_bins)
    for r in range(idx.shape[0]):
        ref = _reference(y, za, zb, teacher, tiers, idx[r], n_bins)
        rows = got[got.draw == r]
        for row in rows.itertuples():
            for m in ("a", "b"):
                want = ref[(row.metric, row.group, m)]
                have = getattr(row, m)
                if np.isnan(want):
                    assert np.isnan(have), (row.metric, row.group, m)
                else:
                    assert have == pytest.approx(want, abs=1e-6), (row.metric, row.group, m)


# ---------------------------------------------------------------- bad input


@pytest.fixture
def small():
    y, za, zb, t, tiers = make_data(n=50, k=6)
    return y, za, zb, t, tiers


def test_bad_lengths(small):
    y, za, zb, *_ = small
    with pytest.raises(ValueError, match="logits_b"):
        kdmetrics.paired_bootstrap(y, za, zb[:-1], n_resamples=5)
    with pytest.raises(ValueError, match="logits_b"):
        kdmetrics.paired_bootstrap(y, za.argmax(1), zb.argmax(1)[:-1], n_resamples=5,
                                   metrics=("accuracy",))  # fmt: skip


def test_too_few_examples(small):
    y, za, zb, *_ = small
    with pytest.raises(ValueError, match="at least 2 examples"):
        kdmetrics.paired_bootstrap(y[:1], za[:1], zb[:1], n_resamples=5)


@pytest.mark.parametrize("ci", [0, 1, 1.5, -0.2, "x"])
def test_bad_ci(small, ci):
    y, za, zb, *_ = small
    with pytest.raises(ValueError, match="ci"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, ci=ci)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_bad_n_resamples(small, n):
    y, za, zb, *_ = small
    with pytest.raises(ValueError, match="n_resamples"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=n)


def test_unknown_metric_and_method(small):
    y, za, zb, *_ = small
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, metrics=("f2",))
    with pytest.raises(ValueError, match="unknown method 'bc'"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, method="bc")


def test_bad_tiers(small):
    y, za, zb, _, tiers = small
    with pytest.raises(ValueError, match="tier_of_class"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, tier_of_class=tiers[:-1])
    with pytest.raises(ValueError, match="tier_of_class"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, tier_of_class=tiers + 1)


def test_tier_names_accepted(small):
    y, za, zb, _, tiers = small
    names = np.array(["head", "mid", "tail"])[tiers]
    a = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=20, tier_of_class=names)
    b = kdmetrics.paired_bootstrap(y, za, zb, n_resamples=20, tier_of_class=tiers)
    pd.testing.assert_frame_equal(a, b)


def test_metrics_that_need_logits_or_teacher(small):
    y, za, zb, *_ = small
    with pytest.raises(ValueError, match="'ece' needs logits"):
        kdmetrics.paired_bootstrap(y, za.argmax(1), zb, n_resamples=5)
    with pytest.raises(ValueError, match="reference_logits"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, metrics=("kl",))
    with pytest.raises(ValueError, match="reference_logits"):
        kdmetrics.paired_bootstrap(y, za, zb, n_resamples=5, reference_logits=za[:-1])


def test_labels_out_of_range(small):
    y, za, zb, *_ = small
    bad = y.copy()
    bad[3] = 99
    with pytest.raises(ValueError, match="labels"):
        kdmetrics.paired_bootstrap(bad, za, zb, n_resamples=5)


def test_argmax_only_path_matches_numpy_ties():
    # Accuracy / F1 alone skip the softmax; ties must still go to the lowest index.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 6, 300)
    za = rng.integers(-2, 3, (300, 6)).astype(np.float16)
    zb = rng.integers(-2, 3, (300, 6)).astype(np.float16)
    kw = dict(metrics=("accuracy", "macro_f1"), n_resamples=50)
    from_logits = kdmetrics.paired_bootstrap(y, za, zb, **kw)
    from_preds = kdmetrics.paired_bootstrap(y, za.argmax(1), zb.argmax(1), **kw)
    pd.testing.assert_frame_equal(from_logits, from_preds)
    bad = za.astype(np.float32)
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="logits_a has a NaN"):
        kdmetrics.paired_bootstrap(y, bad, zb, **kw)


# ---------------------------------------------------------------- statistic kinds


def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_registry_metrics_top_k_agreement_churn():
    y, za, zb, t, tiers = make_data()
    table = kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, reference_logits=t, n_resamples=60,
        metrics=("top_k_accuracy", "teacher_agreement", "churn"),
    )  # fmt: skip
    rows = table.set_index(["metric", "group"])
    all_ = slice(None)
    for group, sel in [("all", all_)] + [
        (name, tiers[y] == i) for i, name in enumerate(("head", "mid", "tail"))
    ]:
        r = rows.loc[("top_k_accuracy", group)]
        assert r.a == pytest.approx(kdmetrics.top_k_accuracy(y[sel], za[sel]), abs=1e-15)
        assert r.b == pytest.approx(kdmetrics.top_k_accuracy(y[sel], zb[sel]), abs=1e-15)
        r = rows.loc[("teacher_agreement", group)]
        assert r.a == pytest.approx(kdmetrics.teacher_agreement(za[sel], t[sel]), abs=1e-15)
        assert r.b == pytest.approx(kdmetrics.teacher_agreement(zb[sel], t[sel]), abs=1e-15)
        # A pair metric: a and b NaN, its value in delta.
        r = rows.loc[("churn", group)]
        assert pd.isna(r.a) and pd.isna(r.b)
        assert r.delta == pytest.approx(kdmetrics.churn(za[sel], zb[sel]), abs=1e-15)
        assert r.ci_low <= r.delta <= r.ci_high
    # kl and js are added with a reference, exactly as before.
    assert set(table.metric) == {"top_k_accuracy", "teacher_agreement", "churn", "kl", "js"}


def test_churn_per_resample_matches_numpy():
    y, za, zb, _, tiers = make_data(n=120, k=5, seed=4)
    idx = np.random.default_rng(2).integers(0, 120, (4, 120))
    got = eval_indices(y, za, zb, idx, tier_of_class=tiers, metrics=("churn",))
    pa, pb = za.argmax(1), zb.argmax(1)
    for r in range(4):
        row = got[(got.draw == r) & (got.group == "all")].iloc[0]
        assert row.a == 0.0
        assert row.b == np.mean(pa[idx[r]] != pb[idx[r]])
    # Churn needs predictions only, and its deltas are its values.
    table, d = kdmetrics.paired_bootstrap(
        y, pa, pb, metrics=("churn",), n_resamples=30, return_deltas=True, seed=3
    )
    first = resample_indices(120, 3, 0)
    assert d[("churn", "all")][0] == np.mean(pa[first] != pb[first])
    assert table.delta[0] == np.mean(pa != pb)


def test_probabilities_flags_match_logits():
    y, za, zb, t, tiers = make_data(n=200, k=5, dtype=np.float64)
    metrics = ("accuracy", "macro_f1", "ece", "nll", "brier", "teacher_agreement")
    kw = dict(tier_of_class=tiers, n_resamples=40, return_deltas=True, metrics=metrics)
    ta, da = kdmetrics.paired_bootstrap(y, za, zb, reference_logits=t, **kw)
    tb, db = kdmetrics.paired_bootstrap(
        y, _softmax(za), _softmax(zb), reference_logits=_softmax(t), probs=True,
        reference_probs=True, **kw,
    )  # fmt: skip
    for col in ("a", "b", "delta", "ci_low", "ci_high"):
        np.testing.assert_allclose(ta[col], tb[col], rtol=1e-6, atol=1e-9)
    bad = _softmax(za)
    bad[3] *= 2
    with pytest.raises(ValueError, match="paired_bootstrap: logits_a .*row 3 sums to"):
        kdmetrics.paired_bootstrap(y, bad, zb, probs=True, n_resamples=5)


def test_class_count_mismatch_is_reported_first():
    y = np.array([0, 1, 2, 2])
    a = np.eye(3)[y]
    b = np.eye(3)[[0, 1, 1, 1]][:, :2]
    with pytest.raises(kdmetrics.AlignmentError, match="logits_a has 3 classes but logits_b has 2"):
        kdmetrics.paired_bootstrap(y, a, b, n_resamples=10)
    with pytest.raises(kdmetrics.AlignmentError, match="reference_logits has 2 classes"):
        kdmetrics.paired_bootstrap(y, a, a, reference_logits=b, n_resamples=10)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(metrics=None), "metrics must be a metric name"),
        (dict(metrics=[3]), "metrics must hold metric names"),
        (dict(n_bins=float("nan")), "n_bins must be an integer"),
        (dict(n_bins=float("inf")), "n_bins must be an integer"),
        (dict(n_bins=True), "n_bins must be an integer"),
        (dict(n_bins=2**64), r"n_bins must be an integer in \[1, 65535\]"),
        (dict(n_bins="15"), "n_bins must be an integer"),
        (dict(seed=-1), "seed must be an integer"),
        (dict(seed=2**64), "seed must be an integer"),
        (dict(start=2**64 - 3), "start \\+ n_resamples"),
        (dict(probs=1), "probs must be True or False"),
        (dict(return_deltas="yes"), "return_deltas must be True or False"),
        (dict(progress="bar"), "progress must be"),
        (dict(method=None), "unknown method"),
    ],
)
def test_argument_errors_name_function_and_argument(small, kw, match):
    y, za, zb, *_ = small
    kw = {"n_resamples": 5, **kw}
    with pytest.raises(kdmetrics.InvalidArgumentError, match=f"^paired_bootstrap: .*{match}"):
        kdmetrics.paired_bootstrap(y, za, zb, **kw)


def test_progress_callback_and_chunking_do_not_change_results(small):
    from kdmetrics.stats import bootstrap as boot

    y, za, zb, _, tiers = small
    seen = []
    t1, d1 = kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, n_resamples=300, return_deltas=True,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen[-1] == (300, 300) and all(t == 300 for _, t in seen)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})
    p = boot._prepare("t", y, [za, zb], ["a", "b"], tiers, boot.DEFAULT_METRICS, None, 15)
    whole = p.kernel.deltas(0, 0, 300)
    tiny = boot.run_resamples("t", p.kernel, 0, 0, 300, chunk_seconds=0.0)
    np.testing.assert_array_equal(whole, tiny)
    keys = [(m, g) for m in boot.DEFAULT_METRICS for g in ("all", "head", "mid", "tail")]
    np.testing.assert_array_equal(whole, np.column_stack([d1[k] for k in keys]))


def test_progress_lines_when_not_a_terminal(small, capsys):
    y, za, zb, *_ = small
    kdmetrics.paired_bootstrap(y, za, zb, n_resamples=50, progress=True)
    err = capsys.readouterr().err
    assert err.endswith("paired_bootstrap: 50/50 resamples (100%" + err.split("(100%")[1])
    assert "\r" not in err


def test_default_method_is_the_measured_one_per_metric():
    """method="auto": each metric gets the interval the coverage harness chose,
    and every row says whether its measured coverage is trusted."""
    from kdmetrics.stats.policy import default_method

    y, za, zb, _, tiers = make_data()
    table = kdmetrics.paired_bootstrap(y, za, zb, tier_of_class=tiers, n_resamples=200)
    for row in table.itertuples():
        assert row.method == default_method(row.metric)
        assert isinstance(row.trusted, bool | np.bool_)
        assert (row.flag_reason == "") == bool(row.trusted)
    ece = table[table.metric == "ece"]
    assert (ece.method == "basic").all() and not ece.trusted.any()
    d = kdmetrics.paired_bootstrap(
        y, za, zb, tier_of_class=tiers, n_resamples=200, method="basic", metrics="ece"
    )
    np.testing.assert_array_equal(ece.ci_low.to_numpy(), d.ci_low.to_numpy())
