"""The distillation report: every table of ``kdmetrics report`` as data.

``load_inputs`` reads and validates the prediction files (everything that can
go wrong with user input fails here, before anything is written);
``build_report`` computes the tables with the library's own functions and
returns a :class:`Report` (a dict of DataFrames plus scalars and notes).
Rendering (text, Markdown, JSON, CSV) lives in ``kdmetrics.report.render``,
figures in ``kdmetrics.report.plots``.

Definitions used below (also written into ``report.md``):

- **Gain fraction reproduced by temperature scaling** of a metric M (ECE or
  NLL, lower is better), on the evaluation half of a seeded split-half:
  ``(M(vanilla raw) - M(vanilla scaled)) / (M(vanilla raw) - M(distilled raw))``.
  1 means fitting one temperature to the vanilla student recovers all of
  distillation's gain, 0 none, > 1 more than all of it. When distillation's
  gain is <= 0 (the distilled student is not better raw) the fraction is
  undefined and reported as NaN with a note.
- **Noise floor** of a grid: for each metric, the width ``ci_high - ci_low``
  of the paired-bootstrap interval of the reference comparison (primary
  distilled - primary vanilla, group ``all``). A grid configuration whose
  difference from the reference model (the primary vanilla) is smaller in
  absolute value than that width is flagged ``within_noise``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.io.predictions import Predictions, check_aligned, load_predictions
from kdmetrics.metrics.registry import DEFAULT_BOOTSTRAP_METRICS, METRICS
from kdmetrics.metrics.selective import DEFAULT_THRESHOLDS, sla_threshold, threshold_table
from kdmetrics.metrics.summary import summary
from kdmetrics.metrics.temperature import fit_temperature, split_half
from kdmetrics.report.findings import Findings, build_findings, caveats, group_flips
from kdmetrics.report.tables import (
    agreement_table,
    aurc_table,
    groups,
    per_class_f1,
    selective_by_tier,
    soft_target_diagnostics,
)
from kdmetrics.tiers import tier_codes, tiers_from_counts

# Per-seed metrics compared across training seeds: the registry's defaults.
SEED_METRICS: tuple[str, ...] = DEFAULT_BOOTSTRAP_METRICS
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


def _load(path: str) -> Predictions:
    pred = load_predictions(path)
    finite = np.isfinite(pred.logits)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(
            f"{path}: logits contain {int((~finite).sum())} non-finite value(s) (NaN/inf), "
            f"first in row {row}"
        )
    return pred


def read_train_counts(path: str) -> np.ndarray:
    """K training counts from a .npy, .npz (key ``train_counts`` or a single
    array) or text file (whitespace/comma separated)."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                if "train_counts" in z.files:
                    counts = z["train_counts"]
                elif len(z.files) == 1:
                    counts = z[z.files[0]]
                else:
                    raise ValueError(f"no 'train_counts' key among {sorted(z.files)}")
        elif path.endswith(".npy"):
            counts = np.load(path, allow_pickle=False)
        else:
            with open(path) as f:
                counts = np.array(f.read().replace(",", " ").split(), dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{path}: cannot read training counts ({e})") from None
    return np.asarray(counts)


def _tiers(
    files: list[Predictions], train_counts_path: str | None, k: int, sizes: tuple[int, int]
) -> tuple[np.ndarray | None, str]:
    if train_counts_path is not None:
        counts = read_train_counts(train_counts_path)
        if counts.shape != (k,):
            raise ValueError(
                f"{train_counts_path}: has {counts.size} training counts but the models have "
                f"{k} classes"
            )
        try:
            return tiers_from_counts(counts, sizes), f"training counts from {train_counts_path}"
        except ValueError as e:
            raise ValueError(f"{train_counts_path}: {e}") from None
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
            raise ValueError(f"{f.path}: {e}") from None
        if found is None:
            found = (tiers, f)
        elif not np.array_equal(found[0], tiers):
            i = int(np.flatnonzero(found[0] != tiers)[0])
            raise ValueError(
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
        raise ValueError(f"{path}: no such file")
    try:
        if path.endswith(".npy"):
            z = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as f:
                if "logits" not in f.files:
                    raise ValueError(f"no 'logits' key among {sorted(f.files)}")
                z = f["logits"]
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: cannot read teacher logits ({e})") from None
    if z.ndim != 2 or z.dtype.kind != "f":
        raise ValueError(f"{path}: teacher logits must be a 2-D float array, got {z.shape}")
    return z


def _distill_temperature(
    distill_T: float | None, distilled: Predictions, teacher: Predictions
) -> tuple[float | None, str]:
    """The distillation temperature: the argument, else the distilled file's
    metadata ``T`` (when its ``alpha`` is not 0), else the teacher file's."""
    if distill_T is not None:
        t = float(distill_T)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"distillation temperature must be a finite number > 0, got {t}")
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
) -> ReportInputs:
    """Loads every file, rejects non-finite logits, checks that all files are
    aligned (same ids, labels, N and K) and derives the tiers (head and mid
    sizes ``tier_sizes``; stored ``tier_of_class`` is used as it is).

    ``teacher_logits``: the teacher's logits on the training set (a teacher
    file), for the soft-target diagnostics; ``distill_T``: the distillation
    temperature (default: from the files' metadata)."""
    if not vanilla or not distilled:
        raise ValueError("need at least one --vanilla and one --distilled file")
    t = _load(teacher)
    v = [_load(p) for p in vanilla]
    d = [_load(p) for p in distilled]
    m = {name: _load(p) for name, p in (models or {}).items()}
    g = [_load(p) for p in grid or []]
    everything = [t, *v, *d, *m.values(), *g]
    sha = check_aligned(everything)
    tiers, source = _tiers(everything, train_counts, t.n_classes, tier_sizes)
    targets = None
    if teacher_logits is not None:
        targets = read_teacher_logits(teacher_logits)
        if targets.shape[1] != t.n_classes:
            raise ValueError(
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
    labels: np.ndarray, vanilla: Any, distilled: Any, seed: int
) -> tuple[pd.DataFrame, dict[str, float], list[str]]:
    """Split-half temperature scaling of both students and the gain fractions."""
    from kdmetrics.metrics.calibration import ece
    from kdmetrics.metrics.scoring import nll

    fit_idx, eval_idx = split_half(labels.shape[0], seed)
    rows = []
    for name, logits in (("vanilla", vanilla), ("distilled", distilled)):
        fit = fit_temperature(labels[fit_idx], logits[fit_idx])
        y, z = labels[eval_idx], logits[eval_idx]
        t = float(fit)
        rows.append(
            {
                "model": name,
                "temperature": t,
                "ece_raw": ece(y, z),
                "ece_scaled": ece(y, z, temperature=t),
                "nll_raw": nll(y, z),
                "nll_scaled": nll(y, z, temperature=t),
                "n_fit": int(fit_idx.size),
                "n_eval": int(eval_idx.size),
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    fractions: dict[str, float] = {}
    notes: list[str] = []
    for metric in ("ece", "nll"):
        v_raw = table.loc["vanilla", f"{metric}_raw"]
        v_scaled = table.loc["vanilla", f"{metric}_scaled"]
        gain = v_raw - table.loc["distilled", f"{metric}_raw"]
        if gain > 0:
            fractions[metric] = float((v_raw - v_scaled) / gain)
        else:
            fractions[metric] = float("nan")
            notes.append(
                f"Distillation did not lower {metric.upper()} on the evaluation half "
                f"(vanilla {v_raw:.4f}, distilled {v_raw - gain:.4f}): there is no gain for "
                "temperature scaling to reproduce, so the fraction is undefined (NaN)."
            )
    return table, fractions, notes


def seed_comparison(
    labels: np.ndarray,
    vanilla: list[Predictions],
    distilled: list[Predictions],
    tier_of_class: Any,
    n_resamples: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-seed metrics of both recipes and ``compare_seeds`` per metric."""
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
        a = table.loc[table.recipe == "vanilla", metric].to_numpy()
        b = table.loc[table.recipe == "distilled", metric].to_numpy()
        res = compare_seeds(a, b, n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                "metric": metric,
                "n_vanilla": a.size,
                "n_distilled": b.size,
                "mean_vanilla": float(a.mean()),
                "mean_distilled": float(b.mean()),
                "difference": float(b.mean() - a.mean()),
                "ci_low": float(res.ci_low),
                "ci_high": float(res.ci_high),
                "p_value": float(res.p_value),
                "cohens_d": float(res.cohens_d),
            }
        )
    return table, pd.DataFrame(rows)


def grid_table(
    inputs: ReportInputs, bootstrap: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every grid configuration's overall metrics, its difference from the
    reference (primary vanilla) and the noise-floor flag per metric."""
    all_rows = bootstrap[bootstrap["group"] == "all"].set_index("metric")
    floor = {
        m: float(all_rows.loc[m, "ci_high"] - all_rows.loc[m, "ci_low"]) for m in all_rows.index
    }
    reference = _summary(inputs, inputs.vanilla[0]).loc["all"]
    configs = [("vanilla (reference)", inputs.vanilla[0]), ("distilled", inputs.distilled[0])]
    configs += [(f.name, f) for f in inputs.grid]
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
            row[f"within_noise_{m}"] = bool(abs(s[m] - reference[m]) < floor[m])
        rows.append(row)
    return pd.DataFrame(rows), floor


def _agreement_comparison(
    inputs: ReportInputs, n_resamples: int, ci: float, seed: int
) -> pd.DataFrame:
    """Paired intervals of top-1 agreement with the teacher, distilled -
    vanilla, per group: agreement is accuracy against the teacher's predicted
    class, so each group is a paired bootstrap of that accuracy on the group's
    examples (each group resampled on its own)."""
    from kdmetrics import paired_bootstrap
    from kdmetrics.metrics.agreement import predicted_classes

    labels = inputs.labels
    t_pred = predicted_classes("report", inputs.teacher.logits, "teacher")
    v_pred = predicted_classes("report", inputs.vanilla[0].logits, "vanilla")
    d_pred = predicted_classes("report", inputs.distilled[0].logits, "distilled")
    rows = []
    for group, mask in groups(labels, inputs.tier_of_class):
        if not mask.any():
            continue
        table, deltas = paired_bootstrap(
            t_pred[mask],
            v_pred[mask],
            d_pred[mask],
            metrics=("accuracy",),
            n_resamples=n_resamples,
            ci=ci,
            seed=seed,
            return_deltas=True,
        )
        r = table.iloc[0]
        d = deltas[("accuracy", "all")]
        rows.append(
            {
                "metric": "teacher_agreement",
                "group": group,
                "a": float(r["a"]),
                "b": float(r["b"]),
                "delta": float(r["delta"]),
                "median_delta": float(r["median_delta"]),
                "ci_low": float(r["ci_low"]),
                "ci_high": float(r["ci_high"]),
                "p_better": float(np.mean(d > 0)),
                "n": int(mask.sum()),
            }
        )
    return pd.DataFrame(rows)


def _p_better(boot: pd.DataFrame, deltas: dict[tuple[str, str], np.ndarray]) -> np.ndarray:
    """Per row, the fraction of resamples in which the distilled student is
    strictly better (delta > 0 where higher is better, < 0 where lower is)."""
    out = []
    for r in boot.itertuples(index=False):
        d = deltas[(r.metric, r.group)]
        better = d > 0 if METRICS[r.metric].higher_is_better else d < 0
        out.append(float(np.mean(better)))
    return np.array(out)


def build_report(
    inputs: ReportInputs,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    ci: float = 0.95,
) -> Report:
    """Computes every table of the report with the library's functions, and
    the findings in words (``kdmetrics.report.findings``)."""
    from kdmetrics import paired_bootstrap
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
    boot, deltas = paired_bootstrap(
        labels,
        v.logits,
        d.logits,
        tier_of_class=inputs.tier_of_class,
        metrics=comparison_metrics(),
        reference_logits=inputs.teacher.logits,
        n_resamples=n_resamples,
        ci=ci,
        seed=seed,
        return_deltas=True,
    )
    boot = boot.reset_index(drop=True)
    boot["p_better"] = _p_better(boot, deltas)
    comparisons = boot[["metric", "group", "n", "a", "b", "delta", "ci_low", "ci_high", "p_better"]]
    if "teacher_agreement" not in set(boot["metric"]):
        agreement_ci = _agreement_comparison(inputs, n_resamples, ci, seed)
        comparisons = pd.concat([comparisons, agreement_ci[comparisons.columns]], ignore_index=True)
    else:
        agreement_ci = None

    group_masks = dict(groups(labels, inputs.tier_of_class))
    v_pred = predicted_classes("report", v.logits, "vanilla")
    d_pred = predicted_classes("report", d.logits, "distilled")
    t_pred = predicted_classes("report", inputs.teacher.logits, "teacher")
    flips = group_flips(labels, v_pred, d_pred, group_masks)
    agreement_flips = group_flips(t_pred, v_pred, d_pred, group_masks)

    temp_table, fractions, temp_notes = temperature_test(labels, v.logits, d.logits, seed)
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
        "temperature": temp_table.reset_index(),
        "thresholds": pd.concat(thresholds, ignore_index=True),
        "sla": pd.DataFrame(sla_rows),
        "per_class_f1": per_class,
        "teacher_agreement": agreement_table(
            labels, logits, inputs.teacher.logits, tier_of_class=tiers
        ),
        "selective_by_tier": selective_by_tier(labels, logits, tier_of_class=tiers),
        "aurc": aurc_table(labels, logits, tier_of_class=tiers),
        "soft_targets": diag,
    }
    if agreement_ci is not None:
        tables["agreement_bootstrap"] = agreement_ci
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
        grid, floor = grid_table(inputs, boot)
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
    )
    return Report(tables, scalars, notes, reliability, curves, found, tier_curves)


def _scalar_metadata(pred: Predictions) -> dict[str, Any]:
    return {k: _metadata(pred, k) for k in pred.metadata if _metadata(pred, k) is not None}
