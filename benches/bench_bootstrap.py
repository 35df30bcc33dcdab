"""Paired bootstrap: kdmetrics vs scipy, scikit-learn and vectorised NumPy on one workload.

Reference workload (docs/conventions.md): N = 6,430 validation examples, K = 113 classes in
tiers of 20/40/53 (long-tailed labels: ~5,155/1,065/210 examples), float16
logits of two correlated models at ~75% accuracy, 10,000 resamples, both
models, overall and per tier.

    python benches/bench_bootstrap.py            # full
    python benches/bench_bootstrap.py --quick    # reduced, for a smoke test
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import kdmetrics

N, K, SIZES = 6430, 113, (20, 40, 53)
TIER_EXAMPLES = (5155, 1065, 210)


def make_workload(seed: int = 0):
    rng = np.random.default_rng(seed)
    tiers = np.repeat([0, 1, 2], SIZES)
    # Class probabilities so each tier holds its reference share of examples,
    # Zipf-like inside the tier.
    w = np.empty(K)
    start = 0
    for size, total in zip(SIZES, TIER_EXAMPLES, strict=True):
        zipf = 1.0 / np.arange(1, size + 1) ** 0.5
        w[start : start + size] = total * zipf / zipf.sum()
        start += size
    y = rng.choice(K, size=N, p=w / w.sum())
    # Shared "difficulty" makes the two models' errors correlated.
    common = rng.normal(size=(N, K)).astype(np.float32)
    easy = rng.normal(size=N).astype(np.float32)
    out = []
    for bump in (6.4, 6.6):
        z = 1.6 * common + rng.normal(size=(N, K)).astype(np.float32)
        z[np.arange(N), y] += bump + 1.5 * easy
        out.append(z.astype(np.float16))
    return y, out[0], out[1], tiers


def timed(fn, repeat: int = 1):
    best = np.inf
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def peak_rss_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def tier_f1_rows(tp, fp, fn, tiers):
    """(R, 4) macro F1 (all, head, mid, tail) from (R, K) counts; undefined classes left out."""
    d = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(d > 0, 2 * tp / d, np.nan)
    cols = [np.nanmean(f1, axis=-1)]
    for t in range(3):
        cols.append(np.nanmean(f1[..., tiers == t], axis=-1))
    return np.stack(cols, axis=-1)


def numpy_best(y, pa, pb, tiers, n_resamples, seed=0, batch=500):
    """Vectorised NumPy: cells (label, predA, predB), per-resample cell counts
    by one bincount, confusion counts by a matrix product, F1 vectorised."""
    rng = np.random.default_rng(seed)
    key = (y * K + pa) * K + pb
    cells, cell_of = np.unique(key, return_inverse=True)
    c_y, c_a, c_b = cells // (K * K), (cells // K) % K, cells % K
    n_cells = cells.shape[0]
    # Cell -> tp / fn / fp slots of each model (3K columns per model).
    maps = []
    for c_p in (c_a, c_b):
        m = np.zeros((n_cells, 3 * K))
        hit = c_y == c_p
        m[np.flatnonzero(hit), c_y[hit]] = 1
        m[np.flatnonzero(~hit), K + c_y[~hit]] = 1
        m[np.flatnonzero(~hit), 2 * K + c_p[~hit]] = 1
        maps.append(m)
    out = []
    for lo in range(0, n_resamples, batch):
        b = min(batch, n_resamples - lo)
        idx = rng.integers(0, y.shape[0], size=(b, y.shape[0]))
        flat = (np.arange(b)[:, None] * n_cells + cell_of[idx]).ravel()
        counts = np.bincount(flat, minlength=b * n_cells).reshape(b, n_cells).astype(np.float64)
        vals = []
        for m in maps:
            c = counts @ m
            vals.append(tier_f1_rows(c[:, :K], c[:, 2 * K :], c[:, K : 2 * K], tiers))
        out.append(vals[1] - vals[0])
    return np.concatenate(out)


def sklearn_loop(y, pa, pb, tiers, n_resamples, seed=0):
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    labels = np.arange(K)
    out = []
    for _ in range(n_resamples):
        idx = rng.integers(0, y.shape[0], y.shape[0])
        row = []
        for p in (pa, pb):
            f1 = f1_score(y[idx], p[idx], labels=labels, average=None, zero_division=np.nan)
            vals = [np.nanmean(f1)] + [np.nanmean(f1[tiers == t]) for t in range(3)]
            row.append(vals)
        out.append(np.subtract(row[1], row[0]))
    return np.array(out)


def scipy_run(y, pa, pb, tiers, n_resamples, method):
    from scipy import stats

    def statistic(y, pa, pb, axis=-1):
        # Bincount statistic: confusion counts of every resample at once.
        y2 = y.reshape(-1, y.shape[-1])
        r = y2.shape[0]
        off = np.arange(r)[:, None] * K
        vals = []
        for p in (pa, pb):
            p2 = p.reshape(-1, p.shape[-1])
            hit = y2 == p2
            tp = np.bincount((off + y2)[hit], minlength=r * K).reshape(r, K)
            fn = np.bincount((off + y2)[~hit], minlength=r * K).reshape(r, K)
            fp = np.bincount((off + p2)[~hit], minlength=r * K).reshape(r, K)
            vals.append(tier_f1_rows(tp, fp, fn, tiers))
        d = vals[1] - vals[0]
        return np.moveaxis(d.reshape(*y.shape[:-1], 4), -1, 0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.bootstrap(
            (y, pa, pb), statistic, paired=True, vectorized=True, batch=100,
            n_resamples=n_resamples, method=method, rng=np.random.default_rng(0),
        )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="reduced run (fewer resamples)")
    args = ap.parse_args()
    R = 1_000 if args.quick else 10_000
    r_scipy = 200 if args.quick else 1_000
    r_sklearn = 20 if args.quick else 200
    repeat = 3 if args.quick else 5

    y, za, zb, tiers = make_workload()
    pa, pb = za.argmax(1), zb.argmax(1)
    sizes = np.bincount(tiers[y], minlength=3)
    print(f"workload: N={N} K={K} tiers {SIZES} -> examples {sizes.tolist()}, float16 logits")
    print(
        f"accuracy A={np.mean(pa == y):.3f} B={np.mean(pb == y):.3f}, "
        f"both right {np.mean((pa == y) & (pb == y)):.3f}; resamples={R}; "
        f"threads={kdmetrics.get_num_threads()} (cpus {os.cpu_count()})"
    )

    def ours(metrics, method):
        return kdmetrics.paired_bootstrap(
            y, za, zb, tier_of_class=tiers, metrics=metrics, n_resamples=R, method=method
        )

    five = ("macro_f1", "accuracy", "ece", "nll", "brier")
    ours(("macro_f1",), "percentile")  # warm-up: thread pool, page faults
    reset = peak_rss_reset()
    rss0 = peak_rss_kib()
    t_f1, table = timed(lambda: ours(("macro_f1",), "percentile"), repeat)
    rss1 = peak_rss_kib()
    c0 = time.process_time()
    ours(("macro_f1",), "percentile")
    cpu_f1 = time.process_time() - c0
    t_f1_bca, _ = timed(lambda: ours(("macro_f1",), "bca"), repeat)
    t_all, _ = timed(lambda: ours(five, "percentile"), repeat)
    t_all_bca, _ = timed(lambda: ours(five, "bca"), repeat)

    # BCa's only extra work is the O(N) jackknife: time it alone (1 resample).
    def one(method, metrics=("macro_f1",)):
        return kdmetrics.paired_bootstrap(
            y, za, zb, tier_of_class=tiers, metrics=metrics, n_resamples=1, method=method
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # BCa of 1 resample is degenerate
        jk_f1 = timed(lambda: one("bca"), 20)[0] - timed(lambda: one("percentile"), 20)[0]
        jk_all = (
            timed(lambda: one("bca", five), 20)[0] - timed(lambda: one("percentile", five), 20)[0]
        )
    print(table[["metric", "group", "a", "b", "delta", "ci_low", "ci_high"]].to_string(index=False))

    # Chunking (for Ctrl-C and progress) vs one kernel call for all resamples:
    # the same deltas, so the ratio is its whole cost. The machine may be
    # shared: alternate the two, and report the median of the paired ratios.
    from kdmetrics.stats.bootstrap import _prepare, run_resamples

    chunk_rows = []
    for metrics in (("macro_f1",), five):
        p = _prepare("bench", y, [za, zb], ["a", "b"], tiers, metrics, None, 15)
        pairs = []
        for _ in range(15):
            t_one = timed(lambda p=p: p.kernel.deltas(0, 0, R))[0]
            t_chunked = timed(lambda p=p: run_resamples("bench", p.kernel, 0, 0, R))[0]
            pairs.append((t_chunked / t_one, t_one, t_chunked))
        ratio, t_one, t_chunked = sorted(pairs)[len(pairs) // 2]
        chunk_rows.append((len(metrics), ratio, t_one, t_chunked))

    t_np, _ = timed(lambda: numpy_best(y, pa, pb, tiers, R), 1)
    t_sk, _ = timed(lambda: sklearn_loop(y, pa, pb, tiers, r_sklearn), 1)
    t_sk *= R / r_sklearn
    t_sp, _ = timed(lambda: scipy_run(y, pa, pb, tiers, r_scipy, "percentile"), 1)
    t_sp_bca_small, _ = timed(lambda: scipy_run(y, pa, pb, tiers, r_scipy, "BCa"), 1)
    # The jackknife part of scipy's BCa does not grow with the resamples.
    jack = max(t_sp_bca_small - t_sp, 0.0)
    t_sp *= R / r_scipy
    t_sp_bca = t_sp + jack

    rows = [
        ("kdmetrics per-tier macro F1, percentile", t_f1,
         f"target <= 60 ms; CPU time of all threads {cpu_f1 * 1e3:.0f} ms"),
        ("kdmetrics per-tier macro F1, BCa", t_f1_bca,
         f"difference {1e3 * (t_f1_bca - t_f1):+.1f} ms (noise); jackknife alone "
         f"{jk_f1 * 1e3:.2f} ms, target < 1 ms"),
        ("kdmetrics 5 metrics x 4 groups, percentile", t_all, "target <= 150 ms"),
        ("kdmetrics 5 metrics x 4 groups, BCa", t_all_bca,
         f"jackknife alone {jk_all * 1e3:.2f} ms"),
        ("scipy percentile (paired, vectorized, batch=100)", t_sp,
         f"ran {r_scipy} resamples, x{R // r_scipy}"),
        ("scipy BCa", t_sp_bca,
         f"{r_scipy} resamples x{R // r_scipy} + jackknife {jack * 1e3:.0f} ms once"),
        ("scikit-learn f1_score loop", t_sk, f"ran {r_sklearn} resamples, x{R // r_sklearn}"),
        ("best vectorised NumPy (cells, bincount, matmul)", t_np, ""),
    ]  # fmt: skip
    print()
    for name, t, note in rows:
        print(f"{name:<50s} {t * 1e3:10.1f} ms   {note}")
    print()
    print(f"speed-up vs scipy percentile : {t_sp / t_f1:8.1f}x   (target >= 20x)")
    print(f"speed-up vs scipy BCa        : {t_sp_bca / t_f1_bca:8.1f}x   (target >= 35x)")
    print(f"speed-up vs sklearn loop     : {t_sk / t_f1:8.1f}x   (target >= 700x)")
    print(f"speed-up vs best NumPy       : {t_np / t_f1:8.1f}x   (target >= 7x)")
    for n_metrics, ratio, t_one, t_chunked in chunk_rows:
        print(
            f"chunked / unchunked, {n_metrics} metric(s): {ratio:6.3f}   (median of 15 "
            f"pairs; that pair {t_chunked * 1e3:.1f} vs {t_one * 1e3:.1f} ms; target <= 1.02)"
        )
    if reset:
        grow = rss1 - rss0
        print(f"peak RSS growth during the F1 run: {grow} KiB (deltas: {R * 4 * 8 // 1024} KiB)")
    else:
        print("peak RSS could not be reset on this system; memory not measured")


if __name__ == "__main__":
    main()
