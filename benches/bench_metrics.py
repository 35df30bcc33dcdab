"""kdmetrics vs the best vectorized NumPy/SciPy on the same data, in one run.

    python benches/bench_metrics.py            # N = 6,430 and 79,278; float16 and float32
    python benches/bench_metrics.py --quick    # fewer repeats

For each metric it prints the NumPy/SciPy time, ours, and the ratio
(NumPy time / ours; > 1 means kdmetrics is faster). The NumPy way reads
float16 through a float32 copy, as a user would (NumPy has no fast float16
arithmetic). Best of several repeats, wall clock, all cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import scipy.special as sp

sys.path.insert(0, os.path.dirname(__file__))
import kdmetrics as km  # noqa: E402

from workload import N_TRAIN, N_VAL, workload  # noqa: E402


def as32(z: np.ndarray) -> np.ndarray:
    return z if z.dtype != np.float16 else z.astype(np.float32)


def np_nll(y, z):
    z = as32(z)
    return float(np.mean(sp.logsumexp(z, axis=1) - z[np.arange(len(y)), y], dtype=np.float64))


def np_softmax(z):
    z = as32(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_ece(y, z, n_bins=15):
    z = as32(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    conf = 1.0 / e.sum(axis=1, dtype=np.float64)
    correct = np.argmax(z, axis=1) == y
    b = np.clip(
        np.searchsorted(np.linspace(0, 1, n_bins + 1), conf, side="left") - 1, 0, n_bins - 1
    )
    count = np.bincount(b, minlength=n_bins)
    gap = np.abs(np.bincount(b, correct, n_bins) - np.bincount(b, conf, n_bins))
    return float(gap.sum() / count.sum())


def np_brier(y, z):
    p = np_softmax(z)
    n = len(y)
    return float(np.mean((p * p).sum(axis=1, dtype=np.float64) - 2 * p[np.arange(n), y] + 1))


def np_js(p_logits, q_logits):
    p, q = np_softmax(p_logits), np_softmax(q_logits)
    m = 0.5 * (p + q)
    return float(np.mean(0.5 * sp.rel_entr(p, m).sum(1) + 0.5 * sp.rel_entr(q, m).sum(1)))


def np_f1_tiers(y, z, tiers):
    pred = np.argmax(as32(z), axis=1)
    k = z.shape[1]
    tp = np.bincount(y[pred == y], minlength=k)
    fp = np.bincount(pred, minlength=k) - tp
    fn = np.bincount(y, minlength=k) - tp
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
    return [np.nanmean(f1)] + [np.nanmean(f1[tiers == t]) for t in range(3)]


def km_f1_tiers(y, z, tiers):
    f1 = km.f1_per_class(y, z)
    return [np.nanmean(f1)] + [np.nanmean(f1[tiers == t]) for t in range(3)]


def np_top5(y, z, k=5):
    """Rank of the label with the argmax tie rule, by comparisons (no sort)."""
    z = as32(z)
    zt = z[np.arange(len(y)), y][:, None]
    higher = np.count_nonzero(z > zt, axis=1)
    tied_before = np.count_nonzero((z == zt) & (np.arange(z.shape[1]) < y[:, None]), axis=1)
    return float(np.mean(higher + tied_before < k))


def km_top5(y, z):
    return km.top_k_accuracy(y, z, k=5)


def best_time(fn, data, repeats):
    fn(*data)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*data)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    print(f"kdmetrics {km.__version__}, {km.get_num_threads()} threads, numpy {np.__version__}")
    print(f"{'N':>7} {'dtype':>8} {'metric':>12} {'numpy ms':>9} {'ours ms':>8} {'ratio':>7}")
    for n in (N_VAL, N_TRAIN):
        for dtype in (np.float32, np.float16):
            y, t, s, counts = workload(n, dtype)
            tiers = km.tiers_from_counts(counts)
            cases = [
                ("nll", np_nll, km.nll, (y, s)),
                ("ece", np_ece, km.ece, (y, s)),
                ("brier", np_brier, km.brier, (y, s)),
                ("js", np_js, km.js_divergence, (t, s)),
                ("f1+tiers", np_f1_tiers, km_f1_tiers, (y, s, tiers)),
                ("top-5", np_top5, km_top5, (y, s)),
            ]
            for name, ref_fn, our_fn, data in cases:
                np.testing.assert_allclose(our_fn(*data), ref_fn(*data), rtol=2e-4, atol=2e-5)
                t_ref = best_time(ref_fn, data, repeats)
                t_our = best_time(our_fn, data, repeats)
                print(
                    f"{n:>7} {np.dtype(dtype).name:>8} {name:>12} {t_ref * 1e3:>9.2f} "
                    f"{t_our * 1e3:>8.2f} {t_ref / t_our:>6.1f}x"
                )


if __name__ == "__main__":
    main()
