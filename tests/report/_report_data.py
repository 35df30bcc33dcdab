"""Tiny aligned prediction files for the report tests (N=600, K=12)."""

from __future__ import annotations

import numpy as np

from kdmetrics import save_predictions

N, K = 600, 12
COUNTS = np.array([400, 300, 250, 200, 100, 80, 60, 40, 20, 10, 5, 3])
TIER_SIZES = ("--tier-sizes", "3", "4")


def labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.choice(K, N, p=COUNTS / COUNTS.sum())


def logits(y: np.ndarray, signal: float, seed: int) -> np.ndarray:
    """Noise plus ``signal`` on the true class: higher signal, better model."""
    z = np.random.default_rng(seed).normal(0.0, 1.0, (y.size, K))
    z[np.arange(y.size), y] += signal
    return z.astype(np.float32)


def write_files(d, *, seeds: int = 1, grid: bool = False) -> dict[str, list[str]]:
    """Teacher, vanilla and distilled files (``seeds`` of each) in folder ``d``."""
    y = labels()
    ids = np.array([f"ex{i}" for i in range(N)])
    paths: dict[str, list[str]] = {"teacher": [str(d / "t.npz")], "vanilla": [], "distilled": []}
    save_predictions(
        paths["teacher"][0], logits(y, 3.0, 1), y, ids=ids, train_counts=COUNTS, model="teacher"
    )
    for s in range(seeds):
        for name, signal, base in (("vanilla", 1.5, 10), ("distilled", 2.0, 20)):
            p = str(d / f"{name}{s}.npz")
            save_predictions(p, logits(y, signal, base + s), y, ids=ids, model=name, seed=s)
            paths[name].append(p)
    if grid:
        paths["grid"] = []
        for i, t in enumerate((2.0, 4.0)):
            p = str(d / f"grid{i}.npz")
            save_predictions(
                p, logits(y, 1.8, 30 + i), y, ids=ids, model=f"kd-T{t:g}", T=t, alpha=0.5
            )
            paths["grid"].append(p)
    return paths


def report_args(paths: dict[str, list[str]], out) -> list[str]:
    args = ["report", "--teacher", paths["teacher"][0]]
    for name in ("vanilla", "distilled"):
        for p in paths[name]:
            args += [f"--{name}", p]
    if paths.get("grid"):
        args += ["--grid", *paths["grid"]]
    return [*args, "--out", str(out), "--n-resamples", "200", *TIER_SIZES, "--quiet"]
