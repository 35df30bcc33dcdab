"""report and compare read other tools' layouts through the mapping options:
an .npz with softmax probabilities under ``predictions`` and labels under
``ground_truth`` gives the same numbers as the canonical file of its
log-probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kdmetrics import save_predictions
from kdmetrics.cli import main

N, K = 300, 6


def _probs(seed: int, signal: float, y: np.ndarray) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=(N, K))
    z[np.arange(N), y] += signal
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("mapped")
    y = np.random.default_rng(0).integers(0, K, N)
    out = {"foreign": {}, "canonical": {}}
    for name, seed, signal in (("teacher", 1, 3.0), ("vanilla", 2, 1.5), ("distilled", 3, 2.0)):
        p = _probs(seed, signal, y)
        foreign = d / f"{name}_foreign.npz"
        np.savez(foreign, predictions=p, ground_truth=y)
        canonical = d / f"{name}.npz"
        save_predictions(str(canonical), np.log(p), y, model=name)
        out["foreign"][name], out["canonical"][name] = str(foreign), str(canonical)
    return d, out


MAPPING = ["--logits-key", "predictions", "--labels-key", "ground_truth", "--probs"]


def test_report_reads_mapped_probabilities(files):
    d, f = files
    common = ["--n-resamples", "100", "--tier-sizes", "2", "2", "--quiet"]
    runs = {}
    for kind, extra in (("foreign", MAPPING), ("canonical", [])):
        out = d / f"report_{kind}"
        args = ["report", "--teacher", f[kind]["teacher"], "--vanilla", f[kind]["vanilla"]]
        args += ["--distilled", f[kind]["distilled"], "--out", str(out), *common, *extra]
        assert main(args) == 0
        runs[kind] = json.loads((out / "report.json").read_text())
    a, b = runs["foreign"]["tables"], runs["canonical"]["tables"]
    assert a["bootstrap"] == b["bootstrap"] and a["metrics"] == b["metrics"]


def test_compare_reads_mapped_probabilities(files):
    d, f = files
    runs = {}
    for kind, extra in (("foreign", MAPPING), ("canonical", [])):
        out = d / f"compare_{kind}"
        args = ["compare", "--reference", f"v={f[kind]['vanilla']}"]
        args += ["--variant", f"d={f[kind]['distilled']}", "--out", str(out)]
        args += ["--n-resamples", "100", "--quiet", *extra]
        assert main(args) == 0
        runs[kind] = json.loads((out / "report.json").read_text())
    assert runs["foreign"]["tables"]["deltas"] == runs["canonical"]["tables"]["deltas"]


def test_zero_probability_is_refused_by_name(files, tmp_path, capsys):
    d, f = files
    p = np.load(f["foreign"]["vanilla"])["predictions"].copy()
    p[0] = 0.0
    p[0, 0] = 1.0
    bad = tmp_path / "zero.npz"
    np.savez(bad, predictions=p, ground_truth=np.load(f["foreign"]["vanilla"])["ground_truth"])
    args = ["compare", "--reference", f"v={bad}", "--variant", f"d={f['foreign']['distilled']}"]
    assert main([*args, "--out", str(tmp_path / "o"), "--quiet", *MAPPING]) == 2
    assert "probability 0 at row 0" in capsys.readouterr().err
