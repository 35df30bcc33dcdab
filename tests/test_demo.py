"""``kdmetrics demo``: a tiny configuration end to end, and the full size (slow)."""

from __future__ import annotations

import json
import os
import time

import pytest

if os.environ.get("CI") != "true":
    pytest.importorskip("torch")  # on CI a missing torch must fail, not skip

from kdmetrics.cli import main  # noqa: E402

TINY = [
    "--n-train",
    "3000",
    "--n-val",
    "1200",
    "--n-features",
    "16",
    "--epochs",
    "2",
    "--teacher-epochs",
    "2",
    "--teacher-hidden",
    "32",
    "--student-hidden",
    "16",
    "--n-resamples",
    "30",
    "--quiet",
]


def test_tiny_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert str(out / "report") in text
    # It ends with the findings in words, and its progress is plain lines.
    findings = text[text.index("== Findings ==") :]
    assert "Capacity" in findings and "Caveats:" in findings
    assert "\r" not in text + captured.err
    rep = json.loads((out / "report" / "report.json").read_text())
    groups = {r["group"] for r in rep["tables"]["metrics"]}
    assert groups == {"all", "head", "mid", "tail"}
    n = {r["group"]: r["n"] for r in rep["tables"]["metrics"] if r["model"] == "teacher"}
    assert n["all"] == 1200 and n["head"] > n["mid"] > n["tail"] > 0
    assert (out / "report" / "forest.png").exists()
    # The compression sentences say when a quoted interval is not trusted:
    # plain ECE's always carry the engine's caveat.
    compression = text[text.index("== Compression") :]
    ece = [x for x in compression.splitlines() if "ECE gain" in x]
    assert ece and all("interval not trusted" in x for x in ece)
    assert all("interval not trusted" not in x for x in compression.splitlines() if "NLL gain" in x)


def test_demo_is_reproducible(tmp_path, capsys):
    reps = []
    for name in ("a", "b"):
        assert main(["demo", "--out", str(tmp_path / name), *TINY]) == 0
        reps.append(json.loads((tmp_path / name / "report" / "report.json").read_text()))
    capsys.readouterr()
    assert reps[0]["tables"]["metrics"] == reps[1]["tables"]["metrics"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--T", "0", "--T must be a finite number > 0"),
        ("--alpha", "1.5", "--alpha must be in [0, 1]"),
        ("--n-val", "1", "--n-val must be an integer >= 226"),
        ("--epochs", "0", "--epochs must be an integer >= 1"),
        ("--student-hidden", "0", "--student-hidden must be one or more integer widths"),
        ("--lr", "nan", "--lr must be a finite number"),
    ],
)
def test_demo_validates_before_creating_anything(tmp_path, capsys, option, value, message):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY, option, value]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    # Nothing blocks a rerun with a valid value.
    assert not list(tmp_path.iterdir())


def test_demo_refuses_non_empty_out(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("keep")
    assert main(["demo", "--out", str(tmp_path), *TINY]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_full_demo_within_budget(tmp_path, capsys, request):
    # Minutes of CPU: only when asked for with -m slow.
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("full-size demo: run with -m slow")
    start = time.perf_counter()
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    assert time.perf_counter() - start < 600  # a sanity bound, not the timing claim
    rep = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    n = {r["group"]: r["n"] for r in rep["tables"]["metrics"] if r["model"] == "teacher"}
    assert abs(n["all"] - 6430) <= 5 and abs(n["head"] - 5155) <= 60 and abs(n["tail"] - 210) <= 30
    # The regime the demo is built for (loose bounds around the intended numbers).
    f1 = {(r["model"], r["group"]): r["macro_f1"] for r in rep["tables"]["metrics"]}
    assert 0.25 <= f1[("teacher", "all")] <= 0.45
    assert 0.55 <= f1[("teacher", "head")] <= 0.8 and 0.1 <= f1[("teacher", "tail")] <= 0.3
    temps = {r["model"]: r["temperature"] for r in rep["tables"]["temperature"]}
    assert temps["vanilla"] > 1  # over-confident
    boot = {(r["metric"], r["group"]): r for r in rep["tables"]["bootstrap"]}
    for metric in ("nll", "kl", "js"):
        assert boot[(metric, "all")]["ci_high"] < 0  # distillation clearly better
    rel = {
        m: abs(boot[(m, "all")]["delta"]) / boot[(m, "all")]["a"] for m in ("accuracy", "nll", "kl")
    }
    assert rel["kl"] > rel["nll"] > rel["accuracy"]
