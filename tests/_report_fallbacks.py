"""TEST-ONLY stand-ins for ``kdmetrics.paired_bootstrap`` and
``kdmetrics.compare_seeds`` while they are written on another branch.

``install()`` puts them on the ``kdmetrics`` module only when the real ones
are missing, so once the real functions are merged every test runs against
them. Slow (pure NumPy, one ``summary`` per resample): for tiny data only.
Delete this file after the merge.
"""

from __future__ import annotations

from types import SimpleNamespace

import kdmetrics
import numpy as np
import pandas as pd
from kdmetrics.summary import summary

COLUMNS = [
    "metric",
    "group",
    "a",
    "b",
    "delta",
    "median_delta",
    "ci_low",
    "ci_high",
    "p_delta_le_0",
    "n",
    "flips_a_only",
    "flips_b_only",
]


def paired_bootstrap(
    labels,
    logits_a,
    logits_b,
    *,
    tier_of_class=None,
    metrics=("macro_f1", "accuracy", "ece", "nll", "brier"),
    reference_logits=None,
    n_resamples=10_000,
    ci=0.95,
    method="percentile",
    seed=0,
    return_deltas=False,
):
    assert method == "percentile" and not return_deltas
    y = np.asarray(labels)
    metrics = list(metrics) + (["kl", "js"] if reference_logits is not None else [])

    def both(idx):
        ref = None if reference_logits is None else reference_logits[idx]
        sa = summary(y[idx], logits_a[idx], tier_of_class=tier_of_class, reference_logits=ref)
        sb = summary(y[idx], logits_b[idx], tier_of_class=tier_of_class, reference_logits=ref)
        return sa, sb

    n = y.shape[0]
    sa, sb = both(np.arange(n))
    deltas = np.empty((n_resamples, len(sa.index), len(metrics)))
    for i in range(n_resamples):
        idx = np.random.default_rng([seed, i]).integers(0, n, n)
        ra, rb = both(idx)
        deltas[i] = (rb[metrics] - ra[metrics]).to_numpy()
    ok_a = np.asarray(logits_a).argmax(1) == y
    ok_b = np.asarray(logits_b).argmax(1) == y
    if tier_of_class is not None:
        ex_group = np.asarray(tier_of_class)[y] + 1
    else:
        ex_group = np.zeros(n, dtype=int)
    rows = []
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    for gi, group in enumerate(sa.index):
        sel = np.ones(n, bool) if gi == 0 else ex_group == gi
        for mi, m in enumerate(metrics):
            d = deltas[:, gi, mi]
            d = d[~np.isnan(d)]
            flips = m == "accuracy"
            rows.append(
                {
                    "metric": m,
                    "group": group,
                    "a": sa.loc[group, m],
                    "b": sb.loc[group, m],
                    "delta": sb.loc[group, m] - sa.loc[group, m],
                    "median_delta": float(np.median(d)) if d.size else np.nan,
                    "ci_low": float(np.quantile(d, lo_q)) if d.size else np.nan,
                    "ci_high": float(np.quantile(d, hi_q)) if d.size else np.nan,
                    "p_delta_le_0": float((d <= 0).mean()) if d.size else np.nan,
                    "n": int(sel.sum()),
                    "flips_a_only": int((ok_a & ~ok_b & sel).sum()) if flips else np.nan,
                    "flips_b_only": int((~ok_a & ok_b & sel).sum()) if flips else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def compare_seeds(scores_a, scores_b, *, n_resamples=10_000, ci=0.95, seed=0):
    a, b = np.asarray(scores_a, float), np.asarray(scores_b, float)
    rng = np.random.default_rng(seed)
    boot = np.array(
        [rng.choice(b, b.size).mean() - rng.choice(a, a.size).mean() for _ in range(n_resamples)]
    )
    diff = b.mean() - a.mean()
    pooled = np.sqrt(
        ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    )
    allv = np.concatenate([a, b])
    perm = [rng.permutation(allv) for _ in range(500)]
    p = np.mean([abs(q[a.size :].mean() - q[: a.size].mean()) >= abs(diff) - 1e-12 for q in perm])
    table = pd.DataFrame({"recipe": ["a"] * a.size + ["b"] * b.size, "score": allv})
    return SimpleNamespace(
        table=table,
        difference=diff,
        ci_low=float(np.quantile(boot, (1 - ci) / 2)),
        ci_high=float(np.quantile(boot, 1 - (1 - ci) / 2)),
        p_value=float(p),
        cohens_d=float(diff / pooled) if pooled > 0 else np.nan,
    )


def install() -> None:
    """Adds the stand-ins to ``kdmetrics`` where the real functions are missing."""
    for name, fn in (("paired_bootstrap", paired_bootstrap), ("compare_seeds", compare_seeds)):
        if name not in vars(kdmetrics):
            setattr(kdmetrics, name, fn)
