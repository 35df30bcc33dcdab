import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from conftest import make_models

import kdmetrics
from kdmetrics.cli import main
from kdmetrics.comparison.render import markdown_table, num, write_comparison


@pytest.fixture
def files(tmp_path):
    y, tiers, ref, v1, v2 = make_models(n=300)
    ids = np.arange(len(y))
    counts = np.array([50, 40, 30, 20, 10, 9, 8, 7, 3, 2, 1, 1])
    paths = {}
    for name, z, lat in (("fp32", ref, 3.0), ("int8", v1, 1.0), ("hot", v2, 2.0)):
        paths[name] = str(tmp_path / f"{name}.npz")
        kdmetrics.save_predictions(
            paths[name], z.astype(np.float16), y, ids=ids, train_counts=counts,
            latency_ms=lat, size_mb=lat * 2, params=1000,
        )  # fmt: skip
    return tmp_path, paths


def _args(paths, out, *extra):
    return [
        "compare", "--reference", f"fp32={paths['fp32']}", "--variant", f"int8={paths['int8']}",
        "--variant", f"hot={paths['hot']}", "--out", str(out), "--n-resamples", "200",
        "--tier-sizes", "4", "4", *extra,
    ]  # fmt: skip


def test_cli_writes_everything(files, capsys):
    tmp, paths = files
    out = tmp / "cmp"
    rc = main(_args(paths, out, "--constraint", "macro_f1>=0.01", "--constraint",
                    "latency_ms<=2.5", "--constraint", "ece_scaled<=0.5"))  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "== Findings ==" in printed and "int8 - fp32:" in printed
    names = set(os.listdir(out))
    for f in ("report.md", "report.json", "summary.txt", "deltas.csv", "churn.csv",
              "calibration.csv", "calibration_deltas.csv", "pareto.csv", "constraints.csv",
              "feasibility.csv", "relaxations.csv", "costs.csv", "metrics.csv", "forest.png",
              "calibration.png", "pareto_accuracy.png", "pareto_macro_f1.png"):  # fmt: skip
        assert f in names, f
    rep = json.loads((out / "report.json").read_text())
    assert rep["scalars"]["reference"] == "fp32"
    assert len(rep["scalars"]["ids_sha256"]) == 64
    assert "tiers" in rep["scalars"] and "stored in" in rep["scalars"]["tier_source"]
    feas = pd.read_csv(out / "feasibility.csv").set_index("model")
    assert feas.loc["fp32", "failed"] == "latency_ms<=2.5"  # its latency is 3 ms
    deltas = pd.read_csv(out / "deltas.csv")
    assert set(deltas["group"]) == {"all", "head", "mid", "tail"}
    assert set(deltas["verdict"]) <= {"real", "directional", "inside the noise", "undefined"}
    # Every markdown table starts after a blank line (Python-Markdown needs it)
    md = (out / "report.md").read_text()
    lines = md.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("|") and
              (i == 0 or not lines[i - 1].startswith("|"))]  # fmt: skip
    assert len(starts) >= 8
    assert all(lines[i - 1] == "" for i in starts)
    assert all(re.fullmatch(r"\|(---\|)+", lines[i + 1]) for i in starts)


def test_cli_bad_input_one_line_exit_2(files, capsys):
    tmp, paths = files
    out = tmp / "x"
    assert main(_args(paths, out, "--constraint", "speed<=1")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown metric or cost 'speed'" in err and "latency_ms" in err
    assert not out.exists()
    assert main(_args(paths, out, "--costs", str(tmp / "nope.csv"))) == 2
    assert "no such file" in capsys.readouterr().err
    pd.DataFrame({"variant": ["fp32", "int8"], "latency_ms": [1, 2]}).to_csv(
        tmp / "c.csv", index=False
    )
    assert main(_args(paths, out, "--costs", str(tmp / "c.csv"))) == 2
    assert "no costs for 'hot'" in capsys.readouterr().err
    assert main(["compare", "--reference", "fp32", "--variant", "a=b", "--out", str(out)]) == 2
    assert "NAME=FILE" in capsys.readouterr().err
    # misaligned labels name the file and the position
    y, _, ref, *_ = make_models(n=300)
    y2 = y.copy()
    y2[5] = (y2[5] + 1) % 12
    kdmetrics.save_predictions(tmp / "bad.npz", ref, y2, ids=np.arange(300))
    args = _args(paths, out)
    args[args.index(f"hot={paths['hot']}")] = f"hot={tmp / 'bad.npz'}"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "position 5" in err
    # an occupied --out is refused before any work
    (tmp / "busy").mkdir()
    (tmp / "busy" / "f").write_text("x")
    assert main(_args(paths, tmp / "busy")) == 2
    assert "not written by kdmetrics" in capsys.readouterr().err
    assert (tmp / "busy" / "f").read_text() == "x"


def test_cli_same_file_twice_warns(files):
    tmp, paths = files
    args = _args(paths, tmp / "dup")
    args[args.index(f"hot={paths['hot']}")] = f"hot={paths['int8']}"
    with pytest.warns(UserWarning, match="identical logits"):
        assert main([*args, "--quiet"]) == 0


def test_write_comparison_overwrite_and_number_format(tmp_path):
    y, tiers, ref, v1, _ = make_models(n=200)
    res = kdmetrics.compare(y, ("a", ref), {"b": v1}, tier_of_class=tiers, n_resamples=50)
    out = tmp_path / "o"
    write_comparison(res, str(out))
    with pytest.raises(ValueError, match="not empty"):
        write_comparison(res, str(out))
    assert "report.md" in write_comparison(res, str(out), overwrite=True)
    assert num(0.0027123) == "0.00271"
    assert num(0.12345) == "0.1235"
    assert num(-0.0000412) == "-0.0000412"
    assert num(float("nan")) == "nan" and num(0.0) == "0"
    t = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [1.5]}))
    assert t.splitlines()[2] == "| x\\|y | 1.5000 |"
