"""Seed-level comparison of two training recipes (SPEC §3): unpaired, a few seeds each."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics._validation import check_ci, check_n_resamples


@dataclass(frozen=True)
class SeedComparison:
    """Result of :func:`compare_seeds`.

    ``table``: one row per seed with columns ``recipe`` ("a"/"b"), ``seed``
    and ``score``. ``delta`` = mean(b) - mean(a); ``ci_low``/``ci_high``: the
    percentile bootstrap interval of ``delta`` at level ``ci`` (each recipe's
    seeds resampled on their own, ``n_resamples`` times); ``p_value``: the
    two-sided permutation p-value of ``|delta|``, ``p_method`` "exact" (all
    ``n_permutations`` splits enumerated) or "monte_carlo" (``n_permutations``
    random splits, p = (1 + hits) / (1 + n_permutations)); ``cohens_d`` =
    delta / pooled SD with per-recipe SDs of ``ddof`` = 1.
    """

    table: pd.DataFrame
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    delta: float
    ci: float
    ci_low: float
    ci_high: float
    p_value: float
    p_method: str
    n_permutations: int
    sd_a: float
    sd_b: float
    pooled_sd: float
    cohens_d: float
    ddof: int = 1


def _scores(func: str, scores: Any, name: str) -> tuple[np.ndarray, list[Any]]:
    if isinstance(scores, dict):
        seeds, values = list(scores.keys()), list(scores.values())
    elif isinstance(scores, pd.Series):
        seeds, values = scores.index.tolist(), scores.to_numpy()
    else:
        values = scores
        seeds = None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{func}: {name} must be numbers, got {scores!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{func}: {name} must be 1-D (one score per seed), got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{func}: {name} needs at least 2 seeds, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{func}: {name} has a NaN or infinite score")
    return arr, seeds if seeds is not None else list(range(arr.shape[0]))


def compare_seeds(
    scores_a: Any,
    scores_b: Any,
    *,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    max_exact: int = 20_000,
) -> SeedComparison:
    """Compare per-seed scores of recipes A and B (unpaired): B - A.

    ``scores_a``/``scores_b``: 1-D array-likes (seeds numbered 0, 1, ...) or
    dicts / Series mapping seed -> score; at least 2 seeds each. The
    permutation test is exact when ``C(n_a + n_b, n_a) <= max_exact``, else
    Monte Carlo with ``n_resamples`` random splits; everything random draws
    from ``numpy.random.default_rng(seed)``. See :class:`SeedComparison`.
    """
    func = "compare_seeds"
    a, seeds_a = _scores(func, scores_a, "scores_a")
    b, seeds_b = _scores(func, scores_b, "scores_b")
    check_n_resamples(func, n_resamples)
    level = check_ci(func, ci)
    rng = np.random.default_rng(seed)
    na, nb = a.shape[0], b.shape[0]
    delta = float(b.mean() - a.mean())

    # Bootstrap: each recipe's seeds resampled on their own.
    boot_a = a[rng.integers(0, na, size=(n_resamples, na))].mean(axis=1)
    boot_b = b[rng.integers(0, nb, size=(n_resamples, nb))].mean(axis=1)
    lo, hi = np.quantile(boot_b - boot_a, [(1 - level) / 2, (1 + level) / 2])

    # Permutation test of |mean(b) - mean(a)| over splits of the pooled scores.
    pooled = np.concatenate([a, b])
    total = pooled.sum()
    # Ties within rounding of the observed statistic count as "as extreme".
    observed = abs(delta) * (1 - 1e-12)
    n_splits = math.comb(na + nb, na)
    if n_splits <= max_exact:
        idx = np.array(list(itertools.combinations(range(na + nb), na)), dtype=np.int64)
        sum_a = pooled[idx].sum(axis=1)
        diffs = (total - sum_a) / nb - sum_a / na
        p_value = float(np.mean(np.abs(diffs) >= observed))
        p_method, n_perm = "exact", n_splits
    else:
        perm = rng.permuted(np.tile(pooled, (n_resamples, 1)), axis=1)
        sum_a = perm[:, :na].sum(axis=1)
        diffs = (total - sum_a) / nb - sum_a / na
        p_value = float((1 + np.count_nonzero(np.abs(diffs) >= observed)) / (1 + n_resamples))
        p_method, n_perm = "monte_carlo", int(n_resamples)

    sd_a, sd_b = float(a.std(ddof=1)), float(b.std(ddof=1))
    pooled_sd = math.sqrt(((na - 1) * sd_a**2 + (nb - 1) * sd_b**2) / (na + nb - 2))
    cohens_d = delta / pooled_sd if pooled_sd > 0 else float("nan")
    table = pd.DataFrame(
        {
            "recipe": ["a"] * na + ["b"] * nb,
            "seed": list(seeds_a) + list(seeds_b),
            "score": np.concatenate([a, b]),
        }
    )
    return SeedComparison(
        table=table,
        n_a=na,
        n_b=nb,
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        delta=delta,
        ci=level,
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=p_value,
        p_method=p_method,
        n_permutations=n_perm,
        sd_a=sd_a,
        sd_b=sd_b,
        pooled_sd=pooled_sd,
        cohens_d=float(cohens_d),
    )
