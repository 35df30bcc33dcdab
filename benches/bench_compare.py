"""kdmetrics.compare for 2 and 5 models against the best vectorised NumPy way.

Reference workload: N = 6,430 validation examples, K = 113 classes in tiers
20/40/53 (long-tailed labels), float16 logits, 10,000 resamples, groups all /
head / mid / tail. "2 models" is a reference and one variant, "5 models" a
reference and four (quantization-like perturbations and a temperature change).

"engine" rows time the resampling engine from Python
(``kdmetrics.stats.bootstrap.bootstrap_models``: per-example statistics,
every resample, intervals): macro F1 alone, and every registry metric the
bootstrap resamples (accuracy, macro F1, top-5 accuracy, ECE, NLL, Brier, and
with a teacher KL, JS and top-1 agreement); they take turns over 11 rounds
and print the best (the usual timing estimate: the run least disturbed by
other work) and the median. "compare" rows are the whole
call (also the per-model summary tables, flips, verdicts, DataFrames).
``--memory`` runs compare in fresh processes at growing resample counts and
prints the peak resident memory each needed beyond its inputs.

NumPy: one shared index draw per batch of resamples; every model's statistics
computed once per resample (not once per pair) from per-example values
(correctness, confidence bin, NLL, Brier) by bincount, macro F1 from
(label, prediction) cell counts; deltas = model - reference. It runs fewer
resamples and is scaled up (it is linear in the resamples).

    python benches/bench_compare.py            # full
    python benches/bench_compare.py --quick    # reduced, for a smoke test
    python benches/bench_compare.py --memory   # peak memory vs n_resamples
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

import kdmetrics

N, K, SIZES = 6430, 113, (20, 40, 53)
TIER_EXAMPLES = (5155, 1065, 210)
N_BINS = 15


def make_models(n_variants: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tiers = np.repeat([0, 1, 2], SIZES)
    w = np.empty(K)
    start = 0
    for size, total in zip(SIZES, TIER_EXAMPLES, strict=True):
        zipf = 1.0 / np.arange(1, size + 1) ** 0.5
        w[start : start + size] = total * zipf / zipf.sum()
        start += size
    y = rng.choice(K, size=N, p=w / w.sum())
    z = 1.6 * rng.normal(size=(N, K)).astype(np.float32) + rng.normal(size=(N, K)).astype(
        np.float32
    )
    z[np.arange(N), y] += 6.4 + 1.5 * rng.normal(size=N).astype(np.float32)
    ref = z.astype(np.float16)
    variants = {}
    for i in range(n_variants):
        if i == 3:
            variants["t1.3"] = (z / 1.3).astype(np.float16)
        else:
            noise = (0.05, 0.2, 0.5)[i] * rng.normal(size=(N, K)).astype(np.float32)
            variants[f"v{i}"] = (z + noise).astype(np.float16)
    return y, tiers, ref, variants


def _log_softmax(z):
    z = z.astype(np.float32)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1, keepdims=True)) + m
    return z - lse


def per_example(y, z):
    """pred, correct, confidence bin, nll, brier (float64)."""
    lp = _log_softmax(z).astype(np.float64)
    p = np.exp(lp)
    pred = z.argmax(axis=1)
    conf = p.max(axis=1)
    correct = pred == y
    nll = -lp[np.arange(len(y)), y]
    brier = (p**2).sum(axis=1) - 2 * p[np.arange(len(y)), y] + 1
    edges = np.linspace(0, 1, N_BINS + 1)
    b = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, N_BINS - 1)
    return pred, correct, conf, b, nll, brier


def numpy_stats(y, tiers, models, n_resamples, seed=0, batch=250):
    """(R, M, 5 metrics, 4 groups) per-resample values of every model."""
    rng = np.random.default_rng(seed)
    n = len(y)
    ex_group = tiers[y]  # 0, 1, 2
    pre = [per_example(y, z) for z in models]
    # macro F1 from (label, pred) cells per model
    cells = []
    for pred, *_ in pre:
        key = y * K + pred
        uniq, inv = np.unique(key, return_inverse=True)
        cy, cp = uniq // K, uniq % K
        cells.append((uniq.size, inv, cy, cp))
    out = np.empty((n_resamples, len(models), 5, 4))
    for lo in range(0, n_resamples, batch):
        b = min(batch, n_resamples - lo)
        idx = rng.integers(0, n, size=(b, n))
        g = ex_group[idx]
        rows = np.arange(b)[:, None]
        flat_g = (rows * 4 + 1 + g).ravel()
        counts = np.bincount(flat_g, minlength=b * 4).reshape(b, 4).astype(np.float64)
        counts[:, 0] = n
        for mi, (_, correct, conf, cbin, nll, brier) in enumerate(pre):
            for si, v in enumerate((correct.astype(np.float64), nll, brier)):
                vi = v[idx]
                s = np.bincount(flat_g, weights=vi.ravel(), minlength=b * 4).reshape(b, 4)
                s[:, 0] = vi.sum(axis=1)
                out[lo : lo + b, mi, (0, 3, 4)[si]] = s / counts
            # ECE per group: (resample, group, bin) sums of count, conf, correct
            kb = (rows * 4 + 1 + g) * N_BINS + cbin[idx]
            kb_all = (rows * 4) * N_BINS + cbin[idx]
            keys = np.concatenate([kb.ravel(), kb_all.ravel()])
            w_conf = np.tile(conf[idx].ravel(), 2)
            w_corr = np.tile(correct[idx].ravel().astype(np.float64), 2)
            size = b * 4 * N_BINS
            c = np.bincount(keys, minlength=size).reshape(b, 4, N_BINS)
            sc = np.bincount(keys, weights=w_conf, minlength=size).reshape(b, 4, N_BINS)
            sa = np.bincount(keys, weights=w_corr, minlength=size).reshape(b, 4, N_BINS)
            tot = c.sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo : lo + b, mi, 2] = np.abs(sa - sc).sum(axis=2) / tot
            # macro F1 per group from cell counts
            n_cells, inv, cy, cp = cells[mi]
            cc = np.bincount((rows * n_cells + inv[idx]).ravel(), minlength=b * n_cells)
            cc = cc.reshape(b, n_cells).astype(np.float64)
            hit = cy == cp
            tp = np.zeros((b, K))
            fp = np.zeros((b, K))
            fn = np.zeros((b, K))
            np.add.at(tp.T, cy[hit], cc[:, hit].T)
            np.add.at(fn.T, cy[~hit], cc[:, ~hit].T)
            np.add.at(fp.T, cp[~hit], cc[:, ~hit].T)
            d = 2 * tp + fp + fn
            with np.errstate(invalid="ignore", divide="ignore"):
                f1 = np.where(d > 0, 2 * tp / d, np.nan)
            out[lo : lo + b, mi, 1, 0] = np.nanmean(f1, axis=1)
            for t in range(3):
                sel = f1[:, tiers == t]
                with np.errstate(invalid="ignore"):
                    ok = ~np.isnan(sel)
                    out[lo : lo + b, mi, 1, 1 + t] = np.where(
                        ok.any(axis=1), np.nansum(sel, axis=1) / np.maximum(ok.sum(axis=1), 1),
                        np.nan,
                    )  # fmt: skip
    return out


def numpy_compare(y, tiers, models, n_resamples):
    stats = numpy_stats(y, tiers, models, n_resamples)
    deltas = stats[:, 1:] - stats[:, :1]
    return np.nanquantile(deltas, [0.025, 0.975], axis=0)


def timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def timed_together(fns, repeat):
    """Best and median wall time of each function, the functions taking turns
    in every round (so a noisy spell on a shared machine hits them alike)."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [(min(ts), float(np.median(ts))) for ts in times]


def engine(y, tiers, models, names, metrics, teacher, R):
    from kdmetrics.stats.bootstrap import bootstrap_models

    return bootstrap_models(
        "bench", y, models, names, tier_of_class=tiers, metrics=metrics,
        reference_logits=teacher, n_resamples=R,
    )  # fmt: skip


def _peak_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def memory_child(r: int, keep: str) -> None:
    """Peak RSS growth of one compare call (5 models), after a warm-up."""
    y, tiers, ref, variants = make_models(4)
    keep_deltas = {"auto": None, "kept": True}[keep]
    kdmetrics.compare(y, ("ref", ref), variants, tier_of_class=tiers, n_resamples=64)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux)
    before = _peak_kib()
    kdmetrics.compare(
        y, ("ref", ref), variants, tier_of_class=tiers, n_resamples=r, keep_deltas=keep_deltas
    )
    print(_peak_kib() - before)


def memory() -> None:
    print("peak RSS growth of compare (5 models, all metrics, split-half scaling), MiB")
    print(f"{'n_resamples':>12} {'default':>10} {'all deltas kept':>16}")
    for r in (2_000, 20_000, 100_000, 300_000):
        row = []
        for keep in ("auto", "kept"):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(r), keep],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row.append(int(out.stdout.split()[-1]) / 1024)
        print(f"{r:>12,d} {row[0]:>10.1f} {row[1]:>16.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1,000 resamples, one repeat")
    ap.add_argument("--memory", action="store_true", help="peak memory vs n_resamples")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    if args.memory:
        memory()
        return
    R = 1_000 if args.quick else 10_000
    r_np = 200 if args.quick else 1_000
    repeat = 1 if args.quick else 3
    y, tiers, ref, variants = make_models(4)
    load = os.getloadavg()
    print(
        f"workload: N={N} K={K} float16, tiers {SIZES}, {R} resamples, groups all/head/mid/tail; "
        f"threads={kdmetrics.get_num_threads()} (cpus {os.cpu_count()}); "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (a shared machine: timings "
        "are noisy)"
    )

    def ours(m, ts):
        v = dict(list(variants.items())[: m - 1])
        return kdmetrics.compare(
            y, ("ref", ref), v, tier_of_class=tiers, n_resamples=R, temperature_scaling=ts
        )

    ours(2, False)  # warm-up
    from kdmetrics.comparison.engine import bootstrap_metrics

    models5 = [ref, *variants.values()]
    names5 = ["ref", *variants]
    # A teacher for the fidelity metrics: the clean logits a little sharper.
    teacher = (ref.astype(np.float32) * 1.1).astype(np.float16)
    every = bootstrap_metrics()
    # The engine rows carry the issue's targets: more rounds, best and median.
    (e_f1, m_f1), (e2, m2), (e5, m5) = timed_together(
        [
            lambda: engine(y, tiers, models5[:2], names5[:2], "macro_f1", None, R),
            lambda: engine(y, tiers, models5[:2], names5[:2], every, teacher, R),
            lambda: engine(y, tiers, models5, names5, every, teacher, R),
        ],
        3 if args.quick else 11,
    )
    rows = []
    t2, _ = timed(lambda: ours(2, False), repeat)
    t5, _ = timed(lambda: ours(5, False), repeat)
    t2s, _ = timed(lambda: ours(2, True), repeat)
    t5s, _ = timed(lambda: ours(5, True), repeat)
    tpb, _ = timed(
        lambda: kdmetrics.paired_bootstrap(
            y, ref, variants["v0"], tier_of_class=tiers, n_resamples=R
        ),
        repeat,
    )
    tf1, _ = timed(
        lambda: kdmetrics.compare(y, ("ref", ref), {"v0": variants["v0"]}, tier_of_class=tiers,
                                  n_resamples=R, metrics=("macro_f1",), temperature_scaling=False),
        repeat,
    )  # fmt: skip
    n2, _ = timed(lambda: numpy_compare(y, tiers, models5[:2], r_np))
    n5, _ = timed(lambda: numpy_compare(y, tiers, models5, r_np))
    n2 *= R / r_np
    n5 *= R / r_np
    rows = [
        ("engine 2 models, per-tier macro F1", e_f1, f"median {m_f1 * 1e3:.1f}; target <= 60 ms"),
        (
            f"engine 2 models, all {len(every)} registry metrics",
            e2,
            f"median {m2 * 1e3:.1f}; target <= 150 ms",
        ),
        (
            f"engine 5 models, all {len(every)} registry metrics",
            e5,
            f"median {m5 * 1e3:.1f}; {e5 / e2:.2f}x the 2-model time (target <= 2.5x)",
        ),
        ("paired_bootstrap, 1 pair, default metrics", tpb, ""),
        ("compare 2 models, macro F1 only, no scaling", tf1, ""),
        ("compare 2 models, no temperature scaling", t2, ""),
        ("compare 5 models, no temperature scaling", t5, f"{t5 / t2:.2f}x the 2-model time"),
        ("compare 2 models, with split-half scaling", t2s, ""),
        ("compare 5 models, with split-half scaling", t5s, f"{t5s / t2s:.2f}x the 2-model time"),
        ("NumPy 2 models (shared draw)", n2, f"ran {r_np} resamples, x{R // r_np}"),
        ("NumPy 5 models (shared draw, each model once)", n5, f"ran {r_np}, x{R // r_np}"),
    ]
    print()
    for name, t, note in rows:
        print(f"{name:<50s} {t * 1e3:10.1f} ms   {note}")
    # Same statistics: NumPy's intervals (its own draws) against compare's.
    res = ours(5, False)
    q = numpy_compare(y, tiers, models5, R)
    d = res.deltas
    print("\ncheck, 95 % interval of v0 - ref (compare vs NumPy, different draws):")
    for mi, metric in enumerate(("accuracy", "macro_f1", "ece", "nll", "brier")):
        for gi, group in enumerate(("all", "tail")):
            r = d[(d.variant == "v0") & (d.metric == metric) & (d.group == group)].iloc[0]
            gidx = (0, 3)[gi]
            print(
                f"  {metric:>8} {group:>4}: [{r.ci_low:+.5f}, {r.ci_high:+.5f}]  NumPy "
                f"[{q[0, 0, mi, gidx]:+.5f}, {q[1, 0, mi, gidx]:+.5f}]"
            )
    print()
    print(f"speed-up vs NumPy, 2 models (no scaling): {n2 / t2:6.1f}x")
    print(f"speed-up vs NumPy, 5 models (no scaling): {n5 / t5:6.1f}x")


if __name__ == "__main__":
    main()
