"""Rendering a :class:`~kdmetrics.report.Report`: the terminal summary,
``report.md``, ``report.json``, one CSV per table and the figures, written
atomically (into a temporary folder beside the target, renamed at the end).

The findings in words come first everywhere (terminal, ``report.md``, and
``report.json["findings"]`` as structured fields); the tables follow. Numbers
use significant digits (``kdmetrics.report.markdown``), and every Markdown
table and paragraph stands between blank lines, so ``report.md`` renders the
same on GitHub, in Python-Markdown and in MkDocs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.io.output import check_output_folder, write_documents, write_output_folder
from kdmetrics.metrics.registry import METRICS
from kdmetrics.report.build import Report
from kdmetrics.report.findings import Findings, row_verdict
from kdmetrics.report.markdown import (
    bullet_list,
    fmt_ci,
    markdown_block,
    markdown_table,
    text_table,
)

TableFn = Callable[..., str]
TIER_GROUPS = ("all", "head", "mid", "tail")


def _label(metric: str) -> str:
    return METRICS[metric].label if metric in METRICS else metric


def comparison_table(boot: pd.DataFrame, flips: dict[str, int] | None = None) -> pd.DataFrame:
    """The bootstrap rows as a reader wants them: metric label and direction,
    both models, the difference with its interval, P(distilled better), verdict."""
    rows = []
    for r in boot.itertuples(index=False):
        spec = METRICS.get(r.metric)
        n_flips = (flips or {}).get(r.group, 0)
        rows.append(
            {
                "metric": _label(r.metric),
                "better": "higher" if spec is None or spec.higher_is_better else "lower",
                "group": r.group,
                "n": int(r.n),
                "vanilla": float(r.a),
                "distilled": float(r.b),
                "delta [CI]": fmt_ci(float(r.delta), float(r.ci_low), float(r.ci_high)),
                "P(distilled better)": round(float(r.p_better), 3),
                "verdict": row_verdict(r, n_flips)[0],
            }
        )
    return pd.DataFrame(rows)


def _flips_by_group(report: Report) -> tuple[dict[str, int], dict[str, int]]:
    """Total correctness flips and agreement flips per group."""
    s = report.scalars
    correct = {g: int(sum(f)) for g, f in s.get("flips", {}).items()}
    agree = {g: int(sum(f)) for g, f in s.get("agreement_flips", {}).items()}
    return correct, agree


def findings_lines(findings: Findings | None) -> tuple[list[str], list[str]]:
    if findings is None:
        return [], []
    return findings.lines(), list(findings.caveats)


def _pivot_selective(t: pd.DataFrame) -> pd.DataFrame:
    """Rows (model, threshold), columns coverage and accuracy per group."""
    out = None
    for g in dict.fromkeys(t["group"]):
        part = t[t.group == g][["model", "threshold", "coverage", "accuracy"]].rename(
            columns={"coverage": f"{g} coverage", "accuracy": f"{g} accuracy"}
        )
        out = part if out is None else out.merge(part, on=["model", "threshold"])
    assert out is not None
    return out.reset_index(drop=True)


def sections(report: Report, table: TableFn) -> list[tuple[str, str]]:
    """(title, body) pairs shared by the terminal summary and ``report.md``;
    ``table`` formats a DataFrame (text or Markdown). Bodies are blocks
    separated by blank lines."""
    t, s = report.tables, report.scalars
    out: list[tuple[str, str]] = []
    head = [
        f"examples: {s['n_examples']}, classes: {s['n_classes']}",
        f"ids SHA-256: {s['ids_sha256']}",
        f"tiers: {s['tier_source']}",
        *[f"{k}: {v}" for k, v in s["files"].items()],
    ]
    out.append(("Inputs", bullet_list(head)))
    metric_cols = ["model", "group", "n"] + [
        m for m in METRICS if m in t["metrics"].columns and METRICS[m].in_summary
    ]
    out.append(
        (
            "Metrics per model and tier",
            markdown_block(
                "KL and JS are to the teacher, in nats; "
                + "; ".join(f"{METRICS[m].label}: {METRICS[m].direction}" for m in metric_cols[3:]),
                table(t["metrics"], metric_cols),
            ),
        )
    )
    correct_flips, agree_flips = _flips_by_group(report)
    boot = t["bootstrap"]
    cmp_rows = [boot]
    if "agreement_bootstrap" in t:
        cmp_rows.append(t["agreement_bootstrap"])
    flips_for = {
        **{("c", g): n for g, n in correct_flips.items()},
        **{("a", g): n for g, n in agree_flips.items()},
    }
    parts = []
    for df in cmp_rows:
        kind = "a" if (df["metric"] == "teacher_agreement").all() else "c"
        parts.append(comparison_table(df, {g: flips_for.get((kind, g), 0) for g in TIER_GROUPS}))
    cmp = pd.concat(parts, ignore_index=True)
    body = [
        f"{s['n_resamples']} paired resamples, seed {s['seed']}, {s['ci']:.0%} intervals "
        "(each row's measured method: column method of bootstrap.csv), from kdmetrics.compare "
        "with reference vanilla and variant distilled, whose verdicts these are; "
        "delta = distilled - vanilla on the full data. P(distilled better) is the "
        "fraction of resamples in which the distilled student is strictly better, whichever "
        "way the metric points. Top-1 agreement rows: each group resampled on its own.",
        table(cmp),
    ]
    acc = boot[boot["metric"] == "accuracy"]
    if {"right_to_wrong", "wrong_to_right"} <= set(acc.columns) and len(acc):
        flips = (
            acc[["group", "right_to_wrong", "wrong_to_right"]]
            .astype({"right_to_wrong": "int64", "wrong_to_right": "int64"})
            .rename(
                columns={
                    "right_to_wrong": "vanilla right, distilled wrong",
                    "wrong_to_right": "distilled right, vanilla wrong",
                }
            )
        )
        body += ["Flipped predictions (correctness):", table(flips)]
    out.append(("Paired bootstrap: distilled - vanilla", markdown_block(*body)))

    agree = t["teacher_agreement"]
    out.append(
        (
            "Top-1 agreement with the teacher",
            markdown_block(
                "Fraction of examples where the model predicts the teacher's class "
                "(both_right: and the teacher is right; agree_wrong: and it is wrong).",
                table(agree[agree.model != "teacher"]),
            ),
        )
    )
    out.append(("Macro F1 against the teacher's ceiling", table(t["teacher_ceiling"])))

    pc = t["per_class_f1"]
    if "tier" in pc.columns:
        shown = pc[pc["tier"] == "tail"].sort_values("delta", na_position="last")
        what = "tail classes, sorted by delta (all classes in per_class_f1.csv)"
    else:
        shown = pc.sort_values("delta", na_position="last")
        what = "all classes, sorted by delta"
    out.append(
        (
            "Per-class F1",
            markdown_block(
                f"F1 per class from counts over all examples, {what}; delta = distilled - "
                "vanilla; nan = the class is absent from labels and predictions.",
                table(shown),
            ),
        )
    )

    temp = t["temperature"]
    n_eval = int(temp["n_eval"].iloc[0]) if "n_eval" in temp.columns else None
    n_fit = int(temp["n_fit"].iloc[0]) if "n_fit" in temp.columns else None
    body = [
        f"T fitted on a seeded half of validation (seed {s['temperature_seed']}, {n_fit} "
        f"examples), evaluated on the other half ({n_eval} examples).",
        table(temp),
    ]
    if "ts_gain_fraction_ece" in s:
        body.append(
            "Fraction of distillation's gain reproduced by temperature-scaling vanilla alone, "
            "(vanilla_raw - vanilla_scaled) / (vanilla_raw - distilled_raw) on the evaluation "
            f"half: ECE {_num(s['ts_gain_fraction_ece'])}, NLL "
            f"{_num(s['ts_gain_fraction_nll'])} (1 = all of the gain, 0 = none, >1 = more "
            "than all; nan = distillation had no gain)."
        )
    out.append(("Temperature scaling", markdown_block(*body)))

    out.append(
        (
            "Selective prediction: coverage and accuracy at confidence >= t",
            table(t["thresholds"]),
        )
    )
    sel = t["selective_by_tier"]
    if sel["group"].nunique() > 1:
        out.append(
            (
                "Selective prediction per tier",
                markdown_block(
                    "Coverage = fraction of the tier's examples kept at confidence >= t; "
                    "accuracy = of those kept. Does a threshold drop the tail first?",
                    table(_pivot_selective(sel)),
                ),
            )
        )
    out.append(
        (
            "AURC: area under the risk-coverage curve",
            markdown_block(
                "Mean error rate of the k most confident examples over k = 1..n (lower is "
                "better); aurc_optimal is the value with every error ranked last, "
                "excess_aurc = aurc - aurc_optimal measures the ranking alone.",
                table(t["aurc"]),
            ),
        )
    )
    out.append((f"{s['sla_target']:.0%}-accuracy SLA threshold per model", table(t["sla"])))
    diag = t["soft_targets"]
    out.append(
        (
            "Teacher soft targets",
            markdown_block(
                "Mean entropy (nats; max_entropy = ln K) and mean top-1 probability of the "
                "teacher's softmax(z / T) at T = 1 and at the distillation temperature "
                f"(T source: {s.get('distill_T_source', '')}); saturated = mean top-1 "
                "probability > 0.99.",
                table(diag),
            ),
        )
    )

    if "seed_comparison" in t:
        seed_cols = [c for c in t["seeds"].columns if c != "file"]
        out.append(
            (
                "Training seeds",
                markdown_block(
                    table(t["seeds"], seed_cols),
                    "compare_seeds (difference = mean distilled - mean vanilla):",
                    table(t["seed_comparison"]),
                ),
            )
        )
    if "grid" in t:
        grid = t["grid"]
        cols = [c for c in grid.columns if c != "file"]
        body = [
            "delta_* = configuration - vanilla; verdict_* comes from its own paired interval, "
            "adjusted across the grid; noise_floor_rule_* is the old rule of thumb (|delta| "
            "below the reference comparison's interval width), not a test.",
            table(grid, cols),
        ]
        floor = s.get("noise_floor")
        if isinstance(floor, dict) and floor:
            body.insert(
                0,
                "Rule-of-thumb noise floor (width of the reference comparison's interval): "
                + ", ".join(f"{_label(m)} {_num(w)}" for m, w in floor.items()),
            )
        out.append(("Grid against the vanilla reference", markdown_block(*body)))
    if report.notes:
        out.append(("Notes", bullet_list(report.notes)))
    return out


def _num(value: Any) -> str:
    from kdmetrics.report.markdown import fmt_value

    return fmt_value(value)


def terminal_summary(report: Report) -> str:
    """Findings first, then every section as plain-text tables."""
    lines, cav = findings_lines(report.findings)
    parts = ["kdmetrics report", "", "== Findings =="]
    parts += [f"- {x}" for x in lines]
    if cav:
        parts += ["", "Caveats:", *[f"- {c}" for c in cav]]
    for title, body in sections(report, text_table):
        parts += ["", f"== {title} ==", body]
    return "\n".join(parts)


def findings_text(report: Report) -> str:
    """The findings and caveats alone, as printed at the end of the demo."""
    lines, cav = findings_lines(report.findings)
    parts = ["== Findings ==", *[f"- {x}" for x in lines]]
    if cav:
        parts += ["", "Caveats:", *[f"- {c}" for c in cav]]
    return "\n".join(parts)


def markdown(report: Report, figures: list[str]) -> str:
    lines, cav = findings_lines(report.findings)
    blocks = ["# kdmetrics report", "## Findings", bullet_list(lines)]
    if cav:
        blocks += ["### Caveats", bullet_list(cav)]
    for title, body in sections(report, markdown_table):
        blocks += [f"## {title}", body]
    blocks += ["## Figures", *[f"![{f}]({f})" for f in figures]]
    return markdown_block(*blocks) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is pd.NA:
        return None
    return value


def to_json(report: Report) -> dict[str, Any]:
    """Findings (structured), scalars, notes and every table as a list of
    records (NaN -> null)."""
    return {
        "findings": _jsonable(report.findings.to_dict()) if report.findings else None,
        "scalars": _jsonable(report.scalars),
        "notes": list(report.notes),
        "tables": {
            name: _jsonable(df.to_dict(orient="records")) for name, df in report.tables.items()
        },
        "reliability": {
            name: _jsonable(df.reset_index().to_dict(orient="records"))
            for name, df in report.reliability.items()
        },
    }


def check_target(out_dir: str, overwrite: bool, inputs: Iterable[str] = ()) -> str:
    """The absolute target folder, checked by the output-folder safety rules
    (``kdmetrics.io.output``) before any work."""
    return check_output_folder("report", out_dir, overwrite=overwrite, inputs=inputs)


def write_report(report: Report, out_dir: str, *, overwrite: bool = False) -> list[str]:
    """Writes all files into a marked temporary folder next to ``out_dir`` and
    renames it into place, so a failure leaves no half-written ``out_dir``."""
    from kdmetrics.report.plots import write_figures

    def write(tmp: str) -> None:
        figures = write_figures(report, tmp)
        for name, df in report.reliability.items():  # the bin index is the row label
            df.to_csv(os.path.join(tmp, f"reliability_{name}.csv"))
        write_documents(
            tmp,
            tables=report.tables,
            json_data=to_json(report),
            markdown_text=markdown(report, figures),
            summary_text=terminal_summary(report),
        )

    return write_output_folder("report", out_dir, write, overwrite=overwrite)
