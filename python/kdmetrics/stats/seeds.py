"""Seed-level comparison of two training recipes: a few seeds each.

With 3 seeds per recipe a bootstrap of the difference of means draws from
only 3^3 x 3^3 = 729 outcomes and uses the ddof-0 standard error; its nominal
95 % interval covers about 0.80 (measured by ``benches/coverage.py --seeds``,
see docs/intervals.md). The default interval here is therefore Welch's t
interval (unpaired) or the paired t interval (arms paired by seed), whose
coverage the same harness measures at nominal; the bootstrap stays available
as ``interval="bootstrap"``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics._validation import check_ci, check_int, check_n_resamples
from kdmetrics.errors import InvalidArgumentError, NonFiniteError, ShapeError

INTERVALS: tuple[str, ...] = ("t", "bootstrap")
# The largest number of arrangements enumerated exactly, whatever max_exact
# asks for: checked before anything is allocated (more would take minutes and
# gigabytes; a Monte Carlo test with many draws is as good).
MAX_EXACT_LIMIT = 5_000_000
_CHUNK = 65_536


@dataclass(frozen=True)
class SeedComparison:
    """Result of :func:`compare_seeds` (B - A).

    ``table``: one row per seed, columns ``recipe`` ("a"/"b"), ``seed``,
    ``score``. ``delta`` = mean(b) - mean(a) (paired: the mean of the per-seed
    differences, the same number). ``ci_low``/``ci_high``: the interval named by
    ``ci_method``: "welch_t" (unpaired, Welch-Satterthwaite ``df``),
    "paired_t" (``df`` = n - 1) or "bootstrap_percentile". ``p_value``: the
    two-sided permutation p-value of ``|delta|`` (unpaired: splits of the
    pooled scores; paired: sign flips of the per-seed differences),
    ``p_method`` "exact" (all ``n_permutations`` arrangements) or
    "monte_carlo" (``n_permutations`` random ones, p = (1 + hits) / (1 +
    n_permutations)); ``p_min``: the smallest p the test can give with these
    sample sizes (exact: the share of arrangements as extreme as the most
    extreme one, 2 / C(6, 3) = 0.1 for 3 vs 3 seeds; Monte Carlo:
    1 / (1 + n_permutations)): a p at ``p_min`` is as strong as this design
    allows. ``cohens_d`` = delta / ``pooled_sd``, the pooled per-recipe SD
    (paired: the SD of the per-seed differences, "d_z"), SDs with ``ddof`` = 1
    (with ddof 0 the 3 + 3 value would be sqrt(3/2) times larger); ``hedges_g`` = ``cohens_d``
    times the exact small-sample correction ``J(df) = Gamma(df/2) /
    (sqrt(df/2) Gamma((df-1)/2))``, df = n_a + n_b - 2 (paired: n - 1).
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
    ci_method: str
    df: float
    p_value: float
    p_method: str
    n_permutations: int
    p_min: float
    paired: bool
    sd_a: float
    sd_b: float
    pooled_sd: float
    cohens_d: float
    hedges_g: float
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
        raise InvalidArgumentError(f"{func}: {name} must be numbers, got {scores!r}") from None
    if arr.ndim != 1:
        raise ShapeError(f"{func}: {name} must be 1-D (one score per seed), got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ShapeError(f"{func}: {name} needs at least 2 seeds, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise NonFiniteError(f"{func}: {name} has a NaN or infinite score (at [{i}])", i, None)
    return arr, seeds if seeds is not None else list(range(arr.shape[0]))


# --- Student t quantile without scipy (a runtime dependency kdmetrics avoids).


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
    lbt += b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student t distribution function with ``df`` > 0 degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """Student t quantile (bisection on :func:`t_cdf`, to ~1e-12)."""
    if not 0.0 < q < 1.0:
        raise InvalidArgumentError(f"t_ppf: q must be in (0, 1), got {q!r}")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def hedges_correction(df: float) -> float:
    """Exact small-sample correction J(df) of Cohen's d (Hedges 1981)."""
    if df <= 1:
        return float("nan")
    return math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)


# --- Permutation tests, enumerated in chunks (bounded memory).


def _exact_unpaired(pooled: np.ndarray, na: int, observed: float) -> tuple[int, int, int]:
    """(as extreme as observed, as extreme as the most extreme, total) over all
    splits of ``pooled`` into na + nb."""
    n, total = pooled.shape[0], pooled.sum()
    nb = n - na
    diffs = []
    combos = itertools.combinations(range(n), na)
    while True:
        block = np.array(list(itertools.islice(combos, _CHUNK)), dtype=np.int64)
        if block.size == 0:
            break
        sum_a = pooled[block].sum(axis=1)
        diffs.append(np.abs((total - sum_a) / nb - sum_a / na))
    d = np.concatenate(diffs)
    top = d.max() * (1 - 1e-12)
    return int(np.count_nonzero(d >= observed)), int(np.count_nonzero(d >= top)), d.size


def _exact_signs(diff: np.ndarray, observed: float) -> tuple[int, int, int]:
    n = diff.shape[0]
    means = []
    for start in range(0, 2**n, _CHUNK):
        codes = np.arange(start, min(start + _CHUNK, 2**n), dtype=np.int64)
        signs = 1.0 - 2.0 * ((codes[:, None] >> np.arange(n)) & 1)
        means.append(np.abs(signs @ diff) / n)
    d = np.concatenate(means)
    top = d.max() * (1 - 1e-12)
    return int(np.count_nonzero(d >= observed)), int(np.count_nonzero(d >= top)), d.size


def compare_seeds(
    scores_a: Any,
    scores_b: Any,
    *,
    paired: bool = False,
    interval: str = "t",
    n_resamples: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    max_exact: int = 20_000,
) -> SeedComparison:
    """Compare per-seed scores of recipes A and B: B - A.

    ``scores_a``/``scores_b``: 1-D array-likes (seeds numbered 0, 1, ...) or
    dicts / Series mapping seed -> score; at least 2 seeds each.

    ``paired=False`` (default): the recipes' seeds are independent runs;
    interval: Welch's t (unequal variances, Welch-Satterthwaite df); test:
    permutation of the pooled scores. ``paired=True``: seed s of A and seed s
    of B share everything but the recipe (as the training loop's arms do);
    dicts / Series are paired by seed key (the same keys on both sides),
    arrays by position; interval: paired t on the per-seed differences; test:
    sign-flip permutation of the differences. ``interval="bootstrap"`` gives
    the percentile bootstrap instead (each recipe's seeds resampled on their
    own; paired: the differences resampled), which under-covers with few
    seeds (0.80 with 3 + 3).

    The permutation test is exact when the arrangements number at most
    ``max_exact`` (itself at most :data:`MAX_EXACT_LIMIT`, checked before
    anything is enumerated), else Monte Carlo with ``n_resamples`` random
    arrangements. Everything random draws from
    ``numpy.random.default_rng(seed)``. See :class:`SeedComparison`.
    """
    func = "compare_seeds"
    a, seeds_a = _scores(func, scores_a, "scores_a")
    b, seeds_b = _scores(func, scores_b, "scores_b")
    n_resamples = check_n_resamples(func, n_resamples)
    level = check_ci(func, ci)
    seed = check_int(func, "seed", seed, 0)
    max_exact = check_int(func, "max_exact", max_exact, 0, MAX_EXACT_LIMIT)
    if interval not in INTERVALS:
        raise InvalidArgumentError(f"{func}: interval must be one of {INTERVALS}, got {interval!r}")
    if not isinstance(paired, bool):
        raise InvalidArgumentError(f"{func}: paired must be True or False, got {paired!r}")
    if paired:
        if isinstance(scores_a, dict | pd.Series) and isinstance(scores_b, dict | pd.Series):
            if set(seeds_a) != set(seeds_b) or len(seeds_a) != len(seeds_b):
                raise InvalidArgumentError(
                    f"{func}: paired=True needs the same seeds on both sides, got "
                    f"{sorted(map(str, seeds_a))} and {sorted(map(str, seeds_b))}"
                )
            pos = {s: i for i, s in enumerate(seeds_b)}
            b = b[[pos[s] for s in seeds_a]]
            seeds_b = list(seeds_a)
        elif a.shape[0] != b.shape[0]:
            raise ShapeError(
                f"{func}: paired=True needs as many seeds in scores_b as in scores_a, "
                f"got {b.shape[0]} and {a.shape[0]}"
            )
    rng = np.random.default_rng(seed)
    na, nb = a.shape[0], b.shape[0]
    delta = float(b.mean() - a.mean())
    sd_a, sd_b = float(a.std(ddof=1)), float(b.std(ddof=1))
    alpha = (1 - level) / 2
    # Ties within rounding of the observed statistic count as "as extreme".
    observed = abs(delta) * (1 - 1e-12)

    if paired:
        diff = b - a
        n = diff.shape[0]
        df = float(n - 1)
        sd_diff = float(diff.std(ddof=1))
        se = sd_diff / math.sqrt(n)
        scale = sd_diff
        n_arr = 2**n if n < 63 else max_exact + 1
        if n_arr <= max_exact:
            hits, top, n_perm = _exact_signs(diff, observed)
            p_value, p_min, p_method = hits / n_perm, top / n_perm, "exact"
        else:
            signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
            stat = np.abs(signs @ diff) / n
            p_value = (1 + np.count_nonzero(stat >= observed)) / (1 + n_resamples)
            p_min, p_method, n_perm = 1 / (1 + n_resamples), "monte_carlo", n_resamples
        if interval == "bootstrap":
            boot = diff[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
        ci_method = "paired_t"
    else:
        va, vb = sd_a**2 / na, sd_b**2 / nb
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else float("nan")
        pooled = np.concatenate([a, b])
        n_arr = math.comb(na + nb, na)
        if n_arr <= max_exact:
            hits, top, n_perm = _exact_unpaired(pooled, na, observed)
            p_value, p_min, p_method = hits / n_perm, top / n_perm, "exact"
        else:
            perm = rng.permuted(np.tile(pooled, (n_resamples, 1)), axis=1)
            sum_a = perm[:, :na].sum(axis=1)
            stat = np.abs((pooled.sum() - sum_a) / nb - sum_a / na)
            p_value = (1 + np.count_nonzero(stat >= observed)) / (1 + n_resamples)
            p_min, p_method, n_perm = 1 / (1 + n_resamples), "monte_carlo", n_resamples
        if interval == "bootstrap":
            boot_a = a[rng.integers(0, na, size=(n_resamples, na))].mean(axis=1)
            boot_b = b[rng.integers(0, nb, size=(n_resamples, nb))].mean(axis=1)
            boot = boot_b - boot_a
        ci_method = "welch_t"
        scale = math.sqrt(((na - 1) * sd_a**2 + (nb - 1) * sd_b**2) / (na + nb - 2))

    if interval == "bootstrap":
        lo, hi = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
        ci_method = "bootstrap_percentile"
    elif se > 0:
        half = t_ppf(1 - alpha, df) * se
        lo, hi = delta - half, delta + half
    else:
        lo = hi = delta
    d_df = float(na - 1) if paired else float(na + nb - 2)
    cohens_d = delta / scale if scale > 0 else float("nan")
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
        ci_method=ci_method,
        df=float(df),
        p_value=float(p_value),
        p_method=p_method,
        n_permutations=int(n_perm),
        p_min=float(p_min),
        paired=paired,
        sd_a=sd_a,
        sd_b=sd_b,
        pooled_sd=float(scale),
        cohens_d=float(cohens_d),
        hedges_g=float(cohens_d * hedges_correction(d_df)),
    )
