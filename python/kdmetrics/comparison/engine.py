"""The comparison engine: a reference model and M variants on the same
resample draws, with flips, churn, verdicts, calibration before and after
temperature scaling, Pareto fronts over costs and deployment constraints.

All models are resampled together (:func:`kdmetrics.stats.bootstrap.bootstrap_models`):
resample ``i`` draws its example indices once, from a stream that depends
only on ``(seed, i, N)``, and scores the reference and every variant on them,
so the reference's statistics are computed once per resample and each
variant's deltas equal :func:`kdmetrics.paired_bootstrap` on its pair with
the same seed, bit for bit. A difference between two variants (or a
difference of differences) is computed resample by resample from the
deltas, and its interval is a paired interval too
(:meth:`Comparison.contrast`, :meth:`Comparison.linear`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics._arrays import as_array, check_finite
from kdmetrics._validation import (
    check_bool,
    check_ci,
    check_int,
    check_label_range,
    check_n_bins,
    check_n_resamples,
    labels_array,
    scores_array,
)
from kdmetrics.comparison.constraints import Constraint, constraint_tables, parse_constraint
from kdmetrics.comparison.costs import COST_COLUMNS, costs_from_metadata, load_costs
from kdmetrics.comparison.pareto import pareto_table
from kdmetrics.errors import AlignmentError, InvalidArgumentError, KdMetricsError, ShapeError
from kdmetrics.io.predictions import Predictions, check_aligned
from kdmetrics.metrics import registry
from kdmetrics.metrics.agreement import predicted_classes
from kdmetrics.metrics.summary import summary
from kdmetrics.metrics.temperature import fit_temperature, split_half
from kdmetrics.stats import bootstrap as _bootstrap
from kdmetrics.tiers import TIER_NAMES, tier_codes

VERDICTS = ("real", "directional", "inside the noise", "undefined")
SCALED_SUFFIX = "_scaled"
# Fewer changed predictions than this behind a difference of a prediction-only
# metric (accuracy, macro F1) make its verdict "directional"; see ``compare``.
MIN_DISCORDANT = 10
ECE_CAVEAT = (
    "sample ECE is biased upward, most for a near-calibrated model and small groups; this "
    "interval can cover far less than its nominal level (docs/conventions.md)"
)


def bootstrap_metrics() -> list[str]:
    """Registry metrics that a paired bootstrap can resample (in registry order)."""
    supported = set(_bootstrap.METRICS)
    return [
        name
        for name, s in registry.METRICS.items()
        if name in supported and s.statistic != "pair_mean"
    ]


def calibration_metrics(names: Iterable[str]) -> list[str]:
    """Of ``names``, the metrics of the model alone that temperature scaling
    can change (``temperature_sensitive`` in the registry: ECE, NLL, Brier)."""
    return [
        n
        for n in names
        if registry.METRICS[n].temperature_sensitive and registry.METRICS[n].needs == "logits"
    ]


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``b`` vs ``c``
    discordant pairs at 1/2, ``min(1, 2 P(X <= min(b, c)))``, X ~ Bin(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    # Exact: Python's int / int true division is correctly rounded for any size.
    return min(1.0, 2 * tail / (1 << n))


@dataclass
class _Model:
    name: str
    logits: np.ndarray
    source: Predictions | None


@dataclass
class Comparison:
    """What :func:`compare` returns: tidy tables, and the resampled deltas of
    every variant on the same draws (kept in memory, or computed again on
    demand: :meth:`draws`, :meth:`linear`, :meth:`contrast`).

    Tables (pandas DataFrames):

    ``metrics``
        per model and group (``all``, tiers): ``kdmetrics.summary``.
    ``deltas``
        per variant, metric and group: reference and variant values, ``delta``
        = variant - reference on all examples, the resampled median, the
        interval, ``p_delta_le_0``, the group's flips (``right_to_wrong`` =
        reference right and variant wrong, ``wrong_to_right``) and
        ``n_changed`` (argmax changed), ``n_fragile`` (the changed predictions
        the metric rests on), ``mcnemar_p`` (accuracy rows), ``favours``,
        ``verdict``, ``caveat``, and ``ci_low_adjusted``/``ci_high_adjusted``/
        ``excludes_0_adjusted``: the percentile interval at the
        Bonferroni-adjusted level ``1 - (1 - ci) / n_variants`` (one family per
        metric and group: the variants compared with the reference), from the
        same draws.
    ``churn``
        per variant and group: churn (fraction of examples whose argmax
        differs from the reference's), counts and flips.
    ``calibration``
        per model and group on the evaluation half: fitted temperature (on the
        fit half) and each calibration metric raw and scaled.
    ``calibration_deltas``
        per variant, scaling (``raw``/``scaled``), metric and group: paired
        deltas against the reference on the evaluation half, each model with
        its own temperature when scaled.
    ``costs``
        the cost table (or None).
    ``pareto``
        per (quality, cost) pair and model: front status (see
        :mod:`kdmetrics.comparison.pareto`).
    ``constraints``, ``feasibility``, ``relaxations``
        see :func:`kdmetrics.comparison.constraints.constraint_tables`.
    """

    reference: str
    variants: list[str]
    metrics: pd.DataFrame
    deltas: pd.DataFrame
    churn: pd.DataFrame
    calibration: pd.DataFrame | None
    calibration_deltas: pd.DataFrame | None
    costs: pd.DataFrame | None
    pareto: pd.DataFrame | None
    constraints: pd.DataFrame | None
    feasibility: pd.DataFrame | None
    relaxations: pd.DataFrame | None
    scalars: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    # Tables and sentences added by callers (e.g. the demo's cross-compression
    # question); rendered after the built-in ones.
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    extra_findings: list[str] = field(default_factory=list)
    # (scaling, metric, group) -> model -> value
    _values: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict, repr=False)
    # scaling ("full", "raw", "scaled") -> the resampled problem (draws on demand)
    _resampled: dict[str, _bootstrap.Resampled] = field(default_factory=dict, repr=False)

    @property
    def models(self) -> list[str]:
        return [self.reference, *self.variants]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every non-empty table by name (the CSV files of the CLI)."""
        out = {
            "metrics": self.metrics.reset_index(),
            "deltas": self.deltas,
            "churn": self.churn,
        }
        for name in (
            "calibration",
            "calibration_deltas",
            "costs",
            "pareto",
            "constraints",
            "feasibility",
            "relaxations",
        ):
            df = getattr(self, name)
            if df is not None:
                out[name] = df.reset_index() if name == "costs" else df
        out.update(self.extra_tables)
        return out

    def draws(self, variant: str, metric: str, group: str = "all", scaling: str = "full"):
        """The resampled deltas ``variant - reference`` in resample order
        (``scaling``: ``full`` for all examples, ``raw``/``scaled`` for the
        evaluation half). Read from memory when the comparison kept them
        (``keep_deltas``), otherwise computed again: the same numbers."""
        self._key(scaling, metric, group)
        return self._variant_draws(scaling, metric, group, [variant])[:, 0]

    def _variant_draws(self, scaling: str, metric: str, group: str, names: list[str]):
        if any(n not in self.variants for n in names):
            bad = [n for n in names if n not in self.variants]
            raise InvalidArgumentError(
                f"Comparison: unknown variant(s) {bad}; variants: {', '.join(self.variants)}"
            )
        index = [1 + self.variants.index(n) for n in names]
        return self._resampled[scaling].draws(metric, group, index)

    def _key(self, scaling: str, metric: str, group: str) -> tuple[str, str, str]:
        key = (scaling, metric, group)
        if key not in self._values:
            have = sorted({k[1] for k in self._values if k[0] == scaling})
            groups = sorted({k[2] for k in self._values if k[0] == scaling})
            raise InvalidArgumentError(
                f"Comparison: no {metric!r} in group {group!r} for scaling {scaling!r}; "
                f"metrics: {', '.join(have)}; groups: {', '.join(groups)}"
            )
        return key

    def linear(
        self,
        weights: Mapping[str, float],
        metric: str,
        group: str = "all",
        scaling: str = "full",
    ) -> dict[str, Any]:
        """A contrast ``sum_m w_m metric(m)`` (weights summing to 0) with its
        paired interval from the shared draws.

        ``{"a": -1, "b": 1}`` is ``b - a``; ``{"d8": 1, "v8": -1, "d": -1,
        "v": 1}`` is the change of ``d - v`` between two settings. ``scaling``
        ``full`` uses all examples; ``raw``/``scaled`` the evaluation half of
        the temperature split. Percentile interval at the comparison's level
        (``basic`` when the comparison used it). Returns ``estimate``,
        ``median``, ``ci_low``, ``ci_high``, ``p_le_0``, ``verdict`` (from the
        interval alone: "real" or "inside the noise").
        """
        func = "Comparison.linear"
        key = self._key(scaling, metric, group)
        for m in weights:
            if m not in self._values[key]:
                raise InvalidArgumentError(
                    f"{func}: unknown model {m!r}; models: {', '.join(self.models)}"
                )
        total = float(sum(weights.values()))
        if abs(total) > 1e-9:
            raise InvalidArgumentError(f"{func}: weights must sum to 0 (a contrast), got {total:g}")
        est = sum(w * self._values[key][m] for m, w in weights.items())
        draws = np.zeros(self.scalars["n_resamples"])
        used = [m for m, w in weights.items() if m != self.reference and w != 0]
        if used:
            cols = self._variant_draws(scaling, metric, group, used)
            for i, m in enumerate(used):
                draws = draws + weights[m] * cols[:, i]
        method = "basic" if self.scalars["method"] == "basic" else "percentile"
        lo, hi = _bootstrap.interval(draws[:, None], np.array([est]), self.scalars["ci"], method)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = float(np.nanmedian(draws))
            p = float(np.mean(draws[~np.isnan(draws)] <= 0)) if (~np.isnan(draws)).any() else np.nan
        lo_f, hi_f = float(lo[0]), float(hi[0])
        if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
            verdict = "undefined"
        else:
            verdict = "real" if lo_f > 0 or hi_f < 0 else "inside the noise"
        return {
            "estimate": float(est),
            "median": median,
            "ci_low": lo_f,
            "ci_high": hi_f,
            "p_le_0": p,
            "verdict": verdict,
        }

    def contrast(
        self, a: str, b: str, metric: str, group: str = "all", scaling: str = "full"
    ) -> dict[str, Any]:
        """``metric(b) - metric(a)`` with its paired interval (see :meth:`linear`)."""
        return self.linear({a: -1.0, b: 1.0}, metric, group, scaling)

    def __repr__(self) -> str:
        return (
            f"Comparison(reference={self.reference!r}, variants={self.variants}, "
            f"n_resamples={self.scalars['n_resamples']}, tables={list(self.tables)})"
        )


def _as_model(func: str, name: Any, value: Any, what: str) -> _Model:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"{func}: {what} names must be non-empty strings, got {name!r}")
    if isinstance(value, Predictions):
        return _Model(name, value.logits, value)
    arr = as_array(func, value, f"{what} {name!r}")
    if arr.ndim != 2:
        raise ShapeError(
            f"{func}: {what} {name!r} must be 2-D logits (examples x classes) or Predictions, "
            f"got shape {arr.shape}"
        )
    z = scores_array(func, arr, f"{what} {name!r}")
    check_finite(func, z, f"{what} {name!r}")  # here, not deep inside as another function's
    return _Model(name, z, None)


def _models(func: str, reference: Any, variants: Any) -> list[_Model]:
    if isinstance(reference, Mapping):
        if len(reference) != 1:
            raise InvalidArgumentError(
                f"{func}: reference must hold exactly one model, got {len(reference)}"
            )
        ((ref_name, ref_value),) = reference.items()
    elif isinstance(reference, tuple) and len(reference) == 2:
        ref_name, ref_value = reference
    else:
        raise InvalidArgumentError(
            f"{func}: reference must be (name, logits) or {{name: logits}}, got "
            f"{type(reference).__name__}"
        )
    if not isinstance(variants, Mapping) or not variants:
        raise ShapeError(f"{func}: variants must be a non-empty mapping name -> logits")
    out = [_as_model(func, ref_name, ref_value, "reference")]
    for name, value in variants.items():
        if name == out[0].name:
            raise InvalidArgumentError(f"{func}: variant {name!r} has the reference's name")
        out.append(_as_model(func, name, value, "variant"))
    return out


def _check_models(func: str, y: np.ndarray, models: list[_Model]) -> None:
    n, k = y.shape[0], models[0].logits.shape[1]
    for m in models:
        if m.logits.shape[0] != n:
            raise ShapeError(f"{func}: {m.name!r} has {m.logits.shape[0]} rows but labels has {n}")
        if m.logits.shape[1] != k:
            raise AlignmentError(
                f"{func}: {m.name!r} has {m.logits.shape[1]} classes but {models[0].name!r} has {k}"
            )
        if m.source is not None:
            diff = np.flatnonzero(m.source.labels != y)
            if diff.size:
                i = int(diff[0])
                raise AlignmentError(
                    f"{func}: the labels stored with {m.name!r} differ from labels at position "
                    f"{i} ({m.source.labels[i]} vs {y[i]})"
                )
    sources = [m.source for m in models if m.source is not None and m.source.ids is not None]
    if len(sources) > 1:
        check_aligned(sources)
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            if a.logits is b.logits or (
                a.logits.dtype == b.logits.dtype and np.array_equal(a.logits, b.logits)
            ):
                warnings.warn(
                    f"{func}: {a.name!r} and {b.name!r} have identical logits (the same file or "
                    "array passed twice?); their differences are exactly 0",
                    UserWarning,
                    stacklevel=3,
                )


def _name_list(func: str, arg: str, value: Any) -> list[Any]:
    """A name or a list/tuple/1-D array of them, as a list (``None`` aside)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return list(value)
    raise InvalidArgumentError(
        f"{func}: {arg} must be a name or a list of names, got {type(value).__name__}"
    )


def _choose_metrics(func: str, metrics: Any, have_teacher: bool) -> list[str]:
    supported = bootstrap_metrics()
    allowed = [n for n in supported if registry.METRICS[n].needs != "reference" or have_teacher]
    if metrics is None:
        return allowed
    names = _name_list(func, "metrics", metrics)
    if not names:
        raise ShapeError(f"{func}: metrics is empty; choose from {', '.join(allowed)}")
    for n in names:
        s = registry.spec(func, n)
        if n not in supported:
            hint = " (churn is always in .churn)" if s.name == "churn" else ""
            raise InvalidArgumentError(
                f"{func}: metric {n!r} cannot be resampled here; choose from "
                f"{', '.join(allowed)}{hint}"
            )
        if s.needs == "reference" and not have_teacher:
            raise InvalidArgumentError(
                f"{func}: metric {n!r} needs teacher= (a reference model's logits)"
            )
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"{func}: metrics has duplicates: {names}")
    return names


def _group_masks(y: np.ndarray, class_tier: np.ndarray | None) -> dict[str, np.ndarray]:
    masks = {"all": np.ones(y.shape[0], dtype=bool)}
    if class_tier is not None:
        for t, name in enumerate(TIER_NAMES):
            masks[name] = class_tier[y] == t
    return masks


def _flips(
    y: np.ndarray,
    pred_ref: np.ndarray,
    pred_var: np.ndarray,
    class_tier: np.ndarray | None,
    teacher_pred: np.ndarray | None = None,
) -> dict[str, dict[str, int]]:
    """Per group: flips, changed predictions, changed predictions that touch
    the group's classes (by label or either prediction: what its macro F1
    reads), and with a teacher the examples whose agreement with the
    teacher's prediction changed."""
    right_ref, right_var = pred_ref == y, pred_var == y
    changed = pred_ref != pred_var
    agreement_changed = (
        None if teacher_pred is None else (pred_ref == teacher_pred) != (pred_var == teacher_pred)
    )
    out = {}
    for g, mask in _group_masks(y, class_tier).items():
        if g == "all" or class_tier is None:
            touch = changed
        else:
            t = TIER_NAMES.index(g)
            touch = changed & (
                (class_tier[y] == t) | (class_tier[pred_ref] == t) | (class_tier[pred_var] == t)
            )
        out[g] = {
            "n": int(mask.sum()),
            "right_to_wrong": int((right_ref & ~right_var & mask).sum()),
            "wrong_to_right": int((~right_ref & right_var & mask).sum()),
            "n_changed": int((changed & mask).sum()),
            "n_changed_touching": int(touch.sum()),
        }
        if agreement_changed is not None:
            out[g]["agreement_changed"] = int((agreement_changed & mask).sum())
    return out


def _verdict(lo: float, hi: float, fragile: bool) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undefined"
    if not (lo > 0 or hi < 0):
        return "inside the noise"
    return "directional" if fragile else "real"


def _favours(lo: float, hi: float, higher_is_better: bool) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)) or (lo <= 0 <= hi):
        return "neither"
    return "variant" if (lo > 0) == higher_is_better else "reference"


def compare(
    labels: Any,
    reference: Any,
    variants: Mapping[str, Any],
    *,
    tier_of_class: Any = None,
    costs: Any = None,
    constraints: Sequence[str | Constraint] = (),
    metrics: Sequence[str] | None = None,
    teacher: Any = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    ci: float = 0.95,
    method: str = "auto",
    n_bins: int = 15,
    temperature_scaling: bool = True,
    temperature_seed: int | None = None,
    min_discordant: int = MIN_DISCORDANT,
    pareto_metrics: Sequence[str] | None = None,
    keep_deltas: bool | None = None,
) -> Comparison:
    """Compares variants (quantized, pruned, distilled, ...) with a reference
    model on the same validation examples.

    Parameters
    ----------
    labels : (N,) int array, or None when every model is a ``Predictions``
        (then the reference's labels are used).
    reference : ``(name, logits)`` or ``{name: logits}``; logits are (N, K)
        float16/32/64 arrays or :class:`kdmetrics.Predictions`.
    variants : mapping ``name -> logits`` (or ``Predictions``).
    tier_of_class : (K,) tier codes 0/1/2 or names; adds groups head/mid/tail.
    costs : a cost table (CSV/JSON path, DataFrame or mapping, see
        :func:`kdmetrics.comparison.costs.load_costs`); by default the costs in
        the ``Predictions`` metadata, if any.
    constraints : strings such as ``"macro_f1>=0.20"``, ``"ece_scaled<=0.05"``,
        ``"latency_ms<=10"``, ``"macro_f1@tail>=0.1"``
        (:mod:`kdmetrics.comparison.constraints`).
    metrics : metrics to resample; by default every registry metric the
        bootstrap supports and the inputs allow (``kl``/``js`` need
        ``teacher``).
    teacher : logits of a teacher, for the metrics measured against it.
    n_resamples, seed, ci, method, n_bins : as in :func:`kdmetrics.paired_bootstrap`.
    temperature_scaling : also fit a temperature per model on a seeded half of
        the examples (``temperature_seed``, default ``seed``) and compare raw
        and scaled calibration on the other half.
    min_discordant : the verdict threshold on changed predictions (below).
    pareto_metrics : quality metrics of the Pareto fronts (``NAME`` or
        ``NAME_scaled``); by default the prediction-only metrics (accuracy,
        macro F1).
    keep_deltas : keep the resampled deltas in memory (``True``), or
        regenerate them in passes with memory that does not grow with
        ``n_resamples`` (``False``); by default kept when all of them take at
        most :data:`kdmetrics.stats.bootstrap.KEEP_DELTAS_BYTES` (64 MiB). Same
        numbers either way; streaming computes every resample twice.

    Verdicts
    --------
    ``inside the noise`` when the interval includes 0 (never read as "no
    effect": the data cannot tell); ``real`` when it excludes 0; but for a
    metric computed from predicted classes alone (accuracy, macro F1) an
    interval that excludes 0 is ``directional`` when fewer than
    ``min_discordant`` (10) predictions changed in the group (accuracy: flips;
    macro F1: changed predictions whose label or either prediction is in the
    group; top-1 agreement with the teacher: examples whose agreement with the
    teacher's prediction changed), or for accuracy when the exact McNemar test
    on the flips gives ``p >= 1 - ci``. Why 10: with ``n`` discordant pairs the exact McNemar test
    cannot reach p < 0.05 for ``n <= 5`` even when all go one way, and below
    about 10 one flipped prediction moves the p-value by a factor of 2 or more,
    so a percentile interval that excludes 0 is fragile. Metrics of
    probabilities (NLL, Brier, ECE, KL, JS) can change without any changed
    prediction, so the rule does not apply to them; ECE rows carry a caveat
    (its sample bias makes the interval unreliable).

    Returns
    -------
    :class:`Comparison`.
    """
    func = "compare"
    ci = check_ci(func, ci)
    temperature_scaling = check_bool(func, "temperature_scaling", temperature_scaling)
    if keep_deltas is not None:
        keep_deltas = check_bool(func, "keep_deltas", keep_deltas)
    constraints = _name_list(func, "constraints", constraints)
    if pareto_metrics is not None:
        pareto_metrics = _name_list(func, "pareto_metrics", pareto_metrics)
    models = _models(func, reference, variants)
    if labels is None:
        if models[0].source is None:
            raise InvalidArgumentError(
                f"{func}: labels is None but the reference is not a Predictions"
            )
        labels = models[0].source.labels
    y = labels_array(func, labels)
    _check_models(func, y, models)
    min_discordant = check_int(func, "min_discordant", min_discordant, 0)
    n_resamples = check_n_resamples(func, n_resamples)
    seed = check_int(func, "seed", seed, 0, 2**64 - 1)
    if temperature_seed is not None:
        temperature_seed = check_int(func, "temperature_seed", temperature_seed, 0, 2**64 - 1)
    n_bins = check_n_bins(func, n_bins)
    if not isinstance(method, str) or method not in ("auto", *_bootstrap.METHODS):
        raise InvalidArgumentError(
            f"{func}: unknown method {method!r}; choose from {('auto', *_bootstrap.METHODS)}"
        )
    teacher_logits = None
    if teacher is not None:
        t = _as_model(func, "teacher", teacher, "teacher")
        n, k_ref = models[0].logits.shape
        if t.logits.shape[0] != n:
            raise ShapeError(f"{func}: teacher has {t.logits.shape[0]} rows but labels has {n}")
        if t.logits.shape[1] != k_ref:
            raise AlignmentError(
                f"{func}: teacher has {t.logits.shape[1]} classes but "
                f"{models[0].name!r} has {k_ref}"
            )
        teacher_logits = t.logits
    names = _choose_metrics(func, metrics, teacher_logits is not None)
    k = models[0].logits.shape[1]
    check_label_range(func, y, k)
    class_tier = None if tier_of_class is None else tier_codes(func, tier_of_class, k)
    ref = models[0]
    boot_kw: dict[str, Any] = dict(
        tier_of_class=class_tier,
        n_resamples=n_resamples,
        ci=ci,
        method=method,
        seed=seed,
        n_bins=n_bins,
    )
    values: dict[tuple[str, str, str], dict[str, float]] = {}

    # Per-model metrics (not resampled).
    per_model = []
    for m in models:
        s = summary(y, m.logits, tier_of_class=class_tier, reference_logits=teacher_logits,
                    n_bins=n_bins)  # fmt: skip
        per_model.append(s.assign(model=m.name).reset_index())
    metrics_table = pd.concat(per_model, ignore_index=True)
    metrics_table = metrics_table[["model", *[c for c in metrics_table if c != "model"]]]

    pred = {m.name: predicted_classes(func, m.logits, m.name) for m in models}
    teacher_pred = (
        None if teacher_logits is None else predicted_classes(func, teacher_logits, "teacher")
    )
    delta_tables, churn_rows = [], []
    if keep_deltas is None:
        # One memory budget for the whole comparison (all examples, and the
        # raw and scaled halves): beyond it every problem streams.
        n_groups = 1 if class_tier is None else 1 + len(TIER_NAMES)
        n_cols = len(names) + (2 * len(calibration_metrics(names)) if temperature_scaling else 0)
        need = 8 * n_resamples * n_cols * n_groups * (len(models) - 1)
        keep_deltas = need <= _bootstrap.KEEP_DELTAS_BYTES
    # Every model on one draw per resample (the reference's statistics once).
    resampled = {
        "full": _bootstrap.bootstrap_models(
            func,
            y,
            [m.logits for m in models],
            [m.name for m in models],
            metrics=names,
            reference_logits=teacher_logits,
            keep_deltas=keep_deltas,
            **boot_kw,
        )  # fmt: skip
    }
    for m, table in zip(models[1:], resampled["full"].tables, strict=True):
        flips = _flips(y, pred[ref.name], pred[m.name], class_tier, teacher_pred)
        for g, f in flips.items():
            churn_rows.append(
                {
                    "variant": m.name,
                    "group": g,
                    "n": f["n"],
                    "churn": f["n_changed"] / f["n"] if f["n"] else np.nan,
                    "n_changed": f["n_changed"],
                    "right_to_wrong": f["right_to_wrong"],
                    "wrong_to_right": f["wrong_to_right"],
                    "wrong_to_wrong": f["n_changed"] - f["right_to_wrong"] - f["wrong_to_right"],
                }
            )
        table = _annotate(table, flips, ci, min_discordant)
        table.insert(0, "variant", m.name)
        delta_tables.append(table)
        for row in table.itertuples(index=False):
            key = ("full", row.metric, row.group)
            values.setdefault(key, {})[ref.name] = float(row.reference_value)
            values[key][m.name] = float(row.variant_value)
    deltas = _excludes_0(pd.concat(delta_tables, ignore_index=True))
    churn_table = pd.DataFrame(churn_rows)

    notes: list[str] = []
    calibration = calibration_deltas = None
    cal_names = calibration_metrics(names)
    t_seed = seed if temperature_seed is None else temperature_seed
    if temperature_scaling and cal_names:
        calibration, calibration_deltas = _calibration(
            func, y, models, class_tier, cal_names, t_seed, boot_kw, values, resampled, notes,
            keep_deltas,
        )  # fmt: skip
        calibration_deltas = _excludes_0(_annotate(calibration_deltas, None, ci, min_discordant))

    # Costs, Pareto fronts, constraints.
    model_names = [m.name for m in models]
    cost_table = None
    if costs is not None:
        try:
            cost_table = load_costs(costs, model_names)
        except KdMetricsError as e:
            raise e.with_prefix(func) from None
    elif any(m.source is not None for m in models):
        cost_table = costs_from_metadata(
            {m.name: (m.source.metadata if m.source is not None else {}) for m in models}
        )
    result = Comparison(
        reference=ref.name,
        variants=model_names[1:],
        metrics=metrics_table,
        deltas=deltas,
        churn=churn_table,
        calibration=calibration,
        calibration_deltas=calibration_deltas,
        costs=cost_table,
        pareto=None,
        constraints=None,
        feasibility=None,
        relaxations=None,
        scalars={
            "n_examples": int(y.shape[0]),
            "n_classes": int(k),
            "n_resamples": int(n_resamples),
            "seed": int(seed),
            "temperature_seed": int(t_seed),
            "ci": float(ci),
            "method": method,
            "n_bins": int(n_bins),
            "min_discordant": int(min_discordant),
            "metrics": names,
            "tiers": class_tier is not None,
            "reference": ref.name,
            "variants": model_names[1:],
        },
        notes=notes,
        _values=values,
        _resampled=resampled,
    )
    if cost_table is not None:
        result.pareto = _pareto(func, result, pareto_metrics, names)
    cons = list(constraints)
    if cons:
        _apply_constraints(func, result, cons)
    return result


def _annotate(
    table: pd.DataFrame,
    flips: dict[str, dict[str, int]] | None,
    ci: float,
    min_discordant: int,
) -> pd.DataFrame:
    """Renames the bootstrap columns and adds flips, favours, verdict, caveat."""
    t = table.drop(columns=["flips_a_only", "flips_b_only"]).rename(
        columns={"a": "reference_value", "b": "variant_value"}
    )
    extra: dict[str, list[Any]] = {
        k: []
        for k in (
            "right_to_wrong",
            "wrong_to_right",
            "n_changed",
            "n_fragile",
            "mcnemar_p",
            "higher_is_better",
            "favours",
            "verdict",
            "caveat",
        )
    }
    for row in t.itertuples(index=False):
        s = registry.METRICS[row.metric]
        lo, hi = float(row.ci_low), float(row.ci_high)
        f = flips[row.group] if flips is not None else None
        fragile_count: Any = pd.NA
        p: float = np.nan
        fragile = False
        caveat = ECE_CAVEAT if s.statistic == "binned" else ""
        if f is not None and s.needs == "predictions":
            if s.statistic == "example_mean":  # accuracy: correctness flips
                fragile_count = f["right_to_wrong"] + f["wrong_to_right"]
                p = mcnemar_exact_p(f["right_to_wrong"], f["wrong_to_right"])
                fragile = fragile_count < min_discordant or p >= 1 - ci
            else:  # macro F1 and other count statistics: any changed prediction
                fragile_count = f["n_changed_touching"]
                fragile = fragile_count < min_discordant
        elif f is not None and s.from_argmax and "agreement_changed" in f:
            # Agreement with the teacher: examples whose agreement changed.
            fragile_count = f["agreement_changed"]
            fragile = fragile_count < min_discordant
            if fragile and (lo > 0 or hi < 0):
                caveat = f"rests on {fragile_count} changed agreement(s) with the teacher"
        if f is not None and s.needs == "predictions":
            if fragile and (lo > 0 or hi < 0):
                if fragile_count < min_discordant:
                    caveat = f"rests on {fragile_count} changed prediction(s)"
                else:
                    caveat = (
                        f"exact McNemar p = {p:.3g} on {f['right_to_wrong']} right->wrong vs "
                        f"{f['wrong_to_right']} wrong->right"
                    )
        extra["right_to_wrong"].append(f["right_to_wrong"] if f else pd.NA)
        extra["wrong_to_right"].append(f["wrong_to_right"] if f else pd.NA)
        extra["n_changed"].append(f["n_changed"] if f else pd.NA)
        extra["n_fragile"].append(fragile_count)
        extra["mcnemar_p"].append(p)
        extra["higher_is_better"].append(s.higher_is_better)
        extra["favours"].append(_favours(lo, hi, s.higher_is_better))
        extra["verdict"].append(_verdict(lo, hi, fragile))
        extra["caveat"].append(caveat)
    for k, v in extra.items():
        t[k] = v
    for k in ("right_to_wrong", "wrong_to_right", "n_changed", "n_fragile"):
        t[k] = t[k].astype("Int64")
    return t


def _excludes_0(table: pd.DataFrame) -> pd.DataFrame:
    """Whether each row's Bonferroni-adjusted interval (each row's method, over
    the variants: level ``1 - (1 - ci) / n_variants`` for each metric and group,
    from the same draws; computed by the bootstrap) excludes 0, placed after it."""
    t = table.copy()
    t["excludes_0_adjusted"] = (t["ci_low_adjusted"] > 0) | (t["ci_high_adjusted"] < 0)
    return t


def _calibration(
    func: str,
    y: np.ndarray,
    models: list[_Model],
    class_tier: np.ndarray | None,
    cal_names: list[str],
    t_seed: int,
    boot_kw: dict[str, Any],
    values: dict[tuple[str, str, str], dict[str, float]],
    resampled: dict[str, _bootstrap.Resampled],
    notes: list[str],
    keep_deltas: bool | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    fit_idx, eval_idx = split_half(y.shape[0], t_seed)
    y_fit, y_eval = y[fit_idx], y[eval_idx]
    rows = []
    scaled: dict[str, np.ndarray] = {}
    raw: dict[str, np.ndarray] = {}
    for m in models:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            fit = fit_temperature(y_fit, m.logits[fit_idx])
        if fit.at_bound:
            notes.append(
                f"{m.name}: the fitted temperature hit its bound ({fit.temperature:g}); "
                + "; ".join(str(w.message) for w in caught)
            )
        t = float(fit)
        raw[m.name] = m.logits[eval_idx]
        scaled[m.name] = np.asarray(raw[m.name], dtype=np.float64) / t
        before = summary(y_eval, raw[m.name], tier_of_class=class_tier, n_bins=boot_kw["n_bins"])
        after = summary(
            y_eval, raw[m.name], tier_of_class=class_tier, temperature=t, n_bins=boot_kw["n_bins"]
        )
        for group in before.index:
            row: dict[str, Any] = {
                "model": m.name,
                "group": group,
                "temperature": t,
                "n_fit": int(fit_idx.size),
                "n_eval": int(before.loc[group, "n"]),
            }
            for name in cal_names:
                row[f"{name}_raw"] = float(before.loc[group, name])
                row[f"{name}{SCALED_SUFFIX}"] = float(after.loc[group, name])
            rows.append(row)
    calibration = pd.DataFrame(rows)
    ref = models[0].name
    tables = []
    kw = {**boot_kw, "tier_of_class": class_tier}
    names = [m.name for m in models]
    for scaling, z in (("raw", raw), ("scaled", scaled)):
        resampled[scaling] = _bootstrap.bootstrap_models(
            func, y_eval, [z[n] for n in names], names, metrics=cal_names,
            keep_deltas=keep_deltas, **kw,
        )  # fmt: skip
    for vi, m in enumerate(models[1:]):
        for scaling in ("raw", "scaled"):
            table = resampled[scaling].tables[vi]
            table.insert(0, "scaling", scaling)
            table.insert(0, "variant", m.name)
            tables.append(table)
            for metric, group, a, b in table[["metric", "group", "a", "b"]].itertuples(index=False):
                key = (scaling, metric, group)
                values.setdefault(key, {})[ref] = float(a)
                values[key][m.name] = float(b)
    return calibration, pd.concat(tables, ignore_index=True)


def _quality_key(name: str) -> tuple[str, str, str]:
    """(scaling, metric, group) of a quality name ``METRIC[_scaled][@TIER]``."""
    base, _, group = name.partition("@")
    group = group or "all"
    if base.endswith(SCALED_SUFFIX) and base[: -len(SCALED_SUFFIX)] in registry.METRICS:
        return "scaled", base[: -len(SCALED_SUFFIX)], group
    return "full", base, group


def _resampled_names(result: Comparison) -> list[str]:
    out = []
    for scaling, metric, group in result._values:
        if scaling == "raw":
            continue
        name = metric + (SCALED_SUFFIX if scaling == "scaled" else "")
        out.append(name if group == "all" else f"{name}@{group}")
    return list(dict.fromkeys(out))


def _pareto(func, result: Comparison, pareto_metrics, names) -> pd.DataFrame | None:
    assert result.costs is not None
    valid = _resampled_names(result)
    if pareto_metrics is None:
        chosen = [n for n in names if registry.METRICS[n].needs == "predictions"]
    else:
        chosen = [pareto_metrics] if isinstance(pareto_metrics, str) else list(pareto_metrics)
        for q in chosen:
            if q not in valid:
                raise InvalidArgumentError(
                    f"{func}: unknown quality metric {q!r} in pareto_metrics; valid names: "
                    f"{', '.join(valid)}"
                )
    cost_cols = [c for c in COST_COLUMNS if c in result.costs.columns]
    tables = []
    for q in chosen:
        scaling, metric, group = _quality_key(q)
        key = (scaling, metric, group)
        hib = registry.METRICS[metric].higher_is_better

        cache: dict[tuple[str, str], tuple[float, float]] = {}

        def interval(i: str, j: str, metric=metric, group=group, scaling=scaling, cache=cache):
            if (i, j) not in cache:  # the same pairs recur for every cost
                c = result.contrast(i, j, metric, group, scaling)
                cache[(i, j)] = (c["ci_low"], c["ci_high"])
            return cache[(i, j)]

        for c in cost_cols:
            cost = {m: float(result.costs.loc[m, c]) for m in result.models}
            t = pareto_table(result.models, result._values[key], cost, hib, interval)
            missing = [m for m in result.models if not np.isfinite(cost[m])]
            if missing:
                result.notes.append(f"Pareto {q} vs {c}: no {c} for {', '.join(missing)}; left out")
            if not len(t):
                continue
            ref_rows = []
            for m in t["model"]:
                if m == result.reference:
                    ref_rows.append((0.0, 0.0, 0.0))
                else:
                    r = result.contrast(result.reference, m, metric, group, scaling)
                    ref_rows.append((r["estimate"], r["ci_low"], r["ci_high"]))
            t[["delta_vs_reference", "ci_low", "ci_high"]] = pd.DataFrame(ref_rows, index=t.index)
            t.insert(0, "cost", c)
            t.insert(0, "quality", q)
            t.insert(2, "higher_is_better", hib)
            tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else None


def _apply_constraints(func: str, result: Comparison, cons: list[str | Constraint]) -> None:
    raw_names = [c for c in result.metrics.columns if c not in ("model", "group", "n")]
    groups = list(result.metrics["group"].unique())
    cal = result.calibration
    scaled_names = [c for c in cal.columns if c.endswith(SCALED_SUFFIX)] if cal is not None else []
    cost_names = list(result.costs.columns) if result.costs is not None else []
    cost_names = [c for c in cost_names if c in COST_COLUMNS]
    valid = [*raw_names, *scaled_names, *cost_names]
    valid += [f"{n}@{g}" for n in (*raw_names, *scaled_names) for g in groups if g != "all"]
    parsed = []
    for text in cons:
        try:
            parsed.append(parse_constraint(text, valid))
        except ValueError as e:
            msg = str(e)
            if not cost_names and any(
                isinstance(text, str) and text.strip().startswith(c) for c in COST_COLUMNS
            ):
                msg += " (no costs were given: pass costs= or prediction files with cost metadata)"
            raise InvalidArgumentError(msg.replace("parse_constraint", func, 1)) from None
    vals = pd.DataFrame(index=pd.Index(result.models, name="model"))
    for c in parsed:
        base, _, group = c.name.partition("@")
        group = group or "all"
        col = []
        for m in result.models:
            if base in cost_names:
                assert result.costs is not None
                col.append(float(result.costs.loc[m, base]))
            elif base in scaled_names:
                assert cal is not None
                row = cal[(cal["model"] == m) & (cal["group"] == group)]
                col.append(float(row[base].iloc[0]))
            else:
                mt = result.metrics
                row = mt[(mt["model"] == m) & (mt["group"] == group)]
                col.append(float(row[base].iloc[0]))
        vals[c.name] = col
    result.constraints, result.feasibility, result.relaxations = constraint_tables(vals, parsed)
    result.scalars["constraints"] = [c.text for c in parsed]
