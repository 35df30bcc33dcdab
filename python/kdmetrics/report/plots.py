"""Figures of ``kdmetrics report`` (matplotlib, Agg backend, imported lazily
so that ``import kdmetrics`` stays light)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from kdmetrics.report.build import Report

DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_figures(report: Report, out_dir: str) -> list[str]:
    """Writes every figure into ``out_dir``; returns the file names."""
    plt = _pyplot()
    written = []
    for name, table in report.reliability.items():
        fname = f"reliability_{_slug(name)}.png"
        _reliability(plt, name, table, os.path.join(out_dir, fname))
        written.append(fname)
    _forest(
        plt, report.tables["bootstrap"], report.scalars["ci"], os.path.join(out_dir, "forest.png")
    )
    _coverage(plt, report.coverage_curves, os.path.join(out_dir, "coverage.png"))
    _js_bars(plt, report.tables["metrics"], os.path.join(out_dir, "js_to_teacher.png"))
    written += ["forest.png", "coverage.png", "js_to_teacher.png"]
    return written


def _reliability(plt, name: str, table: pd.DataFrame, path: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    width = (table["hi"] - table["lo"]).to_numpy()
    ax.bar(
        table["lo"],
        table["accuracy"].fillna(0),
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ok = table["count"] > 0
    ax.plot(
        table.loc[ok, "confidence"],
        table.loc[ok, "accuracy"],
        "o-",
        color="C3",
        label="accuracy at each bin's mean confidence",
    )
    ece = float(np.abs(table["sum_correct"] - table["sum_confidence"]).sum() / table["count"].sum())
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",
        ylabel="accuracy",
        title=f"Reliability: {name} (ECE {ece:.4f})",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _forest(plt, boot: pd.DataFrame, ci: float, path: str) -> None:
    metrics = list(dict.fromkeys(boot["metric"]))
    groups = list(dict.fromkeys(boot["group"]))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.6 * len(groups) + 1.6), squeeze=False
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        rows = boot[boot["metric"] == metric].set_index("group").reindex(groups)
        y = np.arange(len(groups))[::-1]
        delta = rows["delta"].to_numpy(dtype=float)
        err = np.vstack(
            [
                delta - rows["ci_low"].to_numpy(dtype=float),
                rows["ci_high"].to_numpy(dtype=float) - delta,
            ]
        )
        ax.errorbar(delta, y, xerr=np.abs(err), fmt="o", capsize=3)
        ax.axvline(0, color="grey", lw=1, ls="--")
        ax.set_yticks(y, groups)
        ax.set_title(metric)
        ax.set_xlabel("distilled - vanilla")
    fig.suptitle(f"Paired bootstrap, {ci:.0%} percentile intervals")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _coverage(plt, curves: dict[str, pd.DataFrame], path: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, t in curves.items():
        ok = t["n_kept"] > 0
        ax.plot(t.loc[ok, "coverage"], t.loc[ok, "accuracy"], label=name)
    ax.set(
        xlabel="coverage (fraction kept at confidence >= t)",
        ylabel="accuracy of kept",
        xlim=(0, 1.01),
        title="Coverage vs accuracy",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _js_bars(plt, metrics: pd.DataFrame, path: str) -> None:
    students = metrics[metrics["model"] != "teacher"]
    models = list(dict.fromkeys(students["model"]))
    groups = list(dict.fromkeys(students["group"]))
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 3, 4))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(groups))
    for i, m in enumerate(models):
        js = students[students["model"] == m].set_index("group").reindex(groups)["js"]
        ax.bar(x + i * width, js.to_numpy(dtype=float), width=width, label=m)
    ax.set_xticks(x + width * (len(models) - 1) / 2, groups)
    ax.set(ylabel="JS divergence to teacher (nats)", title="JS to the teacher by tier")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
