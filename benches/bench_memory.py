"""Peak extra memory of ``probs=True`` (probabilities in), before and after.

    python benches/bench_memory.py              # N = 200,000 x K = 113, float16
    python benches/bench_memory.py --n 500000 --dtype float32

Each measurement runs in a fresh subprocess: it builds the input, warms the
call up on a few rows, resets the kernel's peak-RSS mark (Linux
``/proc/self/clear_refs``), then records the peak resident set size during one
call (``VmHWM``, so Rust allocations count too) minus the resident size before
it, and the peak of NumPy's traced allocations (``tracemalloc``). Both
are printed as a multiple of the input's size (for ``kl_divergence``, the two
inputs together).

"before" is the old code path, reproduced inline below: validate the whole
array, take ``np.log`` of it in float64, hand the full copy to the kernel.
"after" is the library as it is: validation and log one block of rows at a
time. "logits" is the plain logits path for comparison (its extra memory is
the per-example results, which every path allocates).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import kdmetrics as km  # noqa: E402
from kdmetrics import _kernels  # noqa: E402
from kdmetrics.metrics.calibration import bin_sums, ece_from_sums  # noqa: E402

CASES = ("nll", "ece", "kl_divergence")
IMPLS = ("before", "after", "logits")
K = 113


def old_log_of_probs(probs: np.ndarray) -> np.ndarray:
    """The former ``_validation.log_of_probs``: whole-array checks, float64 log."""
    bad = ~np.isfinite(probs)
    if bad.any():
        raise ValueError("NaN")
    neg = probs < 0
    if neg.any():
        raise ValueError("negative")
    totals = probs.sum(axis=1, dtype=np.float64)
    if np.flatnonzero(np.abs(totals - 1.0) > 1e-2).size:
        raise ValueError("sum")
    with np.errstate(divide="ignore"):
        return np.log(probs, dtype=np.float64)


def old_call(case: str, y: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    if case == "kl_divergence":
        lp, lq = old_log_of_probs(p), old_log_of_probs(q)
        kl, _ = _kernels.divergences(lp, lq, 1.0, p_log_probs=True, q_log_probs=True)
        return float(kl.mean())
    lp = old_log_of_probs(p)
    pred, conf, nll, _ = _kernels.example_stats(
        lp, y if case == "nll" else None, 1.0, log_probs=True
    )
    if case == "nll":
        return float(nll.mean())
    count, sum_conf, sum_ok, _, _ = bin_sums("ece", conf, pred == y, 15, "uniform", True)
    return ece_from_sums(count, sum_conf, sum_ok)


def new_call(case: str, y: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    if case == "kl_divergence":
        return km.kl_divergence(p, q, probs=True)
    return getattr(km, case)(y, p, probs=True)


def logits_call(case: str, y: np.ndarray, z: np.ndarray, zq: np.ndarray) -> float:
    if case == "kl_divergence":
        return km.kl_divergence(z, zq)
    return getattr(km, case)(y, z)


def make(n: int, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    out = []
    for scale in (1.0, 0.7):
        z = (rng.normal(size=(n, K)) * 2).astype(np.float32)
        z[np.arange(n), y] += 3
        z *= scale
        e = np.exp(z - z.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        out.append((z.astype(dtype), e.astype(dtype)))
        del e
    (z, p), (zq, q) = out
    return y, z, zq, p, q


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(case: str, impl: str, n: int, dtype: str) -> dict:
    y, z, zq, p, q = make(n, dtype)
    args = (z, zq) if impl == "logits" else (p, q)
    fn = {"before": old_call, "after": new_call, "logits": logits_call}[impl]
    fn(case, y[:64], args[0][:64], args[1][:64])  # warm up: imports, thread pool
    input_bytes = args[0].nbytes * (2 if case == "kl_divergence" else 1)
    del z, zq, p, q
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak RSS) to the current RSS
    rss_before = _status_kb("VmRSS") * 1024
    tracemalloc.start()
    value = fn(case, y, *args)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = _status_kb("VmHWM") * 1024
    return {
        "value": value,
        "input_mb": input_bytes / 2**20,
        "rss_extra": (rss_peak - rss_before) / input_bytes,
        "traced_extra": traced_peak / input_bytes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dtype", default="float16", choices=("float16", "float32", "float64"))
    ap.add_argument("--child", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], a.n, a.dtype)))
        return
    print(f"N = {a.n:,} x K = {K}, {a.dtype}; extra memory as a multiple of the input size")
    print(
        f"{'function':<15}{'path':<8}{'input MB':>10}{'RSS extra':>11}{'traced extra':>14}  value"
    )
    for case in CASES:
        values = {}
        for impl in IMPLS:
            cmd = [
                sys.executable,
                __file__,
                "--n",
                str(a.n),
                "--dtype",
                a.dtype,
                "--child",
                case,
                impl,
            ]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            values[impl] = r["value"]
            print(
                f"{case:<15}{impl:<8}{r['input_mb']:>10.1f}{r['rss_extra']:>10.2f}x"
                f"{r['traced_extra']:>13.2f}x  {r['value']:.12g}"
            )
        if values["before"] != values["after"]:
            print(f"  note: before and after differ: {values['before']!r} vs {values['after']!r}")


if __name__ == "__main__":
    main()
