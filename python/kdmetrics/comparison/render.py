"""Rendering a :class:`~kdmetrics.comparison.engine.Comparison`: the terminal
summary, ``report.md`` (tables separated by blank lines, so Python-Markdown's
``tables`` extension renders them), ``report.json``, one CSV per table and the
figures (Pareto fronts, a forest grid, raw vs scaled calibration)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.comparison.engine import Comparison
from kdmetrics.io.output import write_documents, write_output_folder
from kdmetrics.metrics import registry

DPI = 100
VERDICT_COLOURS = {
    "real": "#1f4e9c",
    "directional": "#e08a00",
    "inside the noise": "#9a9a9a",
    "undefined": "#d0d0d0",
}


def num(value: Any) -> str:
    """A number with at least 3 significant digits (small deltas stay visible)."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:.6g}"
        decimals = min(10, max(4, 2 - math.floor(math.log10(abs(v)))))
        return f"{v:.{decimals}f}"
    return str(value)


def signed(value: float) -> str:
    s = num(value)
    return s if s.startswith(("-", "n")) or s == "0" else "+" + s


def interval_text(delta: float, lo: float, hi: float) -> str:
    return f"{signed(delta)} [{signed(lo)}, {signed(hi)}]"


def text_table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    cells = [[num(v) for v in row] for row in df[cols].itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    body = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, *body])


def markdown_table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]

    def cell(v: Any) -> str:
        return num(v).replace("|", "\\|")

    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    rows = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df[cols].itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def _metric_label(metric: str) -> str:
    base = metric.removesuffix("_scaled")
    s = registry.METRICS.get(base.partition("@")[0])
    return s.label + (" (scaled)" if metric.endswith("_scaled") else "") if s else metric


def findings(result: Comparison) -> list[str]:
    """One sentence per variant (and per calibration question), written from the tables."""
    out = []
    d = result.deltas
    ch = result.churn.set_index(["variant", "group"])
    for v in result.variants:
        parts = []
        for metric in result.scalars["metrics"]:
            row = d[(d["variant"] == v) & (d["metric"] == metric) & (d["group"] == "all")]
            if not len(row):
                continue
            r = row.iloc[0]
            extra = f", {r['caveat']}" if r["verdict"] == "directional" else ""
            if "trusted" in r and not r["trusted"]:
                extra += "; interval not trusted"
            if len(result.variants) > 1 and r["verdict"] != "inside the noise":
                if not r["excludes_0_adjusted"]:
                    extra += f"; not after Bonferroni over {len(result.variants)} variants"
            parts.append(
                f"{metric} {interval_text(r['delta'], r['ci_low'], r['ci_high'])} "
                f"({r['verdict']}{extra})"
            )
        c = ch.loc[(v, "all")]
        out.append(
            f"{v} - {result.reference}: " + "; ".join(parts) + f". Churn {100 * c['churn']:.2f} % "
            f"({int(c['n_changed'])} predictions changed: {int(c['right_to_wrong'])} right->wrong, "
            f"{int(c['wrong_to_right'])} wrong->right)."
        )
        tail = d[
            (d["variant"] == v) & (d["group"] == "tail") & (d["verdict"] != "inside the noise")
        ]
        if len(tail):
            out.append(
                f"  {v}, tail: "
                + "; ".join(
                    f"{r.metric} {interval_text(r.delta, r.ci_low, r.ci_high)} ({r.verdict}"
                    + ("" if getattr(r, "trusted", True) else "; interval not trusted")
                    + ")"
                    for r in tail.itertuples()
                )
                + "."
            )
    cd = result.calibration_deltas
    if cd is not None:
        for v in result.variants:
            for metric in ("ece", "nll"):
                rows = cd[(cd["variant"] == v) & (cd["metric"] == metric) & (cd["group"] == "all")]
                if len(rows) != 2:
                    continue
                raw, sc = (rows[rows["scaling"] == s].iloc[0] for s in ("raw", "scaled"))
                if raw["verdict"] == "inside the noise":
                    verdict = "no difference the data can resolve before scaling"
                elif sc["verdict"] == "inside the noise":
                    verdict = "temperature scaling removes the difference"
                elif abs(sc["delta"]) < abs(raw["delta"]):
                    verdict = "scaling shrinks the difference but does not remove it"
                else:
                    verdict = "scaling does not recover it"
                out.append(
                    f"{v} - {result.reference} {metric.upper()} on the evaluation half: raw "
                    f"{interval_text(raw['delta'], raw['ci_low'], raw['ci_high'])} "
                    f"({raw['verdict']}), scaled "
                    f"{interval_text(sc['delta'], sc['ci_low'], sc['ci_high'])} "
                    f"({sc['verdict']}): {verdict}."
                )
    out += result.extra_findings
    if "trusted" in d.columns and not d["trusted"].all():
        bad = d[~d["trusted"].astype(bool)]
        for metric, rows in bad.groupby("metric", sort=False):
            groups = ", ".join(dict.fromkeys(rows["group"]))
            out.append(
                f"Interval not trusted for {metric} ({groups}): {rows['flag_reason'].iloc[0]}."
            )
    if result.feasibility is not None:
        ok = result.feasibility[result.feasibility["meets_all"]]["model"].tolist()
        cons = ", ".join(result.scalars.get("constraints", []))
        out.append(
            f"Envelope {cons}: " + (f"met by {', '.join(ok)}." if ok else "met by no model.")
        )
        for r in (
            result.relaxations if result.relaxations is not None else pd.DataFrame()
        ).itertuples():
            out.append(
                f"  relaxing {r.constraint} to {num(r.needed_threshold)} would admit {r.model}."
            )
    return out


def sections(result: Comparison, table: Callable[..., str]) -> list[tuple[str, str]]:
    """(title, body) pairs shared by the terminal summary and ``report.md``;
    bodies separate paragraphs and tables by blank lines."""
    s = result.scalars
    out: list[tuple[str, str]] = []
    head = [
        f"- examples: {s['n_examples']}, classes: {s['n_classes']}",
        f"- reference: {result.reference}; variants: {', '.join(result.variants)}",
        f"- {s['n_resamples']} paired resamples (one shared draw for every variant), seed "
        f"{s['seed']}, {s['ci']:.0%} {s['method']} intervals; delta = variant - reference",
        f"- tiers: {'head/mid/tail' if s['tiers'] else 'none (group all only)'}",
    ]
    for key in ("ids_sha256", "tier_source", "files"):
        if key in s:
            value = s[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            head.append(f"- {key.replace('_', ' ')}: {value}")
    out.append(("Inputs", "\n".join(head)))
    out.append(("Findings", "\n".join(f"- {line.strip()}" for line in findings(result))))
    metric_cols = ["model", "group", "n", *[c for c in registry.METRICS if c in result.metrics]]
    out.append(("Metrics per model and group", table(result.metrics, metric_cols)))
    d = result.deltas.copy()
    d["caveat"] = d["caveat"].where(d["verdict"] == "directional", "")
    body = [
        "Verdicts: real = interval excludes 0; directional = it does, but a prediction-only "
        f"metric rests on fewer than {s['min_discordant']} changed predictions (or the exact "
        "McNemar p on the flips is above 1 - level); inside the noise = the interval includes 0 "
        "(the data cannot tell, which is not 'no effect'). ECE rows: the sample ECE is biased "
        "upward and its interval can undercover when one model is near-calibrated. "
        "adjusted = excludes 0 at the Bonferroni level over the variants "
        "(deltas.csv has those intervals).",
        "",
        table(d, ["variant", "metric", "group", "reference_value", "variant_value", "delta",
                  "ci_low", "ci_high", "verdict", "right_to_wrong", "wrong_to_right",
                  "n_fragile", "excludes_0_adjusted", "caveat"]),
    ]  # fmt: skip
    out.append(("Paired deltas against the reference", "\n".join(body)))
    out.append(("Churn and flips", table(result.churn)))
    if result.calibration is not None and result.calibration_deltas is not None:
        cal = result.calibration
        n_fit = int(cal["n_fit"].iloc[0])
        n_eval = int(cal[cal["group"] == "all"]["n_eval"].iloc[0])
        cols = ["model", "group", "temperature"] + [
            c for c in cal.columns if c.endswith(("_raw", "_scaled"))
        ]
        cd = result.calibration_deltas
        body = [
            f"Each model's temperature is fitted on a seeded half of the examples (seed "
            f"{s['temperature_seed']}, {n_fit} examples) and every number here is measured on "
            f"the other half ({n_eval} examples).",
            "",
            table(cal[cal["group"] == "all"], cols),
            "",
            "Paired deltas on the evaluation half, raw and after each model's own scaling:",
            "",
            table(cd[cd["group"] == "all"], ["variant", "scaling", "metric", "reference_value",
                                             "variant_value", "delta", "ci_low", "ci_high",
                                             "verdict"]),
        ]  # fmt: skip
        out.append(("Calibration: raw and temperature-scaled", "\n".join(body)))
    if result.costs is not None:
        out.append(("Costs", table(result.costs.reset_index())))
    if result.pareto is not None:
        body = [
            "front: no model is as good and as cheap; dominated: a model at most as costly is "
            "better with an interval that excludes 0; not separable: dominated on the point "
            "estimates only. Costs are taken as measured.",
            "",
            table(result.pareto, ["quality", "cost", "model", "quality_value", "cost_value",
                                  "status", "dominated_by", "not_separable_from"]),
        ]  # fmt: skip
        out.append(("Pareto fronts", "\n".join(body)))
    if result.constraints is not None and result.feasibility is not None:
        wide = result.constraints.pivot(index="model", columns="constraint", values="value")
        ok = result.constraints.pivot(index="model", columns="constraint", values="satisfied")
        order = list(dict.fromkeys(result.constraints["constraint"]))
        grid = pd.DataFrame(
            {c: [f"{num(wide.loc[m, c])} {'ok' if ok.loc[m, c] else 'FAIL'}"
                 for m in result.models] for c in order},
            index=pd.Index(result.models, name="model"),
        ).reset_index()  # fmt: skip
        body = [
            "Judged on point estimates (scaled metrics on the evaluation half).",
            "",
            table(grid),
            "",
            table(result.feasibility),
        ]
        if result.relaxations is not None and len(result.relaxations):
            body += [
                "",
                "Single relaxations that would admit a model:",
                "",
                table(result.relaxations),
            ]
        out.append(("Deployment constraints", "\n".join(body)))
    for name, df in result.extra_tables.items():
        out.append((name.replace("_", " ").capitalize(), table(df)))
    if result.notes:
        out.append(("Notes", "\n".join(f"- {n}" for n in result.notes)))
    return out


def terminal_summary(result: Comparison) -> str:
    parts = ["kdmetrics compare"]
    for title, body in sections(result, text_table):
        parts += ["", f"== {title} ==", body]
    return "\n".join(parts)


def markdown(result: Comparison, figures: list[str]) -> str:
    parts = ["# kdmetrics compare"]
    for title, body in sections(result, markdown_table):
        parts += ["", f"## {title}", "", body]
    if figures:
        parts += ["", "## Figures", ""]
        for f in figures:
            parts += [f"![{f}]({f})", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def to_json(result: Comparison) -> dict[str, Any]:
    """Scalars, findings, notes and every table as records (NaN -> null)."""
    return {
        "scalars": _jsonable(result.scalars),
        "findings": [line.strip() for line in findings(result)],
        "notes": list(result.notes),
        "tables": {
            name: _jsonable(df.to_dict(orient="records")) for name, df in result.tables.items()
        },
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_figures(result: Comparison, out_dir: str) -> list[str]:
    """Writes every figure into ``out_dir``; returns the file names."""
    plt = _pyplot()
    written = []
    if result.pareto is not None:
        for quality, table in result.pareto.groupby("quality", sort=False):
            name = f"pareto_{_slug(str(quality))}.png"
            _pareto_figure(plt, result, str(quality), table, os.path.join(out_dir, name))
            written.append(name)
    _forest_grid(plt, result, os.path.join(out_dir, "forest.png"))
    written.append("forest.png")
    if result.calibration is not None:
        _calibration_figure(plt, result, os.path.join(out_dir, "calibration.png"))
        written.append("calibration.png")
    return written


def _pareto_figure(plt, result: Comparison, quality: str, table: pd.DataFrame, path: str) -> None:
    costs = list(dict.fromkeys(table["cost"]))
    # A cost equal for every model separates nothing: left to the table.
    varied = [c for c in costs if table[table["cost"] == c]["cost_value"].nunique() > 1]
    costs = varied or costs
    ncol = min(2, len(costs))
    nrow = -(-len(costs) // ncol)
    fig, grid = plt.subplots(nrow, ncol, figsize=(5.4 * ncol, 4.4 * nrow), squeeze=False)
    axes = [list(grid.ravel())]
    for ax in axes[0][len(costs) :]:
        ax.set_visible(False)
    hib = bool(table["higher_is_better"].iloc[0])
    for ax, cost in zip(axes[0], costs, strict=False):
        t = table[table["cost"] == cost]
        ref_q = float(t.loc[t["model"] == result.reference, "quality_value"].iloc[0]) if (
            t["model"] == result.reference
        ).any() else np.nan  # fmt: skip
        for r in t.itertuples():
            style = {
                "front": dict(marker="o", color="#1f4e9c", mfc="#1f4e9c"),
                "not separable": dict(marker="o", color="#1f4e9c", mfc="white"),
                "dominated": dict(marker="x", color="#9a9a9a", mfc="#9a9a9a"),
            }[r.status]
            if r.model != result.reference and np.isfinite(ref_q):
                lo, hi = ref_q + r.ci_low, ref_q + r.ci_high
                ax.errorbar(r.cost_value, r.quality_value,
                            yerr=[[max(r.quality_value - lo, 0)], [max(hi - r.quality_value, 0)]],
                            ecolor=style["color"], elinewidth=1, capsize=3, ls="none")  # fmt: skip
            ax.plot(r.cost_value, r.quality_value, ls="none", ms=8, **style)
            ax.annotate(str(r.model), (r.cost_value, r.quality_value), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)  # fmt: skip
        front = t[t["on_front"]].sort_values("cost_value")
        if len(front) > 1:
            ax.step(front["cost_value"], front["quality_value"], where="post", color="#1f4e9c",
                    lw=1, alpha=0.6, label="front (point estimates)")  # fmt: skip
        positive = t["cost_value"][t["cost_value"] > 0]
        if len(positive) > 1 and positive.max() / positive.min() > 50:
            ax.set_xscale("log")
        ax.set_xlabel(f"{cost} (lower is better)")
        ax.set_ylabel(f"{_metric_label(quality)} ({'higher' if hib else 'lower'} is better)")
        ax.grid(alpha=0.3)
    axes[0][0].plot([], [], "o", color="#1f4e9c", label="front")
    axes[0][0].plot([], [], "o", color="#1f4e9c", mfc="white", label="not separable")
    axes[0][0].plot([], [], "x", color="#9a9a9a", label="dominated (interval excludes 0)")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(
        f"{_metric_label(quality)} against cost; bars: {result.scalars['ci']:.0%} paired interval "
        f"of the difference from {result.reference}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _forest_grid(plt, result: Comparison, path: str) -> None:
    from matplotlib import ticker

    d = result.deltas
    metrics = [m for m in result.scalars["metrics"] if (d["metric"] == m).any()]
    groups = list(dict.fromkeys(d["group"]))
    nrow, ncol = len(result.variants), len(metrics)
    height = 0.45 * len(groups) * nrow + 1.2 * nrow + 0.6
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.7 * ncol + 0.8, height), squeeze=False)
    for i, v in enumerate(result.variants):
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            t = d[(d["variant"] == v) & (d["metric"] == m)].set_index("group").loc[groups]
            ys = np.arange(len(groups))[::-1]
            for y, (_, r) in zip(ys, t.iterrows(), strict=True):
                c = VERDICT_COLOURS[r["verdict"]]
                ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=c, lw=2)
                ax.plot(r["delta"], y, "o", color=c, ms=5)
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(ys)
            ax.set_yticklabels(groups if j == 0 else [""] * len(groups), fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
            arrow = "better →" if registry.METRICS[m].higher_is_better else "← better"
            if i == 0:
                ax.set_title(f"{registry.METRICS[m].label}\n({arrow})", fontsize=9)
            if j == 0:
                ax.set_ylabel(v, fontsize=9)
            ax.grid(axis="x", alpha=0.3)
    for verdict, c in VERDICT_COLOURS.items():
        axes[0][0].plot([], [], color=c, lw=2, label=verdict)
    fig.legend(loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        f"variant - {result.reference}, {result.scalars['ci']:.0%} paired intervals", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1 - 0.45 / height))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _calibration_figure(plt, result: Comparison, path: str) -> None:
    assert result.calibration is not None
    cal = result.calibration[result.calibration["group"] == "all"].set_index("model")
    metrics = [c[: -len("_raw")] for c in cal.columns if c.endswith("_raw")]
    # Side by side for a few models; one metric per row for many.
    rows = len(metrics) if len(cal) > 4 else 1
    cols = 1 if rows > 1 else len(metrics)
    fig, grid = plt.subplots(
        rows, cols, figsize=(1.2 + 0.9 * len(cal) * (1 if rows > 1 else len(metrics)),
                             3.6 * rows), squeeze=False,
    )  # fmt: skip
    axes = [list(grid.ravel())]
    x = np.arange(len(cal))
    for ax, m in zip(axes[0], metrics, strict=True):
        ax.bar(x - 0.2, cal[f"{m}_raw"], width=0.4, color="#c44e52", label="raw")
        ax.bar(x + 0.2, cal[f"{m}_scaled"], width=0.4, color="#1f4e9c", label="scaled")
        ax.set_xticks(x)
        ax.set_xticklabels(
            [f"{n}\nT={cal.loc[n, 'temperature']:.2f}" for n in cal.index], fontsize=7, rotation=0
        )
        ax.set_title(f"{registry.METRICS[m].label} (lower is better)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Raw vs temperature-scaled, on the evaluation half", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_comparison(result: Comparison, out_dir: str, *, overwrite: bool = False) -> list[str]:
    """Writes ``summary.txt``, ``report.md``, ``report.json``, one CSV per table
    and the figures into a marked temporary folder beside ``out_dir`` and
    renames it into place (the output-folder rules of ``kdmetrics.io.output``)."""

    def write(tmp: str) -> None:
        figures = write_figures(result, tmp)
        write_documents(
            tmp,
            tables=result.tables,
            json_data=to_json(result),
            markdown_text=markdown(result, figures),
            summary_text=terminal_summary(result),
        )

    return write_output_folder("compare", out_dir, write, overwrite=overwrite)
