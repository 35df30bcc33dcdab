"""report.md renders in Python-Markdown/MkDocs as on GitHub; numbers keep
their significant digits; findings' verdicts and caveats follow the rules."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from _report_data import report_args, write_files

from kdmetrics.cli import main
from kdmetrics.comparison.engine import MIN_DISCORDANT
from kdmetrics.report.findings import (
    MIN_FLIPS,
    caveats,
    metric_findings,
    sentences,
    verdict_of,
)
from kdmetrics.report.markdown import fmt_ci, fmt_value, markdown_table

markdown = pytest.importorskip("markdown")

SEPARATOR = re.compile(r"^\| *:?-{3,}:? *(\| *:?-{3,}:? *)*\|$")


@pytest.fixture(scope="module")
def report_md(tmp_path_factory):
    d = tmp_path_factory.mktemp("md")
    paths = write_files(d, seeds=2, grid=True)
    assert main(report_args(paths, d / "out")) == 0
    return (d / "out" / "report.md").read_text()


def test_every_table_renders_in_python_markdown(report_md):
    n_tables = sum(1 for line in report_md.splitlines() if SEPARATOR.match(line))
    assert n_tables >= 15  # the report's tables, new ones included
    html = markdown.markdown(report_md, extensions=["tables"])
    assert html.count("<table>") == n_tables
    # Every table and paragraph stands between blank lines.
    lines = report_md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i > 0 and not lines[i - 1].startswith("|"):
            assert lines[i - 1] == "", (i, lines[i - 1])


def test_findings_come_first_and_lists_stay_lists(report_md):
    html = markdown.markdown(report_md, extensions=["tables"])
    assert html.index("Findings") < html.index("<table>")
    first_list = html[html.index("<ul>") : html.index("</ul>")]
    assert first_list.count("<li>") >= 4  # one item per finding, not a run-on paragraph
    assert "P(distilled better)" in report_md and "P(delta" not in report_md


def test_small_differences_keep_their_digits():
    assert fmt_ci(1.2e-5, 5e-6, 2.1e-5) == "+0.000012 [+0.000005, +0.000021]"
    assert fmt_ci(-0.0312, -0.0601, -0.0043) == "-0.031 [-0.060, -0.004]"
    assert fmt_ci(0.0, 0.0, 0.0) == "+0.0000 [+0.0000, +0.0000]"  # identical models
    assert fmt_value(0.000012345) == "0.00001234"
    assert fmt_value(0.91234) == "0.9123"
    assert fmt_value(6430.0) == "6430"
    assert fmt_value(float("nan")) == "nan" and fmt_value(3) == "3"


def test_markdown_table_escapes_pipes():
    df = pd.DataFrame({"metric": ["KL(a||b)"], "value": [0.5]})
    table = markdown_table(df)
    html = markdown.markdown(table, extensions=["tables"])
    assert html.count("<td") == 2 and "KL(a||b)" in html


def _comparison(metric, low, high, delta=None):
    delta = (low + high) / 2 if delta is None else delta
    return pd.DataFrame(
        [
            {
                "metric": metric,
                "group": "all",
                "n": 100,
                "a": 0.5,
                "b": 0.5 + delta,
                "delta": delta,
                "ci_low": low,
                "ci_high": high,
                "p_better": 0.9,
            }
        ]
    )


@pytest.mark.parametrize(
    ("metric", "low", "high", "flips", "want"),
    [
        ("accuracy", 0.01, 0.05, MIN_FLIPS, "real"),
        ("accuracy", 0.01, 0.05, MIN_FLIPS - 1, "directional"),
        ("macro_f1", -0.05, -0.01, 3, "directional"),
        ("nll", -0.05, -0.01, 0, "real"),  # not a count of predictions
        ("accuracy", -0.01, 0.05, 100, "inside the noise"),
        ("accuracy", 0.0, 0.0, 0, "inside the noise"),  # identical models
    ],
)
def test_verdicts(metric, low, high, flips, want):
    assert verdict_of(metric, low, high, flips) == want


@pytest.mark.parametrize(
    ("metric", "low", "high", "better"),
    [
        ("nll", -0.05, -0.01, "distilled"),  # lower is better: negative delta favours b
        ("nll", 0.01, 0.05, "vanilla"),
        ("accuracy", 0.01, 0.05, "distilled"),
        ("accuracy", -0.05, -0.01, "vanilla"),
        ("ece", -0.05, 0.01, None),
    ],
)
def test_direction_aware_better(metric, low, high, better):
    (m,) = metric_findings(_comparison(metric, low, high), {"all": (40, 30)}, {})
    assert m.better == better


def test_report_threshold_is_the_engines():
    assert MIN_FLIPS == MIN_DISCORDANT


@pytest.mark.parametrize(
    ("metric", "engine", "caveat", "flips", "want"),
    [
        # The engine's verdict governs, whatever the flip count says.
        ("accuracy", "directional", "exact McNemar p = 0.2 on 30 right->wrong vs 45 wrong->right",
         75, "directional"),
        ("macro_f1", "real", "", 3, "real"),
        ("ece", "inside the noise", "sample ECE is biased upward", 0, "inside the noise"),
        ("nll", "undefined", "", 0, "undefined"),
        # Top-1 agreement: the engine applies the threshold to its agreement
        # changes; the report reads the verdict and the caveat.
        ("teacher_agreement", "directional", "rests on 9 changed agreement(s) with the teacher",
         MIN_FLIPS - 1, "directional"),
        ("teacher_agreement", "real", "", MIN_FLIPS - 1, "real"),
    ],
)  # fmt: skip
def test_findings_take_the_engines_verdict(metric, engine, caveat, flips, want):
    low, high = (np.nan, np.nan) if engine == "undefined" else (0.01, 0.05)
    rows = _comparison(metric, low, high, delta=0.03).assign(verdict=engine, caveat=caveat)
    (m,) = metric_findings(rows, {"all": (flips, 0)}, {"all": (flips, 0)})
    assert m.verdict == want
    assert (m.better is None) == (want not in ("real", "directional"))
    (f,) = sentences([m])
    assert want in f.text
    if engine == "directional":
        assert caveat in f.text and m.why == caveat


def _metrics_table(tail_n=210, tail_classes=53):
    return pd.DataFrame(
        {
            "model": ["teacher"] * 4,
            "group": ["all", "head", "mid", "tail"],
            "n": [6430, 5155, 1065, tail_n],
            "macro_f1": [0.3, 0.65, 0.45, 0.2],
        }
    )


def test_caveats_follow_the_data():
    tiers = np.array([0] * 20 + [1] * 40 + [2] * 53)
    diag = pd.DataFrame(
        [
            {
                "source": "s",
                "temperature": 1.0,
                "mean_entropy": 0.01,
                "mean_max_prob": 0.999,
                "saturated": True,
            }
        ]
    )
    got = caveats(
        metrics=_metrics_table(),
        tier_of_class=tiers,
        metadata={
            "vanilla": {"selected_on": "val", "split": "val", "init_sha256": "a"},
            "distilled": {"selected_on": "val", "split": "test", "init_sha256": "b"},
        },
        n_intervals=40,
        ci=0.95,
        diagnostics=diag,
    )
    text = "\n".join(got)
    assert "tail tier has 210 validation examples over 53 classes" in text
    assert "head tier" not in text and "mid tier" not in text
    assert "vanilla (selected_on=val, split=val)" in text and "distilled (" not in text
    assert "40 intervals" in text and "about 2.0" in text
    assert "Saturated teacher targets" in text and "0.999" in text
    assert "init_sha256 differ" in text
    quiet = caveats(
        metrics=_metrics_table(),
        tier_of_class=tiers,
        metadata={},
        n_intervals=4,
        ci=0.95,
        diagnostics=diag.assign(saturated=False),
    )
    assert len(quiet) == 2  # the small tail, the number of intervals
