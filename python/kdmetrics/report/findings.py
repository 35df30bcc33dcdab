"""Findings in words, generated from the report's numbers.

One sentence per property of the distilled student against the vanilla one
(capacity per tier, top-1 calibration, the full predictive distribution,
fidelity to the teacher), each with its paired-bootstrap interval, a verdict,
P(distilled better) and the flipped predictions behind it; then the teacher's
ceiling, the temperature-scaling test and the caveats the data call for.

Which property a metric belongs to, its label and its better direction come
from the metric registry (``kdmetrics.metrics.registry.METRICS``):

- *capacity*: metrics computed from predicted classes, and a logits metric
  where higher is better (top-k accuracy ranks classes);
- *top-1 calibration*: the binned metric (ECE);
- *full distribution*: the other logits metrics (NLL, Brier);
- *fidelity to the teacher*: metrics that need the teacher (KL, JS, top-1
  agreement).

Verdicts: the comparison engine's (:func:`kdmetrics.compare`, see
docs/conventions.md), read from its ``verdict`` column; the report runs the
engine with the roles vanilla (reference) and distilled (variant):

- **real**: the interval excludes 0;
- **directional**: it excludes 0, but the metric counts predicted classes
  (accuracy, macro F1) and fewer than :data:`MIN_FLIPS` predictions changed
  in the group, or (accuracy) the exact McNemar test on the flips gives
  ``p >= 1 - ci``, or the metric is top-1 agreement with the teacher and
  fewer than :data:`MIN_FLIPS` examples changed their agreement. The
  interval is then read as a direction, not a size;
- **inside the noise**: the interval contains 0. That is not "no effect":
  the data cannot tell the sign;
- **undefined**: the interval is not finite.

Rows without an engine verdict (the debiased calibration error) get the same
rule from :func:`verdict_of`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.comparison.engine import MIN_DISCORDANT
from kdmetrics.metrics.registry import METRICS, MetricSpec
from kdmetrics.report.markdown import fmt_ci, fmt_point

# Changed predictions below which a difference in a count metric is
# "directional": the comparison engine's threshold.
MIN_FLIPS = MIN_DISCORDANT
# Validation examples per class below which a group is called small.
SMALL_GROUP_PER_CLASS = 10

PROPERTIES = (
    "capacity",
    "top-1 calibration",
    "full distribution",
    "fidelity to the teacher",
)


# Comparisons the report adds beside the registry's: the debiased squared
# calibration error, the calibration comparison whose interval coverage the
# simulation supports (docs/intervals.md).
EXTRA_METRICS: dict[str, MetricSpec] = {
    "ce2_debiased": MetricSpec(
        "ce2_debiased", "CE² (debiased)", False, "logits", "binned", in_summary=False
    ),
}


def spec_of(metric: str) -> MetricSpec:
    return METRICS[metric] if metric in METRICS else EXTRA_METRICS[metric]


def property_of(metric: str) -> str | None:
    """The property a registry metric measures (None for pair metrics)."""
    s: MetricSpec = spec_of(metric)
    if s.statistic == "pair_mean":
        return None
    if s.needs == "reference":
        return "fidelity to the teacher"
    if s.statistic == "binned":
        return "top-1 calibration"
    if s.needs == "predictions" or s.statistic == "macro_f1" or s.higher_is_better:
        return "capacity"
    return "full distribution"


def counts_predictions(metric: str) -> bool:
    """Whether a metric's difference is made of changed predicted classes."""
    s = spec_of(metric)
    return s.needs == "predictions" or s.statistic == "macro_f1" or metric == "teacher_agreement"


@dataclass
class MetricFinding:
    """One metric in one group: distilled (``b``) against vanilla (``a``)."""

    metric: str
    label: str
    higher_is_better: bool
    group: str
    n: int
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    p_better: float
    verdict: str
    better: str | None
    flips_to_right: int
    flips_to_wrong: int
    flips_kind: str
    # Whether the simulation harness measured this interval's coverage inside
    # the nominal band (docs/intervals.md); the reason when not.
    trusted: bool = True
    flag_reason: str = ""
    # Why a verdict is "directional" (the engine's caveat), when it is.
    why: str = ""

    @property
    def flips(self) -> int:
        return self.flips_to_right + self.flips_to_wrong


@dataclass
class Finding:
    """One sentence: a property in a group, with the metrics behind it."""

    property: str
    group: str
    text: str
    metrics: list[MetricFinding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "group": self.group,
            "text": self.text,
            "metrics": [asdict(m) for m in self.metrics],
        }


@dataclass
class Findings:
    """Everything the report says in words."""

    findings: list[Finding]
    ceiling: str | None
    temperature: str | None
    caveats: list[str]
    names: tuple[str, str] = ("vanilla", "distilled")

    def lines(self) -> list[str]:
        out = [f.text for f in self.findings]
        out += [t for t in (self.ceiling, self.temperature) if t]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": {"a": self.names[0], "b": self.names[1], "delta": "b - a"},
            "min_flips_for_real": MIN_FLIPS,
            "findings": [f.to_dict() for f in self.findings],
            "teacher_ceiling": self.ceiling,
            "temperature_scaling": self.temperature,
            "caveats": list(self.caveats),
        }


def verdict_of(metric: str, low: float, high: float, flips: int) -> str:
    """The verdict of an interval when no engine verdict is at hand: the
    engine's rule on the number of changed predictions (no McNemar test)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "undefined"
    if low <= 0 <= high:
        return "inside the noise"
    if counts_predictions(metric) and flips < MIN_FLIPS:
        return "directional"
    return "real"


def row_verdict(row: Any, flips: int) -> tuple[str, str]:
    """(verdict, why) of one comparison row: the engine's ``verdict`` and
    ``caveat`` columns when the row has them (rows of :func:`kdmetrics.compare`),
    else :func:`verdict_of`; ``flips``: the changed predictions behind the row
    (agreement flips for top-1 agreement), used where the engine has no rule."""
    low, high = float(row.ci_low), float(row.ci_high)
    verdict = getattr(row, "verdict", None)
    few = f"only {flips} predictions changed, fewer than {MIN_FLIPS}"
    if not isinstance(verdict, str) or not verdict:
        verdict = verdict_of(str(row.metric), low, high, flips)
        return verdict, few if verdict == "directional" else ""
    if verdict == "directional":
        return verdict, str(getattr(row, "caveat", "") or "") or few
    return verdict, ""


def flip_counts(
    labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, mask: np.ndarray
) -> tuple[int, int]:
    """(a wrong and b right, a right and b wrong) among ``mask``."""
    ra, rb = pred_a[mask] == labels[mask], pred_b[mask] == labels[mask]
    return int((~ra & rb).sum()), int((ra & ~rb).sum())


def metric_findings(
    comparisons: pd.DataFrame,
    flips: Mapping[str, tuple[int, int]],
    agreement_flips: Mapping[str, tuple[int, int]],
    names: tuple[str, str] = ("vanilla", "distilled"),
) -> list[MetricFinding]:
    """A :class:`MetricFinding` per row of ``comparisons`` (columns metric,
    group, n, a, b, delta, ci_low, ci_high, p_better, and the engine's
    verdict and caveat where it has them, see :func:`row_verdict`) whose
    metric has a property. ``flips[group]`` = (to right, to wrong) of correctness;
    ``agreement_flips[group]`` the same for agreement with the teacher."""
    out = []
    for r in comparisons.itertuples(index=False):
        if (r.metric not in METRICS and r.metric not in EXTRA_METRICS) or property_of(
            r.metric
        ) is None:
            continue
        s = spec_of(r.metric)
        if r.metric == "teacher_agreement":
            to_right, to_wrong = agreement_flips.get(r.group, (0, 0))
            kind = "agreement with the teacher"
        else:
            to_right, to_wrong = flips.get(r.group, (0, 0))
            kind = "correctness"
        delta, low, high = float(r.delta), float(r.ci_low), float(r.ci_high)
        verdict, why = row_verdict(r, to_right + to_wrong)
        better = None
        if verdict in ("real", "directional"):
            better = names[1] if s.better(delta) else names[0]
        out.append(
            MetricFinding(
                r.metric,
                s.label,
                s.higher_is_better,
                str(r.group),
                int(r.n),
                float(r.a),
                float(r.b),
                delta,
                low,
                high,
                float(r.p_better),
                verdict,
                better,
                int(to_right),
                int(to_wrong),
                kind,
                bool(getattr(r, "trusted", True)),
                str(getattr(r, "flag_reason", "") or ""),
                why,
            )
        )
    return out


def _clause(m: MetricFinding, names: tuple[str, str]) -> str:
    width = abs(m.ci_high - m.ci_low)
    direction = "higher is better" if m.higher_is_better else "lower is better"
    lead = f"{m.better} better" if m.better else m.verdict
    detail = (
        f"{names[0]} {fmt_point(m.a, width)}, {names[1]} {fmt_point(m.b, width)}; "
        f"delta {fmt_ci(m.delta, m.ci_low, m.ci_high)}, {direction}; "
        f"P({names[1]} better) = {m.p_better:.2f}; {m.verdict}"
    )
    if m.verdict == "directional":
        detail += f": {m.why}"
    if not m.trusted:
        detail += "; interval not trusted, see caveats"
    return f"{m.label}: {lead} ({detail})"


def _flip_text(ms: Sequence[MetricFinding], names: tuple[str, str]) -> str:
    parts = []
    for kind in dict.fromkeys(m.flips_kind for m in ms):
        m = next(x for x in ms if x.flips_kind == kind)
        if kind == "correctness":
            parts.append(
                f"flipped predictions {names[0]} -> {names[1]}: {m.flips_to_right} wrong to "
                f"right, {m.flips_to_wrong} right to wrong"
            )
        else:
            parts.append(
                f"agreement with the teacher: {m.flips_to_right} predictions gained, "
                f"{m.flips_to_wrong} lost"
            )
    return "; ".join(parts)


def _sentence(prop: str, group: str, ms: Sequence[MetricFinding], names) -> str:
    where = f"all {ms[0].n} examples" if group == "all" else f"{group} tier, {ms[0].n} examples"
    clauses = "; ".join(_clause(m, names) for m in ms)
    return f"{prop.capitalize()} ({where}): {clauses}. {_flip_text(ms, names).capitalize()}."


def _signature(ms: Sequence[MetricFinding]) -> tuple[tuple[str, str | None], ...]:
    return tuple((m.verdict, m.better) for m in ms)


def sentences(
    metric_rows: Sequence[MetricFinding], names: tuple[str, str] = ("vanilla", "distilled")
) -> list[Finding]:
    """One :class:`Finding` per property and group where it matters: capacity
    in every group; the other properties overall, and in a tier only where the
    verdict or the better model differs from the overall one."""
    out = []
    for prop in PROPERTIES:
        rows = [m for m in metric_rows if property_of(m.metric) == prop]
        group_names = list(dict.fromkeys(m.group for m in rows))
        by_group = {g: [m for m in rows if m.group == g] for g in group_names}
        overall = _signature(by_group.get("all", []))
        for g in group_names:
            ms = by_group[g]
            if prop != "capacity" and g != "all" and _signature(ms) == overall:
                continue
            if prop == "capacity" and g != "all":
                # Per tier, the class-averaged metric is what the tier is about.
                ms = [m for m in ms if spec_of(m.metric).statistic == "macro_f1"] or ms
            out.append(Finding(prop, g, _sentence(prop, g, ms, names), list(ms)))
    return out


def ceiling_sentence(metrics: pd.DataFrame, student: str = "distilled") -> str | None:
    """The teacher's own macro F1 per group, and how much of it the student reaches."""
    if "macro_f1" not in metrics.columns:
        return None
    t = metrics[metrics.model == "teacher"].set_index("group")["macro_f1"]
    s = metrics[metrics.model == student].set_index("group")["macro_f1"]
    label = METRICS["macro_f1"].label
    parts = []
    for g in t.index:
        tv, sv = float(t[g]), float(s.get(g, math.nan))
        share = f", {sv / tv:.0%} of it" if tv > 0 and math.isfinite(sv) else ""
        parts.append(f"{g} {tv:.3f} ({student} {sv:.3f}{share})")
    text = f"Teacher ceiling: the teacher's own {label} is " + ", ".join(parts) + "."
    if "tail" in t.index:
        text += (
            f" The tail is bounded by what the data let the teacher learn: a student "
            f"distilled from it is not expected to pass {float(t['tail']):.3f} there."
        )
    return text


def temperature_sentence(
    temp: pd.DataFrame | None,
    paired: pd.DataFrame | None = None,
    gain: pd.DataFrame | None = None,
) -> str | None:
    """What one fitted temperature does to each student, metric by metric
    (point estimates on the evaluation half of the split)."""
    if temp is None or "model" not in temp.columns or "temperature" not in temp.columns:
        return None
    t = temp.set_index("model")
    if not {"vanilla", "distilled"} <= set(t.index):
        return None
    parts = []
    for name in ("vanilla", "distilled"):
        tv = float(t.loc[name, "temperature"])
        kind = "over-confident" if tv > 1 else "under-confident" if tv < 1 else "calibrated"
        parts.append(f"{name} T* = {tv:.2f} ({kind})")
    text = "Temperature scaling (fitted on one half, scored on the other): " + ", ".join(parts)
    clauses = []
    for col in t.columns:
        if not col.endswith("_raw"):
            continue
        m = col[: -len("_raw")]
        if f"{m}_scaled" not in t.columns or m not in METRICS:
            continue
        s = METRICS[m]
        v_raw, v_sc = float(t.loc["vanilla", col]), float(t.loc["vanilla", f"{m}_scaled"])
        d_raw, d_sc = float(t.loc["distilled", col]), float(t.loc["distilled", f"{m}_scaled"])
        raw_gain = d_raw - v_raw
        if not s.better(raw_gain):
            verdict = f"distillation did not improve it raw ({v_raw:#.4g} vs {d_raw:#.4g})"
        elif s.better(v_sc - d_raw) or v_sc == d_raw:
            verdict = (
                f"scaling the vanilla student alone ({v_raw:#.4g} -> {v_sc:#.4g}) reaches the "
                f"distilled student's raw {d_raw:#.4g}"
            )
        else:
            verdict = (
                f"scaling the vanilla student ({v_raw:#.4g} -> {v_sc:#.4g}) does not reach the "
                f"distilled student's raw {d_raw:#.4g}"
            )
        clauses.append(f"{s.label}: {verdict}; distilled scaled {d_sc:#.4g}")
    if clauses:
        text += ". " + "; ".join(clauses)
    if paired is None or not len(paired):
        return text + ". Point estimates on the evaluation half, without intervals."
    tests = []
    for r in paired.itertuples(index=False):
        if r.metric not in METRICS and r.metric not in EXTRA_METRICS:
            continue
        label = spec_of(r.metric).label
        low, high = float(r.ci_low), float(r.ci_high)
        verdict = "inside the noise" if low <= 0 <= high else "real"
        flag = "" if bool(getattr(r, "trusted", True)) else ", interval not trusted"
        tests.append(
            f"{label} {r.comparison} {fmt_ci(float(r.delta), low, high)} ({verdict}{flag})"
        )
    text += ". Paired tests on the evaluation half: " + "; ".join(tests)
    if gain is not None and len(gain):
        parts = []
        for r in gain.itertuples(index=False):
            label = spec_of(r.metric).label if r.metric in METRICS else r.metric
            if np.isfinite(r.fraction):
                parts.append(f"{label} {r.fraction:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]")
            else:
                parts.append(f"{label}: not estimable ({r.reason})")
        text += (
            ". Gain of scaling the vanilla student as a fraction of distillation's gain: "
            + "; ".join(parts)
        )
    return text + "."


def caveats(
    *,
    metrics: pd.DataFrame,
    tier_of_class: np.ndarray | None,
    metadata: Mapping[str, Mapping[str, Any]],
    n_intervals: int,
    ci: float,
    diagnostics: pd.DataFrame | None,
    identical: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Caveats the data call for: small groups, a checkpoint chosen on the
    analysed split, the number of intervals, saturated teacher targets,
    students that did not share their initial weights, identical inputs."""
    out = []
    teacher = metrics[metrics.model == "teacher"].set_index("group")
    if tier_of_class is not None:
        for code, g in enumerate(("head", "mid", "tail")):
            if g not in teacher.index:
                continue
            n = int(teacher.loc[g, "n"])
            k = int((np.asarray(tier_of_class) == code).sum())
            if k and n / k < SMALL_GROUP_PER_CLASS:
                out.append(
                    f"Small group: the {g} tier has {n} validation examples over {k} classes "
                    f"({n / k:.1f} per class). A class's F1 there rests on a handful of "
                    "examples, one changed prediction moves a class's F1 a lot, and a small "
                    "group's sample ECE is biased upward: read its intervals as wide."
                )
    chosen = []
    for name, meta in metadata.items():
        sel, split = meta.get("selected_on"), meta.get("split")
        if sel is None:
            continue
        if split is None or str(sel) == str(split):
            chosen.append(f"{name} (selected_on={sel}" + (f", split={split})" if split else ")"))
    if chosen:
        out.append(
            "Checkpoint chosen on the analysed split: "
            + ", ".join(chosen)
            + ". The best epoch was picked on these very examples, so their scores are "
            "optimistic and the comparison is not on held-out data; evaluate on a test split "
            "for a final number."
        )
    expected = n_intervals * (1 - ci)
    out.append(
        f"This report prints {n_intervals} intervals at {ci:.0%}: even if the two students "
        f"were interchangeable, about {expected:.1f} of them would exclude 0 by chance. Give "
        "weight to the findings above that agree across metrics and tiers, not to one "
        "borderline interval."
    )
    if diagnostics is not None:
        sat = diagnostics[diagnostics["saturated"]]
        for r in sat.itertuples(index=False):
            out.append(
                f"Saturated teacher targets: on {r.source}, the teacher's mean top-1 "
                f"probability at T = {r.temperature:g} is {r.mean_max_prob:.3f} (mean entropy "
                f"{r.mean_entropy:.3g} nats). The soft targets are almost one-hot, so "
                "distillation carries little beyond the hard labels; a teacher that fits its "
                "training set perfectly does this. Use a higher T or a teacher that was not "
                "trained on these examples."
            )
    a, b = metadata.get("vanilla", {}), metadata.get("distilled", {})
    ia, ib = a.get("init_sha256"), b.get("init_sha256")
    if ia and ib and ia != ib:
        out.append(
            "The students did not start from the same weights (their init_sha256 differ): "
            "the comparison mixes the loss with the initialisation."
        )
    for x, y in identical:
        out.append(f"{x} and {y} have identical logits: their comparison is empty.")
    return out


def group_flips(
    labels: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    group_masks: Mapping[str, np.ndarray],
) -> dict[str, tuple[int, int]]:
    """Per group, (wrong to right, right to wrong) from model a to model b
    against ``labels`` (pass the teacher's predictions as ``labels`` for
    agreement flips)."""
    return {g: flip_counts(labels, pred_a, pred_b, m) for g, m in group_masks.items()}


def build_findings(
    comparisons: pd.DataFrame,
    *,
    flips: Mapping[str, tuple[int, int]],
    agreement_flips: Mapping[str, tuple[int, int]],
    metrics: pd.DataFrame,
    temperature: pd.DataFrame | None,
    caveat_list: list[str],
    names: tuple[str, str] = ("vanilla", "distilled"),
    temperature_paired: pd.DataFrame | None = None,
    temperature_gain: pd.DataFrame | None = None,
) -> Findings:
    """Findings from the comparison rows (see :func:`metric_findings`), the
    per-model metrics and the temperature table; ``caveat_list`` from
    :func:`caveats`."""
    rows = metric_findings(comparisons, flips, agreement_flips, names)
    return Findings(
        sentences(rows, names),
        ceiling_sentence(metrics, names[1]),
        temperature_sentence(temperature, temperature_paired, temperature_gain),
        [*caveat_list, *untrusted_caveats(rows)],
        names,
    )


def untrusted_caveats(rows: Sequence[MetricFinding]) -> list[str]:
    """One caveat per metric whose intervals the coverage simulation does not
    support, naming the groups and the measured reason."""
    out = []
    by_metric: dict[str, list[MetricFinding]] = {}
    for m in rows:
        if not m.trusted:
            by_metric.setdefault(m.metric, []).append(m)
    for ms in by_metric.values():
        groups = ", ".join(m.group for m in ms)
        out.append(
            f"Interval not trusted for {ms[0].label} ({groups}): {ms[0].flag_reason}. "
            "Its verdicts above are a reading of the point estimate, not a finding."
        )
    return out
