"""The distillation report: every table of ``kdmetrics report`` as data.

``load_inputs`` reads and validates the prediction files (everything that can
go wrong with user input fails here, before anything is written);
``build_report`` computes the tables with the library's own functions and
returns a :class:`Report` (a dict of DataFrames plus scalars and notes).
The vanilla-vs-distilled comparison is a preset of the comparison engine
(:func:`kdmetrics.compare` with reference "vanilla", variant "distilled" and
the teacher): its delta rows, verdicts, P(distilled better) and the
temperature test's same-scaling rows all come from one set of resample draws.
Rendering (text, Markdown, JSON, CSV) lives in ``kdmetrics.report.render``,
figures in ``kdmetrics.report.plots``.

Definitions used below (also written into ``report.md``):

- **Gain fraction reproduced by temperature scaling** of a metric M (ECE or
  NLL, lower is better), on the evaluation half of a seeded split-half:
  ``(M(vanilla raw) - M(vanilla scaled)) / (M(vanilla raw) - M(distilled raw))``.
  1 means fitting one temperature to the vanilla student recovers all of
  distillation's gain, 0 none, > 1 more than all of it. It is reported with a
  bootstrap interval, and as NaN with the reason when the interval of the
  denominator (distillation's gain) includes 0 or lies above it.
- **Grid**: each configuration's own paired interval against the primary
  vanilla, adjusted across the grid, and a verdict (see ``grid_table``). The
  old **noise-floor rule** (a difference smaller than the width of the
  reference comparison's interval is "inside the noise floor") is kept as the
  column ``noise_floor_rule_*`` for comparison only.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.comparison.engine import Comparison
from kdmetrics.errors import AlignmentError, InvalidArgumentError, NonFiniteError, ShapeError
from kdmetrics.io.align import align_files
from kdmetrics.io.predictions import Predictions, check_aligned, load_predictions
from kdmetrics.metrics.registry import DEFAULT_MODEL_METRICS, METRICS
from kdmetrics.metrics.selective import DEFAULT_THRESHOLDS, sla_threshold, threshold_table
from kdmetrics.metrics.summary import summary
from kdmetrics.metrics.temperature import split_half
from kdmetrics.report.findings import Findings, build_findings, caveats, group_flips, spec_of
from kdmetrics.report.tables import (
    agreement_table,
    aurc_table,
    groups,
    per_class_f1,
    selective_by_tier,
    soft_target_diagnostics,
)
from kdmetrics.stats.policy import calibration_bootstrap
from kdmetrics.tiers import tier_codes, tiers_from_counts

# Per-seed metrics compared across training seeds: the registry's defaults.
SEED_METRICS: tuple[str, ...] = DEFAULT_MODEL_METRICS
SLA_TARGET = 0.95


def comparison_metrics() -> tuple[str, ...]:
    """The metrics the paired bootstrap compares, in registry order: every
    registry metric of one model (not pair metrics such as churn) that
    ``paired_bootstrap`` accepts."""
    from kdmetrics.stats import bootstrap

    accepted = getattr(bootstrap, "METRICS", tuple(METRICS))
    return tuple(
        name
        for name, s in METRICS.items()
        if s.in_summary and s.statistic != "pair_mean" and name in accepted
    )


@dataclass(frozen=True)
class ReportInputs:
    """Validated, aligned prediction files and the class tiers.

    ``teacher_targets``: the teacher's logits on the *training* set (the soft
    targets the distilled student learned from), when given; ``distill_T``
    the distillation temperature and where it came from.
    """

    teacher: Predictions
    vanilla: list[Predictions]
    distilled: list[Predictions]
    models: dict[str, Predictions]
    grid: list[Predictions]
    tier_of_class: np.ndarray | None
    tier_source: str
    ids_sha256: str
    teacher_targets: Any = None
    teacher_targets_path: str | None = None
    distill_T: float | None = None
    distill_T_source: str = ""

    @property
    def labels(self) -> np.ndarray:
        return self.teacher.labels

    def named_models(self) -> dict[str, Predictions]:
        """Every model scored on its own: teacher, primary students, extras."""
        return {
            "teacher": self.teacher,
            "vanilla": self.vanilla[0],
            "distilled": self.distilled[0],
            **self.models,
        }


@dataclass
class Report:
    """Tables (DataFrames) and scalars of one report, and its findings in words."""

    tables: dict[str, pd.DataFrame]
    scalars: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    # Per-model reliability tables and fine coverage curves, for the figures.
    reliability: dict[str, pd.DataFrame] = field(default_factory=dict)
    coverage_curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    findings: Findings | None = None
    # Coverage and accuracy at a fine grid of thresholds, per model and group.
    tier_curves: pd.DataFrame | None = None


def _load(path: str, loader: Callable[[str], Predictions] | None = None) -> Predictions:
    pred = (loader or load_predictions)(path)
    finite = np.isfinite(pred.logits)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise NonFiniteError(
            f"{path}: logits contain {int((~finite).sum())} non-finite value(s) (NaN/inf), "
            f"first in row {row}",
            row,
            int(np.flatnonzero(~finite[row])[0]),
        )
    return pred


def read_train_counts(path: str) -> np.ndarray:
    """K training counts from a .npy, .npz (key ``train_counts`` or a single
    array) or text file (whitespace/comma separated)."""
    if not os.path.exists(path):
        raise InvalidArgumentError(f"{path}: no such file")
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                if "train_counts" in z.files:
                    counts = z["train_counts"]
                elif len(z.files) == 1:
                    counts = z[z.files[0]]
                else:
                    raise InvalidArgumentError(f"no 'train_counts' key among {sorted(z.files)}")
        elif path.endswith(".npy"):
            counts = np.load(path, allow_pickle=False)
        else:
            with open(path) as f:
                counts = np.array(f.read().replace(",", " ").split(), dtype=np.float64)
    except ValueError as e:
        raise InvalidArgumentError(f"{path}: cannot read training counts ({e})") from None
    return np.asarray(counts)


def resolve_tiers(
    files: list[Predictions], train_counts_path: str | None, k: int, sizes: tuple[int, int]
) -> tuple[np.ndarray | None, str]:
    """The tier of every class and where it came from: ``train_counts_path``
    when given, else the files' stored ``tier_of_class``/``train_counts``
    (which must agree), else None (only the group "all")."""
    if train_counts_path is not None:
        counts = read_train_counts(train_counts_path)
        if counts.shape != (k,):
            raise ShapeError(
                f"{train_counts_path}: has {counts.size} training counts but the models have "
                f"{k} classes"
            )
        try:
            return tiers_from_counts(counts, sizes), f"training counts from {train_counts_path}"
        except ValueError as e:
            raise InvalidArgumentError(f"{train_counts_path}: {e}") from None
    found: tuple[np.ndarray, Predictions] | None = None
    for f in files:
        try:
            if f.tier_of_class is not None:
                tiers = tier_codes("report", f.tier_of_class, k)
            elif f.train_counts is not None:
                tiers = tiers_from_counts(f.train_counts, sizes)
            else:
                continue
        except ValueError as e:
            raise InvalidArgumentError(f"{f.path}: {e}") from None
        if found is None:
            found = (tiers, f)
        elif not np.array_equal(found[0], tiers):
            i = int(np.flatnonzero(found[0] != tiers)[0])
            raise AlignmentError(
                f"{f.path}: class tiers differ from {found[1].path} at class {i}; "
                "pass --train-counts to choose"
            )
    if found is None:
        return None, "none: no --train-counts and no tier_of_class/train_counts in the files"
    src = "tier_of_class" if found[1].tier_of_class is not None else "train_counts"
    return found[0], f"{src} stored in {found[1].path}"


def read_teacher_logits(path: str) -> np.ndarray:
    """Teacher logits from a teacher file (``.npz`` with ``logits``, or a
    ``.npy``, memory-mapped)."""
    if not os.path.exists(path):
        raise InvalidArgumentError(f"{path}: no such file")
    try:
        if path.endswith(".npy"):
            z = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as f:
                if "logits" not in f.files:
                    raise InvalidArgumentError(f"no 'logits' key among {sorted(f.files)}")
                z = f["logits"]
    except (ValueError, OSError) as e:
        raise InvalidArgumentError(f"{path}: cannot read teacher logits ({e})") from None
    if z.ndim != 2 or z.dtype.kind != "f":
        raise ShapeError(f"{path}: teacher logits must be a 2-D float array, got {z.shape}")
    return z


def _distill_temperature(
    distill_T: float | None, distilled: Predictions, teacher: Predictions
) -> tuple[float | None, str]:
    """The distillation temperature: the argument, else the distilled file's
    metadata ``T`` (when its ``alpha`` is not 0), else the teacher file's."""
    if distill_T is not None:
        t = float(distill_T)
        if not (math.isfinite(t) and t > 0):
            raise InvalidArgumentError(
                f"distillation temperature must be a finite number > 0, got {t}"
            )
        return t, "given"
    for pred, role in ((distilled, "distilled"), (teacher, "teacher")):
        t, alpha = _metadata(pred, "T"), _metadata(pred, "alpha")
        if role == "distilled" and alpha is not None and float(alpha) == 0.0:
            continue
        if isinstance(t, (int, float)) and math.isfinite(float(t)) and float(t) > 0:
            return float(t), f"metadata T of the {role} file"
    return None, "unknown (pass the distillation temperature)"


def load_inputs(
    teacher: str,
    vanilla: list[str],
    distilled: list[str],
    *,
    models: dict[str, str] | None = None,
    grid: list[str] | None = None,
    train_counts: str | None = None,
    tier_sizes: tuple[int, int] = (20, 40),
    teacher_logits: str | None = None,
    distill_T: float | None = None,
    loader: Callable[[str], Predictions] | None = None,
    align: str | None = None,
) -> ReportInputs:
    """Loads every file, rejects non-finite logits, checks that all files are
    aligned (same ids, labels, N and K) and derives the tiers (head and mid
    sizes ``tier_sizes``; stored ``tier_of_class`` is used as it is).

    ``teacher_logits``: the teacher's logits on the training set (a teacher
    file), for the soft-target diagnostics; ``distill_T``: the distillation
    temperature (default: from the files' metadata); ``loader``: how to read
    one file (default: :func:`load_predictions`; the CLI passes one built from
    its layout options); ``align="id"`` reorders every file to the teacher's
    id order first (:func:`kdmetrics.io.align.align_files`)."""
    if not vanilla or not distilled:
        raise InvalidArgumentError("need at least one --vanilla and one --distilled file")
    t = _load(teacher, loader)
    v = [_load(p, loader) for p in vanilla]
    d = [_load(p, loader) for p in distilled]
    m = {name: _load(p, loader) for name, p in (models or {}).items()}
    g = [_load(p, loader) for p in grid or []]
    everything = [t, *v, *d, *m.values(), *g]
    if align is not None:
        everything, _, _ = align_files(everything, align)
        t, rest = everything[0], everything[1:]
        v, rest = rest[: len(v)], rest[len(v) :]
        d, rest = rest[: len(d)], rest[len(d) :]
        m = dict(zip(m, rest[: len(m)], strict=True))
        g = rest[len(m) :]
    sha = check_aligned(everything)
    tiers, source = resolve_tiers(everything, train_counts, t.n_classes, tier_sizes)
    targets = None
    if teacher_logits is not None:
        targets = read_teacher_logits(teacher_logits)
        if targets.shape[1] != t.n_classes:
            raise ShapeError(
                f"{teacher_logits}: has {targets.shape[1]} classes but the models have "
                f"{t.n_classes}"
            )
    temp, temp_source = _distill_temperature(distill_T, d[0], t)
    return ReportInputs(
        t, v, d, m, g, tiers, source, sha, targets, teacher_logits, temp, temp_source
    )


def _summary(inputs: ReportInputs, pred: Predictions) -> pd.DataFrame:
    return summary(
        inputs.labels,
        pred.logits,
        tier_of_class=inputs.tier_of_class,
        reference_logits=inputs.teacher.logits,
    )


def _metadata(pred: Predictions, key: str) -> Any:
    value = pred.metadata.get(key)
    if isinstance(value, np.ndarray):
        return None
    return value.item() if isinstance(value, np.generic) else value


def temperature_test(
    labels: np.ndarray,
    vanilla: Any,
    distilled: Any,
    seed: int,
    *,
    n_resamples: int = 2_000,
    ci: float = 0.95,
    comparison: Comparison | None = None,
) -> tuple[pd.DataFrame, dict[str, float], list[str], dict[str, pd.DataFrame]]:
    """Split-half temperature scaling of both students, tested with intervals.

    T is fitted for each student on the fit half of a seeded split
    (:func:`kdmetrics.metrics.temperature.split_half`); everything else is
    measured on the evaluation half. ``comparison``: the report's
    :func:`kdmetrics.compare` of ("vanilla", {"distilled"}) with
    ``temperature_seed = seed`` and the same ``n_resamples`` and ``ci``
    (computed here when None); its calibration tables give the fitted
    temperatures, the raw and scaled values and the paired rows "distilled -
    vanilla" and "distilled+T - vanilla+T". Returns

    - ``table``: per model T, ECE and NLL raw and scaled, n_fit, n_eval;
    - ``fractions``: the gain fraction per metric (ECE, NLL), NaN where it is
      undefined (see ``temperature_gain``);
    - ``notes``: why a fraction is NaN;
    - ``{"temperature_paired": ..., "temperature_gain": ...}``:
      ``temperature_paired`` holds paired-bootstrap differences B - A with
      intervals (all on one resample draw of the evaluation half, seed
      ``seed``) for "distilled - vanilla+T" (does distillation beat simply
      scaling vanilla?), "distilled+T - vanilla+T" (after both are scaled) and
      "distilled - vanilla" (distillation's raw gain), for ECE, NLL and the
      debiased calibration error ``ce2_debiased``, with the policy's
      ``trusted``/``flag_reason``. ``temperature_gain`` holds the gain
      fraction ``(M(vanilla) - M(vanilla+T)) / (M(vanilla) - M(distilled))``
      with a percentile interval of the per-resample ratio; when the
      denominator's interval includes 0 (distillation's gain is not
      established) the fraction and its interval are NaN and ``reason`` says
      so.
    """
    from kdmetrics.stats.bootstrap import paired_bootstrap
    from kdmetrics.stats.policy import (
        any_interval,
        apply_policy,
        calibration_bootstrap,
        default_method,
    )

    metrics = ("ece", "nll")
    if comparison is None:
        comparison = _compare(
            labels, vanilla, distilled, None, None, metrics, n_resamples, seed, ci
        )
    if comparison.calibration is None or comparison.calibration_deltas is None:
        raise InvalidArgumentError("temperature_test: the comparison has no calibration tables")
    cal = comparison.calibration
    cal = cal[cal["group"] == "all"].set_index("model")
    table = pd.DataFrame(
        {
            "temperature": cal["temperature"],
            **{f"{m}_{kind}": cal[f"{m}_{kind}"] for m in metrics for kind in ("raw", "scaled")},
            "n_fit": cal["n_fit"],
            "n_eval": cal["n_eval"],
        }
    ).loc[["vanilla", "distilled"]]
    fit_idx, eval_idx = split_half(labels.shape[0], seed)
    y = labels[eval_idx]
    evals: dict[str, np.ndarray] = {}
    for name, logits in (("vanilla", vanilla), ("distilled", distilled)):
        z = logits[eval_idx]
        evals[name] = z
        evals[f"{name}+T"] = np.asarray(z, dtype=np.float64) / float(table.loc[name, "temperature"])

    # Rows the engine gives (variant distilled against reference vanilla, both
    # raw or both scaled), by label.
    from_engine = {"distilled+T - vanilla+T": "scaled", "distilled - vanilla": "raw"}
    comparisons = {
        "distilled - vanilla+T": ("vanilla+T", "distilled"),
        "distilled+T - vanilla+T": ("vanilla+T", "distilled+T"),
        "distilled - vanilla": ("vanilla", "distilled"),
        "vanilla+T - vanilla": ("vanilla", "vanilla+T"),
    }
    columns = ["metric", "a", "b", "delta", "median_delta", "ci_low", "ci_high",
               "p_delta_le_0", "n", "method", "trusted", "flag_reason"]  # fmt: skip
    paired, deltas = [], {}
    for label, (a, b) in comparisons.items():
        scaling = from_engine.get(label)
        if scaling is not None:
            cd = comparison.calibration_deltas
            rows = cd[(cd["scaling"] == scaling) & (cd["group"] == "all")]
            rows = rows.set_index("metric").loc[list(metrics)].reset_index()
            tab = rows.rename(columns={"reference_value": "a", "variant_value": "b"})[columns]
            for metric in metrics:
                deltas[(label, metric)] = comparison.draws("distilled", metric, "all", scaling)
        else:
            # The engine compares each model with the reference at one scaling:
            # the cross comparisons (one model scaled, the other not) are
            # bootstrapped here, on the same draws (same seed and N).
            tab, d = paired_bootstrap(
                y, evals[a], evals[b], metrics=metrics, n_resamples=n_resamples, ci=ci,
                seed=seed, return_deltas=True,
            )  # fmt: skip
            for metric in metrics:
                deltas[(label, metric)] = d[(metric, "all")]
            methods = []
            for i, metric in enumerate(tab.metric):
                # BCa needs the jackknife, which the deltas do not carry: percentile then.
                method = default_method(metric)
                method = "percentile" if method == "bca" else method
                if method != "percentile":
                    lo, hi = any_interval(
                        deltas[(label, metric)][:, None], np.array([tab.delta.iat[i]]), ci, method
                    )
                    tab.loc[i, ["ci_low", "ci_high"]] = [lo[0], hi[0]]
                methods.append(method)
            tab = apply_policy(tab, method=methods)[columns]
        # The debiased calibration error is not a registry metric, so the
        # engine does not resample it: its own bootstrap, same draws.
        ctab = calibration_bootstrap(
            y, evals[a], evals[b], n_resamples=n_resamples, ci=ci, seed=seed
        )
        assert isinstance(ctab, pd.DataFrame)
        tab = pd.concat([tab, ctab[columns]], ignore_index=True)
        tab.insert(0, "comparison", label)
        tab.insert(1, "model_a", a)
        tab.insert(2, "model_b", b)
        paired.append(tab)
    paired_table = pd.concat(paired, ignore_index=True)

    fractions: dict[str, float] = {}
    notes: list[str] = []
    gain_rows = []
    alpha = (1 - ci) / 2
    for metric in ("ece", "nll"):
        num = table.loc["vanilla", f"{metric}_scaled"] - table.loc["vanilla", f"{metric}_raw"]
        den = table.loc["distilled", f"{metric}_raw"] - table.loc["vanilla", f"{metric}_raw"]
        d_den = deltas[("distilled - vanilla", metric)]
        d_num = deltas[("vanilla+T - vanilla", metric)]
        den_lo, den_hi = np.quantile(d_den, [alpha, 1 - alpha])
        reason = ""
        if not (den_hi < 0):
            frac, f_lo, f_hi = np.nan, np.nan, np.nan
            if den_lo > 0:
                reason = (
                    f"distillation made {metric.upper()} worse on the evaluation half "
                    f"(interval of distilled - vanilla [{den_lo:.4g}, {den_hi:.4g}] above 0): "
                    "there is no gain for temperature scaling to reproduce"
                )
            else:
                reason = (
                    f"the interval of distillation's {metric.upper()} gain (distilled - vanilla "
                    f"[{den_lo:.4g}, {den_hi:.4g}]) includes 0, so the ratio is undefined"
                )
            notes.append(f"Temperature-scaling gain fraction ({metric.upper()}) is NaN: {reason}.")
        else:
            frac = float(num / den)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = d_num / d_den
            f_lo, f_hi = (float(v) for v in np.nanquantile(ratio, [alpha, 1 - alpha]))
        fractions[metric] = float(frac)
        gain_rows.append(
            {
                "metric": metric,
                "fraction": frac,
                "ci_low": f_lo,
                "ci_high": f_hi,
                "numerator": float(num),
                "denominator": float(den),
                "denominator_ci_low": float(den_lo),
                "denominator_ci_high": float(den_hi),
                "reason": reason,
            }
        )
    extra = {"temperature_paired": paired_table, "temperature_gain": pd.DataFrame(gain_rows)}
    return table, fractions, notes, extra


def seed_comparison(
    labels: np.ndarray,
    vanilla: list[Predictions],
    distilled: list[Predictions],
    tier_of_class: Any,
    n_resamples: int,
    seed: int,
    *,
    paired: bool = False,
    ci: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-seed metrics of both recipes and ``compare_seeds`` per metric.

    Unpaired by default (Welch t interval); ``paired=True`` pairs the recipes'
    files by their ``seed`` metadata (paired t; the training loop gives both
    arms the same data order and initial weights per seed) and needs the same
    seeds on both sides. Each row carries the smallest attainable permutation
    p (``p_min``) next to ``p_value``, Cohen's d and Hedges' g (SDs with
    ``ddof`` = 1), and, for ECE, a flag: per-seed sample ECE is biased upward,
    so differences of ECE means inherit that bias.
    """
    from kdmetrics import compare_seeds

    per_seed = []
    for recipe, files in (("vanilla", vanilla), ("distilled", distilled)):
        for f in files:
            row = summary(labels, f.logits, tier_of_class=tier_of_class).loc["all"]
            per_seed.append(
                {
                    "recipe": recipe,
                    "seed": _metadata(f, "seed"),
                    "file": f.path,
                    **{m: float(row[m]) for m in SEED_METRICS},
                }
            )
    table = pd.DataFrame(per_seed)
    rows = []
    for metric in SEED_METRICS:
        va = table[table.recipe == "vanilla"]
        di = table[table.recipe == "distilled"]
        if paired:
            a: Any = dict(zip(va.seed, va[metric], strict=True))
            b: Any = dict(zip(di.seed, di[metric], strict=True))
        else:
            a, b = va[metric].to_numpy(), di[metric].to_numpy()
        res = compare_seeds(a, b, paired=paired, n_resamples=n_resamples, ci=ci, seed=seed)
        rows.append(
            {
                "metric": metric,
                "n_vanilla": res.n_a,
                "n_distilled": res.n_b,
                "mean_vanilla": res.mean_a,
                "mean_distilled": res.mean_b,
                "difference": res.delta,
                "ci_low": float(res.ci_low),
                "ci_high": float(res.ci_high),
                "ci_method": res.ci_method,
                "p_value": float(res.p_value),
                "p_min": float(res.p_min),
                "p_method": res.p_method,
                "cohens_d": float(res.cohens_d),
                "hedges_g": float(res.hedges_g),
                "ddof": res.ddof,
                "paired": res.paired,
                "flag_reason": (
                    "sample ECE is biased upward (most for well-calibrated models): a "
                    "difference of ECE means inherits the bias; see docs/intervals.md"
                    if metric == "ece"
                    else ""
                ),
            }
        )
    return table, pd.DataFrame(rows)


def grid_table(
    inputs: ReportInputs,
    bootstrap: pd.DataFrame,
    *,
    n_resamples: int = 2_000,
    seed: int = 0,
    ci: float = 0.95,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every grid configuration against the reference (primary vanilla).

    The primary distilled student and every ``--grid`` file are compared with
    the reference by :func:`kdmetrics.stats.grid.compare_grid` on one shared
    resample draw (group ``all``), max-|t| simultaneous intervals across the
    configurations. Per metric m the columns are ``m`` (the configuration's
    value), ``delta_m`` (config - reference), ``ci_low_m``/``ci_high_m`` (the
    configuration's own paired interval), ``adj_low_m``/``adj_high_m`` (the
    adjusted one), ``verdict_m`` (real / directional / inside the noise, from
    the adjusted interval), ``trusted_m`` and ``noise_floor_rule_m``: the old
    rule of thumb ``|delta| < noise floor`` (the width of the reference
    comparison's interval, returned as the second value), kept for
    comparison with older reports; it is not a test.
    """
    from kdmetrics.stats.grid import compare_grid

    # The registry's metrics (the report's extra debiased calibration rows come
    # from their own bootstrap, which the grid does not run).
    all_rows = bootstrap[
        (bootstrap["group"] == "all") & bootstrap["metric"].isin(list(METRICS))
    ].set_index("metric")
    floor = {
        m: float(all_rows.loc[m, "ci_high"] - all_rows.loc[m, "ci_low"]) for m in all_rows.index
    }
    reference = _summary(inputs, inputs.vanilla[0]).loc["all"]
    others = [("distilled", inputs.distilled[0])] + [(f.name, f) for f in inputs.grid]
    names = [n for n, _ in others]
    if len(set(names)) != len(names):
        names = [f"{n} [{i}]" for i, n in enumerate(names)]
    cmp = compare_grid(
        inputs.labels,
        inputs.vanilla[0].logits,
        {n: f.logits for n, (_, f) in zip(names, others, strict=True)},
        metrics=list(floor),
        reference_logits=inputs.teacher.logits,
        n_resamples=n_resamples,
        ci=ci,
        seed=seed,
        noise_floor=floor,
    )
    configs = [("vanilla (reference)", inputs.vanilla[0])] + list(
        zip(names, [f for _, f in others], strict=True)
    )
    rows = []
    for label, f in configs:
        s = _summary(inputs, f).loc["all"]
        row: dict[str, Any] = {
            "config": label,
            "file": f.path,
            "T": _metadata(f, "T"),
            "alpha": _metadata(f, "alpha"),
            "seed": _metadata(f, "seed"),
        }
        for m in floor:
            row[m] = float(s[m])
            row[f"delta_{m}"] = float(s[m] - reference[m])
            if label == "vanilla (reference)":
                row.update(
                    {f"{c}_{m}": np.nan for c in ("ci_low", "ci_high", "adj_low", "adj_high")}
                )
                row.update({f"verdict_{m}": "reference", f"trusted_{m}": pd.NA})
            else:
                c = cmp[(cmp.config == label) & (cmp.metric == m)].iloc[0]
                for col in ("ci_low", "ci_high", "adj_low", "adj_high", "verdict", "trusted"):
                    row[f"{col}_{m}"] = c[col]
            row[f"noise_floor_rule_{m}"] = bool(abs(s[m] - reference[m]) < floor[m])
        rows.append(row)
    return pd.DataFrame(rows), floor


def _p_better(rows: pd.DataFrame, draws: Callable[[str, str], np.ndarray]) -> np.ndarray:
    """Per row, the fraction of resamples in which the distilled student is
    strictly better (delta > 0 where higher is better, < 0 where lower is);
    ``draws(metric, group)``: the resampled deltas distilled - vanilla."""
    out = []
    for r in rows.itertuples(index=False):
        d = draws(r.metric, r.group)
        better = d > 0 if spec_of(r.metric).higher_is_better else d < 0
        out.append(float(np.mean(better)))
    return np.array(out)


def _compare(
    labels: np.ndarray,
    vanilla: Any,
    distilled: Any,
    teacher: Any,
    tier_of_class: np.ndarray | None,
    metrics: tuple[str, ...],
    n_resamples: int,
    seed: int,
    ci: float,
) -> Comparison:
    """The report as a preset of :func:`kdmetrics.compare`: reference
    "vanilla", one variant "distilled", the teacher for the divergence metrics,
    temperature scaling on the split-half of ``seed``."""
    from kdmetrics.comparison.engine import compare

    with warnings.catch_warnings():
        # Identical students: the report says so in its caveats.
        warnings.filterwarnings("ignore", message=r".*identical logits", category=UserWarning)
        return compare(
            labels,
            ("vanilla", vanilla),
            {"distilled": distilled},
            teacher=teacher,
            tier_of_class=tier_of_class,
            metrics=list(metrics),
            n_resamples=n_resamples,
            seed=seed,
            ci=ci,
            temperature_scaling=True,
            temperature_seed=seed,
        )


def comparison_rows(comparison: Comparison, variant: str = "distilled") -> pd.DataFrame:
    """The report's "bootstrap" table: ``comparison.deltas`` of ``variant``
    (every column, ``reference_value``/``variant_value`` named ``a``/``b``)
    and ``p_better``, the fraction of the same resamples in which the variant
    is strictly better."""
    d = comparison.deltas
    rows = (
        d[d["variant"] == variant]
        .drop(columns="variant")
        .rename(columns={"reference_value": "a", "variant_value": "b"})
        .reset_index(drop=True)
    )
    rows["p_better"] = _p_better(rows, lambda m, g: comparison.draws(variant, m, g))
    return rows


def build_report(
    inputs: ReportInputs,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    ci: float = 0.95,
) -> Report:
    """Computes every table of the report with the library's functions, and
    the findings in words (``kdmetrics.report.findings``)."""
    from kdmetrics.metrics.agreement import predicted_classes
    from kdmetrics.metrics.calibration import reliability_table

    labels = inputs.labels
    notes: list[str] = []
    if inputs.tier_of_class is None:
        notes.append(
            "No class tiers: pass --train-counts or store tier_of_class/train_counts in the "
            "files to get head/mid/tail rows; every table has the group 'all' only."
        )
    models = inputs.named_models()
    logits = {name: p.logits for name, p in models.items()}

    per_model = []
    for name, pred in models.items():
        s = _summary(inputs, pred).reset_index()
        s.insert(0, "model", name)
        per_model.append(s)
    metrics = pd.concat(per_model, ignore_index=True)

    teacher_f1 = metrics.loc[metrics.model == "teacher", ["group", "macro_f1"]].rename(
        columns={"macro_f1": "teacher_macro_f1"}
    )
    ceiling = metrics.loc[metrics.model != "teacher", ["model", "group", "macro_f1"]].merge(
        teacher_f1, on="group"
    )
    ceiling["gap_to_teacher"] = ceiling["teacher_macro_f1"] - ceiling["macro_f1"]

    v, d = inputs.vanilla[0], inputs.distilled[0]
    # One engine run: every delta, P(distilled better) and the temperature
    # test's same-scaling rows come from its shared resample draws.
    cmp = _compare(
        labels,
        v.logits,
        d.logits,
        inputs.teacher.logits,
        inputs.tier_of_class,
        comparison_metrics(),
        n_resamples,
        seed,
        ci,
    )
    boot = comparison_rows(cmp, "distilled")
    # Calibration compared on the debiased squared calibration error, on the
    # same resample draws: the plain ECE difference is biased (docs/intervals.md).
    # Not a registry metric, so the engine does not resample it: its own call.
    cal, cal_deltas = calibration_bootstrap(
        labels,
        v.logits,
        d.logits,
        tier_of_class=inputs.tier_of_class,
        n_resamples=n_resamples,
        ci=ci,
        seed=seed,
        return_deltas=True,
    )
    cal["p_better"] = _p_better(cal, lambda m, g: cal_deltas[(m, g)])
    comparisons = pd.concat([boot, cal], ignore_index=True)[
        ["metric", "group", "n", "a", "b", "delta", "ci_low", "ci_high", "p_better", "trusted",
         "flag_reason", "verdict", "caveat"]
    ]  # fmt: skip

    group_masks = dict(groups(labels, inputs.tier_of_class))
    v_pred = predicted_classes("report", v.logits, "vanilla")
    d_pred = predicted_classes("report", d.logits, "distilled")
    t_pred = predicted_classes("report", inputs.teacher.logits, "teacher")
    flips = group_flips(labels, v_pred, d_pred, group_masks)
    agreement_flips = group_flips(t_pred, v_pred, d_pred, group_masks)

    temp_table, fractions, temp_notes, temp_tests = temperature_test(
        labels, v.logits, d.logits, seed, n_resamples=n_resamples, ci=ci, comparison=cmp
    )
    notes += temp_notes

    thresholds, sla_rows = [], []
    fine = np.round(np.linspace(0.0, 1.0, 101), 10)
    reliability, curves = {}, {}
    for name, pred in models.items():
        t = threshold_table(labels, pred.logits, DEFAULT_THRESHOLDS)
        t.insert(0, "model", name)
        thresholds.append(t)
        sla = sla_threshold(labels, pred.logits, SLA_TARGET)
        sla_rows.append({"model": name, **sla._asdict()})
        reliability[name] = reliability_table(labels, pred.logits)
        curves[name] = threshold_table(labels, pred.logits, fine)

    tiers = inputs.tier_of_class
    train_counts = next(
        (p.train_counts for p in models.values() if p.train_counts is not None), None
    )
    per_class = per_class_f1(
        labels,
        logits,
        tier_of_class=tiers,
        train_counts=train_counts if train_counts is not None and tiers is not None else None,
    )
    temperatures = [1.0]
    if inputs.distill_T is not None and inputs.distill_T != 1.0:
        temperatures.append(inputs.distill_T)
    if inputs.teacher_targets is not None:
        source = f"the training-set soft targets ({inputs.teacher_targets_path})"
        diag = soft_target_diagnostics(inputs.teacher_targets, temperatures, source=source)
    else:
        diag = soft_target_diagnostics(
            inputs.teacher.logits, temperatures, source="the teacher's validation logits"
        )
        notes.append(
            "Teacher soft-target diagnostics use the teacher's validation logits; the "
            "training-set targets the student learned from are usually sharper (pass "
            "--teacher-logits for them)."
        )

    tables: dict[str, pd.DataFrame] = {
        "metrics": metrics,
        "teacher_ceiling": ceiling,
        "bootstrap": boot,
        "calibration_debiased": cal,
        "temperature": temp_table.reset_index(),
        "thresholds": pd.concat(thresholds, ignore_index=True),
        "sla": pd.DataFrame(sla_rows),
        **temp_tests,
        "per_class_f1": per_class,
        "teacher_agreement": agreement_table(
            labels, logits, inputs.teacher.logits, tier_of_class=tiers
        ),
        "selective_by_tier": selective_by_tier(labels, logits, tier_of_class=tiers),
        "aurc": aurc_table(labels, logits, tier_of_class=tiers),
        "soft_targets": diag,
    }
    tier_curves = selective_by_tier(labels, logits, tier_of_class=tiers, thresholds=fine)
    scalars: dict[str, Any] = {
        "ids_sha256": inputs.ids_sha256,
        "n_examples": int(labels.shape[0]),
        "n_classes": int(inputs.teacher.n_classes),
        "tier_source": inputs.tier_source,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "ci": float(ci),
        "sla_target": SLA_TARGET,
        "temperature_seed": int(seed),
        "ts_gain_fraction_ece": fractions["ece"],
        "ts_gain_fraction_nll": fractions["nll"],
        "distill_T": inputs.distill_T,
        "distill_T_source": inputs.distill_T_source,
        "files": {name: p.path for name, p in models.items()},
        # Per group: [wrong -> right, right -> wrong] from vanilla to distilled.
        "flips": {g: list(f) for g, f in flips.items()},
        "agreement_flips": {g: list(f) for g, f in agreement_flips.items()},
    }

    if len(inputs.vanilla) > 1 or len(inputs.distilled) > 1:
        if len(inputs.vanilla) < 2 or len(inputs.distilled) < 2:
            notes.append(
                "Seed comparison skipped: it needs at least two files per recipe "
                f"(got {len(inputs.vanilla)} vanilla, {len(inputs.distilled)} distilled)."
            )
        else:
            per_seed, compared = seed_comparison(
                labels, inputs.vanilla, inputs.distilled, inputs.tier_of_class, n_resamples, seed
            )
            tables["seeds"] = per_seed
            tables["seed_comparison"] = compared
    if inputs.grid:
        grid, floor = grid_table(inputs, boot, n_resamples=n_resamples, seed=seed, ci=ci)
        tables["grid"] = grid
        scalars["noise_floor"] = floor

    n_intervals = int(
        sum(len(df) for df in tables.values() if {"ci_low", "ci_high"} <= set(df.columns))
    )
    scalars["n_intervals"] = n_intervals
    identical = [
        (x, y)
        for i, x in enumerate(models)
        for y in list(models)[i + 1 :]
        if np.array_equal(models[x].logits, models[y].logits)
    ]
    caveat_list = caveats(
        metrics=metrics,
        tier_of_class=tiers,
        metadata={name: _scalar_metadata(p) for name, p in models.items()},
        n_intervals=n_intervals,
        ci=ci,
        diagnostics=diag,
        identical=identical,
    )
    found = build_findings(
        comparisons,
        flips=flips,
        agreement_flips=agreement_flips,
        metrics=metrics,
        temperature=tables["temperature"],
        caveat_list=caveat_list,
        temperature_paired=tables.get("temperature_paired"),
        temperature_gain=tables.get("temperature_gain"),
    )
    return Report(tables, scalars, notes, reliability, curves, found, tier_curves)


def _scalar_metadata(pred: Predictions) -> dict[str, Any]:
    return {k: _metadata(pred, k) for k in pred.metadata if _metadata(pred, k) is not None}
