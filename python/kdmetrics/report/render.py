"""Rendering a :class:`~kdmetrics.report.Report`: the terminal summary,
``report.md``, ``report.json``, one CSV per table and the figures, written
atomically (into a temporary folder beside the target, renamed at the end)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.io.output import check_output_folder, write_output_folder
from kdmetrics.report.build import HIGHER_IS_BETTER, Report

TIER_GROUPS = ("all", "head", "mid", "tail")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "nan"
        return f"{round(float(value), digits) + 0.0:.{digits}f}"  # no "-0.0000"
    return str(value)


def text_table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A fixed-width table, numbers to 4 decimals."""
    cols = columns or list(df.columns)
    cells = [[_fmt(v) for v in row] for row in df[cols].itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    body = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, *body])


def markdown_table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    cols = columns or list(df.columns)
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in df[cols].itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def _ci_text(row: pd.Series) -> str:
    return (
        f"{row['delta']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] "
        f"P(delta<=0)={row['p_delta_le_0']:.3f}"
    )


def sections(report: Report, table) -> list[tuple[str, str]]:
    """(title, body) pairs shared by the terminal summary and ``report.md``;
    ``table`` formats a DataFrame (text or Markdown)."""
    t, s = report.tables, report.scalars
    out: list[tuple[str, str]] = []
    head = [
        f"examples: {s['n_examples']}, classes: {s['n_classes']}",
        f"ids SHA-256: {s['ids_sha256']}",
        f"tiers: {s['tier_source']}",
        "files: " + ", ".join(f"{k}={v}" for k, v in s["files"].items()),
    ]
    out.append(("Inputs", "\n".join(head)))
    metric_cols = ["model", "group", "n", "accuracy", "macro_f1", "ece", "nll", "brier", "kl", "js"]
    out.append(
        (
            "Metrics per model and tier (kl, js: to the teacher, nats)",
            table(t["metrics"], metric_cols),
        )
    )
    out.append(
        (
            "Macro F1 against the teacher's ceiling",
            table(t["teacher_ceiling"]),
        )
    )
    boot = t["bootstrap"]
    body = [
        f"{s['n_resamples']} paired resamples, seed {s['seed']}, {s['ci']:.0%} percentile "
        "intervals; delta = distilled - vanilla on the full data."
    ]
    cols = ["metric", "group", "a", "b", "delta", "ci_low", "ci_high", "p_delta_le_0", "n"]
    body.append(table(boot, cols))
    acc = boot[boot["metric"] == "accuracy"]
    if {"flips_a_only", "flips_b_only"} <= set(acc.columns):
        flips = (
            acc[["group", "flips_a_only", "flips_b_only"]]
            .astype({"flips_a_only": "int64", "flips_b_only": "int64"})
            .rename(
                columns={
                    "flips_a_only": "vanilla_right_distilled_wrong",
                    "flips_b_only": "distilled_right_vanilla_wrong",
                }
            )
        )
        body += ["", "Flips (accuracy):", table(flips)]
    out.append(("Paired bootstrap: distilled - vanilla", "\n".join(body)))

    temp = t["temperature"]
    n_eval = int(temp["n_eval"].iloc[0])
    n_fit = int(temp["n_fit"].iloc[0])
    body = [
        f"T fitted on a seeded half of validation (seed {s['temperature_seed']}, {n_fit} "
        f"examples), evaluated on the other half ({n_eval} examples).",
        table(temp, ["model", "temperature", "ece_raw", "ece_scaled", "nll_raw", "nll_scaled"]),
        "",
        "Fraction of distillation's gain reproduced by temperature-scaling vanilla alone,",
        "(vanilla_raw - vanilla_scaled) / (vanilla_raw - distilled_raw) on the evaluation half:",
        f"  ECE: {_fmt(s['ts_gain_fraction_ece'], 3)}   NLL: {_fmt(s['ts_gain_fraction_nll'], 3)}",
        "  (1 = all of the gain, 0 = none, >1 = more than all; nan = distillation had no gain)",
    ]
    out.append(("Temperature scaling", "\n".join(body)))

    out.append(
        ("Selective prediction: coverage and accuracy at confidence >= t", table(t["thresholds"]))
    )
    out.append((f"{s['sla_target']:.0%}-accuracy SLA threshold per model", table(t["sla"])))

    if "seed_comparison" in t:
        body = [
            table(t["seeds"], ["recipe", "seed", "macro_f1", "accuracy", "ece", "nll"]),
            "",
            "compare_seeds (difference = mean distilled - mean vanilla):",
            table(t["seed_comparison"]),
        ]
        out.append(("Training seeds", "\n".join(body)))
    if "grid" in t:
        floor = s["noise_floor"]
        grid = t["grid"]
        metrics = [m for m in ("macro_f1", "accuracy", "ece", "nll", "js") if m in floor]
        cols = ["config", "T", "alpha", "seed"]
        for m in metrics:
            cols += [m, f"delta_{m}", f"verdict_{m}", f"noise_floor_rule_{m}"]
        body = [
            "Noise floor = width of the reference comparison's bootstrap interval (distilled - "
            "vanilla, all): " + ", ".join(f"{m} {floor[m]:.4f}" for m in metrics),
            "delta_* = config - vanilla; verdict_* from its paired interval adjusted across the "
            "grid; noise_floor_rule_* = |delta| < noise floor (old rule of thumb, not a test).",
            table(grid, cols),
        ]
        out.append(("Grid against the vanilla reference", "\n".join(body)))
    if report.notes:
        out.append(("Notes", "\n".join(f"- {n}" for n in report.notes)))
    return out


def headline(report: Report) -> list[str]:
    """A few lines of verdict: the bootstrap deltas on all examples and tail."""
    boot = report.tables["bootstrap"]
    lines = []
    for group in ("all", "tail"):
        for metric in ("macro_f1", "accuracy", "ece", "nll", "js"):
            row = boot[(boot["metric"] == metric) & (boot["group"] == group)]
            if len(row):
                better = "higher" if metric in HIGHER_IS_BETTER else "lower"
                lines.append(
                    f"  {group:>4} {metric:>8} ({better} is better): {_ci_text(row.iloc[0])}"
                )
    return lines


def terminal_summary(report: Report) -> str:
    parts = ["kdmetrics report", "", "Distilled - vanilla (paired bootstrap):", *headline(report)]
    for title, body in sections(report, text_table):
        parts += ["", f"== {title} ==", body]
    return "\n".join(parts)


def markdown(report: Report, figures: list[str]) -> str:
    parts = [
        "# kdmetrics report",
        "",
        "Distilled - vanilla (paired bootstrap):",
        "",
        "```",
        *headline(report),
        "```",
    ]
    for title, body in sections(report, markdown_table):
        # Plain lines between tables need a blank line to stay paragraphs.
        parts += ["", f"## {title}", "", body.replace("\n\n", "\n\n")]
    parts += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(parts) + "\n"


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
    return value


def to_json(report: Report) -> dict[str, Any]:
    """Scalars, notes and every table as a list of records (NaN -> null)."""
    return {
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
        for name, df in report.tables.items():
            df.to_csv(os.path.join(tmp, f"{name}.csv"), index=False)
        for name, df in report.reliability.items():
            df.to_csv(os.path.join(tmp, f"reliability_{name}.csv"))
        with open(os.path.join(tmp, "report.json"), "w") as f:
            json.dump(to_json(report), f, indent=2, allow_nan=False)
        with open(os.path.join(tmp, "report.md"), "w") as f:
            f.write(markdown(report, figures))
        with open(os.path.join(tmp, "summary.txt"), "w") as f:
            f.write(terminal_summary(report) + "\n")

    return write_output_folder("report", out_dir, write, overwrite=overwrite)
