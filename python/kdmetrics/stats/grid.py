"""A grid of configurations (e.g. distillation T x alpha) against one reference.

Every configuration is compared with the reference model on the same
examples by the resampling engine of :func:`kdmetrics.compare`: the reference
and all configurations are scored on one draw per resample (each
configuration's deltas equal :func:`kdmetrics.paired_bootstrap` on its pair
with the same seed). Each (configuration, metric,
group) gets its own paired interval, and the family of configurations of one
(metric, group) gets a multiple-comparison adjustment, because reading a grid
means looking for the best of many cells.

The verdict of a cell follows the adjusted interval: ``real`` (it excludes 0),
``directional`` (it excludes 0, but for a metric computed from predicted
classes the two models' predictions differ on fewer than ``min_flips``
examples of the group, so the difference rests on a handful of flips), or
``inside the noise`` (it contains 0: the data cannot tell the sign, which is
not the same as "no effect").

A lab rule of thumb, "a difference smaller than the width of the reference
comparison's interval is inside the noise floor", can be shown beside it as
the column ``noise_floor_heuristic`` when ``noise_floor`` is given. It is not
a test: the width of an interval is about 4 standard errors, and it belongs to
another comparison, so it calls clearly real differences noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics._validation import check_ci, check_int, check_n_resamples
from kdmetrics.errors import InvalidArgumentError, ShapeError
from kdmetrics.metrics.agreement import predicted_classes
from kdmetrics.metrics.registry import DEFAULT_MODEL_METRICS
from kdmetrics.metrics.registry import METRICS as REGISTRY
from kdmetrics.stats import bootstrap as _bootstrap
from kdmetrics.stats import policy
from kdmetrics.tiers import TIER_NAMES, tier_codes

ADJUSTMENTS: tuple[str, ...] = ("maxt", "bonferroni", "none")
VERDICTS: tuple[str, ...] = ("real", "directional", "inside the noise")
COLUMNS: tuple[str, ...] = (
    "config",
    "metric",
    "group",
    "reference",
    "value",
    "delta",
    "ci_low",
    "ci_high",
    "method",
    "adj_low",
    "adj_high",
    "adjustment",
    "p_value",
    "p_adjusted",
    "flips",
    "verdict",
    "trusted",
    "flag_reason",
)


def _adjusted(
    deltas: np.ndarray, estimate: np.ndarray, ci: float, adjust: str, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjusted intervals and p-values of the columns of ``deltas``
    (resamples x configurations) for one (metric, group)."""
    m = deltas.shape[1]
    if adjust == "none" or m == 1 and adjust == "bonferroni":
        lo, hi = policy.any_interval(deltas, estimate, ci, method)
        return lo, hi, _p_two_sided(deltas)
    if adjust == "bonferroni":
        level = 1.0 - (1.0 - ci) / m
        lo, hi = policy.any_interval(deltas, estimate, level, method)
        return lo, hi, np.minimum(1.0, m * _p_two_sided(deltas))
    # Single-step max-|t| (Westfall & Young): studentise each configuration by
    # its bootstrap SD; the ci-quantile of the largest studentised deviation
    # across the grid widens every interval alike.
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.nanstd(deltas, axis=0, ddof=1)
        t_star = np.abs(deltas - estimate) / sd
        t_star = np.where(sd > 0, t_star, 0.0)
        max_t = np.nanmax(t_star, axis=1)
        q = float(np.quantile(max_t, ci))
        lo, hi = estimate - q * sd, estimate + q * sd
        t_obs = np.where(sd > 0, np.abs(estimate) / sd, np.where(estimate == 0, 0.0, np.inf))
        p = (1 + (max_t[:, None] >= t_obs[None, :]).sum(axis=0)) / (1 + max_t.shape[0])
    return lo, hi, p


def _p_two_sided(deltas: np.ndarray) -> np.ndarray:
    """Bootstrap two-sided p of "delta = 0": twice the smaller tail share."""
    n = (~np.isnan(deltas)).sum(axis=0)
    le = (deltas <= 0).sum(axis=0)
    ge = (deltas >= 0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.minimum(1.0, 2 * (1 + np.minimum(le, ge)) / (1 + n))


def verdict(low: float, high: float, flips: int | None, min_flips: int) -> str:
    """``real`` / ``directional`` / ``inside the noise`` of one interval."""
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0.0 <= high:
        return "inside the noise"
    if flips is not None and flips < min_flips:
        return "directional"
    return "real"


def compare_grid(
    labels: Any,
    reference: Any,
    configs: Mapping[str, Any],
    *,
    tier_of_class: Any = None,
    metrics: Any = DEFAULT_MODEL_METRICS,
    reference_logits: Any = None,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    adjust: str = "maxt",
    min_flips: int = 20,
    noise_floor: Mapping[str, float] | None = None,
    n_bins: int = 15,
) -> pd.DataFrame:
    """Every configuration against ``reference``: config - reference.

    ``configs`` maps a name to logits (N x K) of the same examples as
    ``reference`` and ``labels``; ``reference_logits`` (a teacher) is passed
    on to :func:`kdmetrics.paired_bootstrap` for ``kl``/``js``. One row per
    (config, metric, group), columns:

    - ``reference``, ``value``, ``delta``: the metric of the reference and of
      the configuration on the full data, and their difference;
    - ``ci_low``, ``ci_high``, ``method``: the configuration's own paired
      interval at level ``ci``, by the metric's default method
      (:data:`kdmetrics.stats.policy.DEFAULT_METHOD`);
    - ``adj_low``, ``adj_high``, ``adjustment``, ``p_value``,
      ``p_adjusted``: the interval and p-value adjusted across the
      configurations of the same (metric, group). ``adjust="maxt"`` (default):
      simultaneous single-step max-|t| intervals (studentised by each
      configuration's bootstrap SD; they hold jointly for the whole grid at
      level ``ci``) with the matching adjusted p; ``"bonferroni"``: each
      interval at level ``1 - (1 - ci)/m``; ``"none"``: the own interval.
      ``p_value`` is the unadjusted two-sided bootstrap p;
    - ``flips``: examples of the group whose predicted class differs between
      the two models (A right and B wrong, or the reverse);
    - ``verdict``: from the adjusted interval (see the module docstring); a
      cell whose interval method is not trusted for the (metric, group)
      (``trusted`` False, reason in ``flag_reason``) keeps its verdict, to be
      read with the flag;
    - ``noise_floor_heuristic`` (only with ``noise_floor``, a mapping metric
      -> width): the rule of thumb ``|delta| < width``, shown for comparison
      with older reports; it is not a test.

    All configurations use ``seed``, so resample ``i`` draws the same examples
    for every configuration.
    """
    func = "compare_grid"
    if not isinstance(configs, Mapping) or not configs:
        raise ShapeError(f"{func}: configs must be a non-empty mapping name -> logits")
    ci = check_ci(func, ci)
    n_resamples = check_n_resamples(func, n_resamples)
    seed = check_int(func, "seed", seed, 0)
    min_flips = check_int(func, "min_flips", min_flips, 0)
    if adjust not in ADJUSTMENTS:
        raise InvalidArgumentError(f"{func}: adjust must be one of {ADJUSTMENTS}, got {adjust!r}")
    metric_list = [metrics] if isinstance(metrics, str) else list(metrics)

    y = np.asarray(labels)
    ref_pred = predicted_classes(func, reference, "reference")
    n_classes = np.shape(reference)[1] if np.ndim(reference) == 2 else int(ref_pred.max()) + 1
    if tier_of_class is not None:
        ex_group = tier_codes(func, tier_of_class, n_classes)[y] + 1
    else:
        ex_group = np.zeros(y.shape[0], dtype=np.int64)

    names = list(configs)
    res = _bootstrap.bootstrap_models(
        func, labels, [reference, *configs.values()], ["reference", *names],
        tier_of_class=tier_of_class, metrics=metric_list, reference_logits=reference_logits,
        n_resamples=n_resamples, ci=ci, seed=seed, n_bins=n_bins, keep_deltas=True,
    )  # fmt: skip
    assert res.summary.deltas is not None  # the max-t adjustment needs every column
    tables, deltas = {}, {}
    for v, (name, logits) in enumerate(configs.items(), start=1):
        table = res.tables[v - 1]
        tables[name] = table
        deltas[name] = _bootstrap.variant_draws(res.problem, res.summary.deltas, v)
        pred = predicted_classes(func, logits, f"configs[{name!r}]")
        changed = (pred == y) != (ref_pred == y)
        in_group = {"all": changed}
        in_group.update({t: changed[ex_group == 1 + i] for i, t in enumerate(TIER_NAMES)})
        tables[name]["_flips"] = [int(in_group[g].sum()) for g in table["group"]]

    names = list(configs)
    first = tables[names[0]]
    rows = []
    for metric, group in zip(first["metric"], first["group"], strict=True):
        d = np.stack([deltas[c][(metric, group)] for c in names], axis=1)
        sel = [(tables[c]["metric"] == metric) & (tables[c]["group"] == group) for c in names]
        rec = [tables[c][s].iloc[0] for c, s in zip(names, sel, strict=True)]
        est = np.array([float(r["delta"]) for r in rec])
        method = policy.default_method(metric)
        own_lo, own_hi = policy.any_interval(d, est, ci, method)
        adj_lo, adj_hi, p_adj = _adjusted(d, est, ci, adjust, method)
        p_raw = _p_two_sided(d)
        by_predictions = metric in REGISTRY and REGISTRY[metric].needs == "predictions"
        for j, c in enumerate(names):
            flips = int(rec[j]["_flips"])
            rows.append(
                {
                    "config": c,
                    "metric": metric,
                    "group": group,
                    "reference": float(rec[j]["a"]),
                    "value": float(rec[j]["b"]),
                    "delta": est[j],
                    "ci_low": own_lo[j],
                    "ci_high": own_hi[j],
                    "method": method,
                    "adj_low": adj_lo[j],
                    "adj_high": adj_hi[j],
                    "adjustment": adjust,
                    "p_value": p_raw[j],
                    "p_adjusted": p_adj[j],
                    "flips": flips,
                    "verdict": verdict(
                        adj_lo[j], adj_hi[j], flips if by_predictions else None, min_flips
                    ),
                }  # fmt: skip
            )
    out = pd.DataFrame(rows)
    flags = policy.apply_policy(out[["metric", "group"]].copy(), method=list(out["method"]))
    out["trusted"] = flags["trusted"].to_numpy()
    out["flag_reason"] = flags["flag_reason"].to_numpy()
    if noise_floor is not None:
        width = out["metric"].map(dict(noise_floor)).astype(float)
        out["noise_floor_heuristic"] = (out["delta"].abs() < width).where(width.notna())
    return out
