"""Figures of ``kdmetrics report`` (matplotlib, Agg backend, imported lazily
so that ``import kdmetrics`` stays light), sized for a memo page:

- ``forest.png``: the paired intervals as a grid, one row per metric and one
  column per group, the side where the distilled student is better shaded
  and named in each row's label;
- ``reliability.png``: reliability diagrams of all models side by side with
  shared axes, each over a histogram of how many examples fall in each bin;
- ``per_class_f1_tail.png``: F1 difference (distilled - vanilla) per tail
  class (per class when there are no tiers), with the teacher's F1 beside it;
- ``coverage_by_tier.png``: accuracy against coverage per group, the models
  in each panel.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from kdmetrics.metrics.registry import METRICS
from kdmetrics.report.build import Report
from kdmetrics.report.findings import row_verdict

DPI = 110
COLORS = {
    "real": "#1b7837",
    "directional": "#e08214",
    "inside the noise": "#7f7f7f",
    "undefined": "#7f7f7f",
}
WORSE = "#b2182b"
BETTER_SHADE = "#d9f0d3"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def write_figures(report: Report, out_dir: str) -> list[str]:
    """Writes every figure into ``out_dir``; returns the file names."""
    plt = _pyplot()
    written = []
    comparisons = [report.tables["bootstrap"]]
    if "agreement_bootstrap" in report.tables:
        comparisons.append(report.tables["agreement_bootstrap"])
    boot = pd.concat(comparisons, ignore_index=True)
    flips = _flips(report)
    forest(plt, boot, flips, report.scalars["ci"], os.path.join(out_dir, "forest.png"))
    written.append("forest.png")
    reliability(plt, report.reliability, os.path.join(out_dir, "reliability.png"))
    written.append("reliability.png")
    pc = report.tables.get("per_class_f1")
    if pc is not None:
        per_class_delta(plt, pc, os.path.join(out_dir, "per_class_f1_tail.png"))
        written.append("per_class_f1_tail.png")
    if report.tier_curves is not None:
        coverage_by_tier(plt, report.tier_curves, os.path.join(out_dir, "coverage_by_tier.png"))
        written.append("coverage_by_tier.png")
    return written


def _flips(report: Report) -> dict[tuple[str, str], int]:
    """(metric, group) -> the flips that decide a directional verdict."""
    s = report.scalars
    out: dict[tuple[str, str], int] = {}
    for metric in METRICS:
        source = s.get("agreement_flips" if metric == "teacher_agreement" else "flips", {})
        for g, f in source.items():
            out[(metric, g)] = int(sum(f))
    return out


def forest(plt, boot: pd.DataFrame, flips, ci: float, path: str) -> None:
    """Grid of intervals: rows = metrics (registry order), columns = groups;
    x shared along a row so tiers compare at a glance."""
    metrics = [m for m in METRICS if m in set(boot["metric"])]
    groups = list(dict.fromkeys(boot["group"]))
    fig, axes = plt.subplots(
        len(metrics),
        len(groups),
        figsize=(1.9 * len(groups) + 1.9, 0.8 * len(metrics) + 1.0),
        squeeze=False,
        sharex="row",
    )
    for i, metric in enumerate(metrics):
        spec = METRICS[metric]
        rows = boot[boot["metric"] == metric].set_index("group")
        lo = float(np.nanmin(rows["ci_low"].to_numpy(dtype=float)))
        hi = float(np.nanmax(rows["ci_high"].to_numpy(dtype=float)))
        span = max(hi, 0.0) - min(lo, 0.0) or 1e-12
        xmin, xmax = min(lo, 0.0) - 0.08 * span, max(hi, 0.0) + 0.08 * span
        for j, group in enumerate(groups):
            ax = axes[i][j]
            ax.set_yticks([])
            ax.axvline(0, color="black", lw=0.8)
            if spec.higher_is_better:
                ax.axvspan(0, xmax, color=BETTER_SHADE, lw=0)
            else:
                ax.axvspan(xmin, 0, color=BETTER_SHADE, lw=0)
            ax.set_xlim(xmin, xmax)
            ax.tick_params(axis="x", labelsize=7)
            if group not in rows.index:
                continue
            r = rows.loc[group]
            d, a, b = float(r["delta"]), float(r["ci_low"]), float(r["ci_high"])
            verdict = row_verdict(r, flips.get((metric, group), 0))[0]
            color = COLORS[verdict]
            if verdict in ("real", "directional") and not spec.better(d):
                color = WORSE
            ax.errorbar([d], [0], xerr=[[d - a], [b - d]], fmt="o", color=color, capsize=3, ms=5)
            ax.set_ylim(-1, 1)
            if i == 0:
                ax.set_title(group, fontsize=10)
        arrow = "better →" if spec.higher_is_better else "← better"
        axes[i][0].set_ylabel(
            f"{spec.label}\n({arrow})", rotation=0, ha="right", va="center", fontsize=9
        )
    fig.suptitle(
        f"Distilled - vanilla, paired bootstrap {ci:.0%} intervals\n"
        "shaded: distilled better; green real, orange directional (few flips), "
        "grey inside the noise, red vanilla better",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def reliability(plt, tables: dict[str, pd.DataFrame], path: str) -> None:
    """One column per model: reliability bars over a bin-count histogram."""
    names = list(tables)
    fig, axes = plt.subplots(
        2,
        len(names),
        figsize=(3.0 * len(names) + 0.6, 4.6),
        sharex=True,
        sharey="row",
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.3]},
    )
    max_count = max(float(t["count"].max()) for t in tables.values()) or 1.0
    for j, name in enumerate(names):
        t = tables[name]
        top, bottom = axes[0][j], axes[1][j]
        width = (t["hi"] - t["lo"]).to_numpy(dtype=float)
        lo = t["lo"].to_numpy(dtype=float)
        ok = (t["count"] > 0).to_numpy()
        acc = t["accuracy"].to_numpy(dtype=float)
        conf = t["confidence"].to_numpy(dtype=float)
        top.bar(
            lo[ok],
            acc[ok],
            width=width[ok],
            align="edge",
            color="C0",
            alpha=0.75,
            edgecolor="black",
            lw=0.5,
            label="accuracy",
        )
        top.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
        top.plot(conf[ok], acc[ok], "o", color="C3", ms=3, label="(mean conf, acc)")
        n = float(t["count"].sum())
        ece = float(np.nansum(np.abs(acc - conf) * t["count"].to_numpy(dtype=float)) / n)
        top.set_title(f"{name}\nECE {ece:.3g}, n = {int(n)}", fontsize=10)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        bottom.bar(
            lo,
            t["count"].to_numpy(dtype=float),
            width=width,
            align="edge",
            color="grey",
            edgecolor="black",
            lw=0.5,
        )
        bottom.set_yscale("log")
        bottom.set_ylim(0.8, max_count * 3)
        bottom.set_xlabel("confidence (top-1 probability)")
        if j == 0:
            top.set_ylabel("accuracy")
            bottom.set_ylabel("examples\nper bin")
            top.legend(loc="upper left", fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def per_class_delta(plt, pc: pd.DataFrame, path: str) -> None:
    """Horizontal bars of F1(distilled) - F1(vanilla) per class of the tail."""
    rows = pc[pc["tier"] == "tail"] if "tier" in pc.columns else pc
    rows = rows[np.isfinite(rows["delta"].to_numpy(dtype=float))]
    unchanged = int((rows["delta"] == 0).sum())
    order = rows[rows["delta"] != 0].sort_values("delta")
    n = max(len(order), 1)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(7.0, 0.16 * n + 1.4), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
    )
    y = np.arange(len(order))
    delta = order["delta"].to_numpy(dtype=float)
    ax.barh(y, delta, color=np.where(delta >= 0, COLORS["real"], WORSE), height=0.75)
    ax.axvline(0, color="black", lw=0.8)
    labels = [
        f"{int(c)} (n={int(s)})" for c, s in zip(order["class"], order["support"], strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=6)
    ax.set_xlabel("F1 distilled - F1 vanilla")
    what = "tail class" if "tier" in pc.columns else "class"
    ax.set_title(
        f"F1 change per {what} (n = validation examples);\n"
        f"{unchanged} {what}es with no change not shown",
        fontsize=9,
    )
    if "f1_teacher" in order.columns:
        ax2.barh(y, order["f1_teacher"].to_numpy(dtype=float), color="grey", height=0.75)
        ax2.set_xlim(0, 1)
        ax2.set_xlabel("teacher F1")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def coverage_by_tier(plt, curves: pd.DataFrame, path: str) -> None:
    """Accuracy of the kept examples against the fraction kept, per group."""
    groups = list(dict.fromkeys(curves["group"]))
    cols = min(len(groups), 4)
    rows_n = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows_n, cols, figsize=(2.8 * cols + 0.4, 2.8 * rows_n + 0.4), sharey=True, squeeze=False
    )
    for k, group in enumerate(groups):
        ax = axes[k // cols][k % cols]
        g = curves[curves["group"] == group]
        for name in dict.fromkeys(g["model"]):
            t = g[(g["model"] == name) & (g["n_kept"] > 0)]
            ax.plot(t["coverage"], t["accuracy"], label=name, lw=1.4)
        ax.set_title(group, fontsize=10)
        ax.set_xlim(0, 1.01)
        ax.set_xlabel("coverage")
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("accuracy of kept")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Selective prediction per tier (keep confidence >= t)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
