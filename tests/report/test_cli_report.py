"""``kdmetrics report`` end to end on tiny files: outputs, figures, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _report_data import K, N, labels, logits, report_args, write_files

from kdmetrics import save_predictions
from kdmetrics.cli import main


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    paths = write_files(d, seeds=2, grid=True)
    out = d / "out"
    assert main(report_args(paths, out)) == 0
    return out


def test_writes_every_file(report_dir):
    names = set(p.name for p in report_dir.iterdir())
    for table in (
        "metrics",
        "teacher_ceiling",
        "bootstrap",
        "temperature",
        "thresholds",
        "sla",
        "seeds",
        "seed_comparison",
        "grid",
    ):
        assert f"{table}.csv" in names
    for table in ("per_class_f1", "teacher_agreement", "selective_by_tier", "aurc", "soft_targets"):
        assert f"{table}.csv" in names
    for f in (
        "report.md",
        "report.json",
        "summary.txt",
        "forest.png",
        "reliability.png",
        "per_class_f1_tail.png",
        "coverage_by_tier.png",
    ):
        assert f in names
    assert not [p for p in report_dir.parent.iterdir() if p.name.startswith(".out.tmp")]


def test_pngs_are_images(report_dir):
    import matplotlib.image as mpimg

    for png in report_dir.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        h, w = mpimg.imread(png).shape[:2]
        assert 200 <= h <= 2000 and 200 <= w <= 3000, (png.name, h, w)


def test_markdown_and_summary_name_the_ids_hash(report_dir):
    from kdmetrics import check_aligned, load_predictions

    sha = check_aligned([load_predictions(report_dir.parent / "t.npz")])
    assert sha in (report_dir / "report.md").read_text()
    assert sha in (report_dir / "summary.txt").read_text()
    assert json.loads((report_dir / "report.json").read_text())["scalars"]["ids_sha256"] == sha


def test_prints_summary(tmp_path, capsys):
    paths = write_files(tmp_path)
    args = [a for a in report_args(paths, tmp_path / "o") if a != "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Paired bootstrap" in out and "Temperature scaling" in out and "SLA" in out
    # The findings in words come first.
    assert out.index("== Findings ==") < out.index("== Inputs ==")
    assert "P(distilled better)" in out


def test_without_tiers_only_all(tmp_path):
    y = labels()
    for name, signal in (("t", 3.0), ("v", 1.5), ("d", 2.0)):
        save_predictions(tmp_path / f"{name}.npz", logits(y, signal, 5), y)
    out = tmp_path / "o"
    assert (
        main(
            [
                "report",
                "--teacher",
                str(tmp_path / "t.npz"),
                "--vanilla",
                str(tmp_path / "v.npz"),
                "--distilled",
                str(tmp_path / "d.npz"),
                "--out",
                str(out),
                "--n-resamples",
                "50",
                "--quiet",
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert {r["group"] for r in rep["tables"]["metrics"]} == {"all"}
    assert any("No class tiers" in n for n in rep["notes"])


def _bad(tmp_path, capsys, args, name_in_message):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out), "--n-resamples", "20", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert name_in_message in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    return err


def _base(paths, **replace):
    files = {
        "teacher": paths["teacher"][0],
        "vanilla": paths["vanilla"][0],
        "distilled": paths["distilled"][0],
        **replace,
    }
    return [
        "report",
        "--teacher",
        files["teacher"],
        "--vanilla",
        files["vanilla"],
        "--distilled",
        files["distilled"],
        "--tier-sizes",
        "3",
        "4",
    ]


def test_missing_file(tmp_path, capsys):
    paths = write_files(tmp_path)
    missing = str(tmp_path / "nope.npz")
    err = _bad(tmp_path, capsys, _base(paths, vanilla=missing), missing)
    assert "no such file" in err


def test_missing_key(tmp_path, capsys):
    paths = write_files(tmp_path)
    bad = tmp_path / "nolabels.npz"
    np.savez(bad, logits=logits(labels(), 1.0, 3))
    err = _bad(tmp_path, capsys, _base(paths, distilled=str(bad)), str(bad))
    assert "labels" in err


def test_nan_logits(tmp_path, capsys):
    paths = write_files(tmp_path)
    y = labels()
    z = logits(y, 1.0, 3)
    z[7, 2] = np.nan
    bad = tmp_path / "nan.npz"
    save_predictions(bad, z, y, ids=[f"ex{i}" for i in range(N)], allow_nonfinite=True)
    err = _bad(tmp_path, capsys, _base(paths, distilled=str(bad)), str(bad))
    assert "non-finite" in err and "row 7" in err


@pytest.mark.parametrize("problem", ["n", "k", "ids", "labels"])
def test_disagreeing_files(tmp_path, capsys, problem):
    paths = write_files(tmp_path)
    y = labels()
    ids = np.array([f"ex{i}" for i in range(N)])
    z = logits(y, 1.0, 3)
    if problem == "n":
        y, z, ids = y[:-1], z[:-1], ids[:-1]
    elif problem == "k":
        z = np.concatenate([z, z[:, :1]], axis=1)
    elif problem == "ids":
        ids = ids.copy()
        ids[[4, 5]] = ids[[5, 4]]
    else:
        y = y.copy()
        y[9] = (y[9] + 1) % K
    bad = tmp_path / "bad.npz"
    save_predictions(bad, z, y, ids=ids)
    err = _bad(tmp_path, capsys, _base(paths, distilled=str(bad)), str(bad))
    if problem in ("ids", "labels"):
        assert "position" in err


def test_bad_train_counts(tmp_path, capsys):
    paths = write_files(tmp_path)
    counts = tmp_path / "counts.txt"
    counts.write_text("1 2 3\n")
    err = _bad(tmp_path, capsys, [*_base(paths), "--train-counts", str(counts)], str(counts))
    assert "12 classes" in err


def test_model_argument_needs_name(tmp_path, capsys):
    paths = write_files(tmp_path)
    _bad(tmp_path, capsys, [*_base(paths), "--model", paths["vanilla"][0]], "NAME=FILE")


def test_refuses_non_empty_out(tmp_path, capsys):
    paths = write_files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [*_base(paths), "--out", str(out), "--n-resamples", "20", "--quiet"]
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    # A folder kdmetrics did not write is never replaced, even with --overwrite.
    assert main([*args, "--overwrite"]) == 2
    assert "not written by kdmetrics" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_help_documents_seeds_and_grid(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert "--grid" in text and "noise floor" in text and "compare_seeds" in text
