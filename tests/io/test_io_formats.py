"""Prediction files: other layouts mapped explicitly, alignment by id, save/load round trips."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import softmax

import kdmetrics as km
from kdmetrics.cli import main
from kdmetrics.io import align_predictions, load_predictions, save_predictions


@st.composite
def tables(draw):
    n = draw(st.integers(1, 30))
    k = draw(st.integers(2, 6))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    z = draw(hnp.arrays(dtype, (n, k), elements=st.floats(-1e3, 1e3, width=16, allow_nan=False)))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    ids = np.asarray(
        draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n, unique=True))
    )
    return z, y, ids


SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(tables())
def test_readers_return_what_numpy_wrote(tmp_path, data):
    z, y, ids = data
    d = tmp_path / f"case{np.random.default_rng().integers(1 << 60)}"
    d.mkdir()
    # .npz with other key names
    np.savez(d / "other.npz", scores=z, target=y, uid=ids)
    got = load_predictions(d / "other.npz", logits_key="scores", labels_key="target", ids_key="uid")
    assert got.logits.dtype == z.dtype and np.array_equal(got.logits, z, equal_nan=True)
    assert np.array_equal(got.labels, y) and np.array_equal(got.ids, ids)
    # a folder of .npy files, and one .npy file with sibling labels
    np.save(d / "logits.npy", z)
    np.save(d / "labels.npy", y)
    got = load_predictions(d)
    assert np.array_equal(got.logits, z) and np.array_equal(got.labels, y) and got.ids is None
    got = load_predictions(d / "logits.npy", labels_key="labels")
    assert np.array_equal(got.logits, z) and np.array_equal(got.labels, y)
    # CSV: one column per class (glob and explicit list) and a list column
    k = z.shape[1]
    df = pd.DataFrame({f"p{c}": z[:, c].astype(np.float64) for c in range(k)})
    df["y"] = y
    df["id"] = ids
    df.to_csv(d / "t.csv", index=False)
    got = load_predictions(d / "t.csv", logits_key="p*", labels_key="y", ids_key="id")
    assert np.array_equal(got.logits, z.astype(np.float64)) and np.array_equal(got.ids, ids)
    cols = ",".join(f"p{c}" for c in reversed(range(k)))
    got = load_predictions(d / "t.csv", logits_key=cols, labels_key="y")
    assert np.array_equal(got.logits, z[:, ::-1].astype(np.float64))
    lists = pd.DataFrame(
        {"scores": [json.dumps(r) for r in z.astype(np.float64).tolist()], "labels": y}
    )
    lists.to_csv(d / "l.csv", index=False)
    got = load_predictions(d / "l.csv", logits_key="scores")
    assert np.array_equal(got.logits, z.astype(np.float64)) and np.array_equal(got.labels, y)


def test_torch_dict(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 4))
    y = rng.integers(0, 4, 20)
    for dtype in (torch.float32, torch.bfloat16):
        t = torch.tensor(z, dtype=dtype)
        torch.save(
            {"out": t, "y": torch.tensor(y), "idx": torch.arange(20), "seed": 3}, tmp_path / "p.pt"
        )
        got = load_predictions(tmp_path / "p.pt", logits_key="out", labels_key="y", ids_key="idx")
        assert np.array_equal(got.logits.astype(np.float64), t.to(torch.float64).numpy())
        assert np.array_equal(got.labels, y) and np.array_equal(got.ids, np.arange(20))
        assert got.metadata["seed"] == 3
    with pytest.raises(
        ValueError, match=r"missing key\(s\) \['logits'\]; found \['idx', 'out', 'seed', 'y'\]"
    ):
        load_predictions(tmp_path / "p.pt", labels_key="y")


def test_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    z = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    pd.DataFrame({"logits": list(z), "labels": np.arange(10) % 3}).to_parquet(
        tmp_path / "a.parquet"
    )
    got = load_predictions(tmp_path / "a.parquet")
    assert got.logits.dtype == np.float32 and np.array_equal(got.logits, z)


def test_parquet_without_pyarrow_says_so(tmp_path, monkeypatch):
    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"a.parquet: reading Parquet needs pyarrow"):
        load_predictions(tmp_path / "a.parquet")


def test_mismatch_names_the_key_and_what_was_found(tmp_path):
    np.savez(tmp_path / "x.npz", predictions=np.eye(3), ground_truth=np.arange(3))
    with pytest.raises(
        ValueError,
        match=r"missing key\(s\) \['logits', 'labels'\]; found \['ground_truth', 'predictions'\]",
    ):
        load_predictions(tmp_path / "x.npz")
    with pytest.raises(ValueError, match=r"missing key\(s\) \['uid'\]"):
        load_predictions(
            tmp_path / "x.npz", logits_key="predictions", labels_key="ground_truth", ids_key="uid"
        )
    pd.DataFrame({"a": [0.1], "b": [0.9], "y": [1]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match=r"column 'logits' not found; found \['a', 'b', 'y'\]"):
        load_predictions(tmp_path / "t.csv", labels_key="y")
    with pytest.raises(ValueError, match=r"labels column 'labels' not found"):
        load_predictions(tmp_path / "t.csv", logits_key="a,b")
    with pytest.raises(ValueError, match="cannot tell the layout"):
        load_predictions(_touch(tmp_path / "x.bin"))


def _touch(path):
    path.write_bytes(b"")
    return path


def _probs_file(tmp_path, n=400, k=11, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * 2
    z[np.arange(n), y] += 2
    p = softmax(z, axis=1).astype(np.float32)
    path = tmp_path / "preds.npz"
    np.savez(path, predictions=p, ground_truth=y)  # another tool's layout
    return path, p, y


def test_summary_on_mapped_probabilities_equals_canonical_file_to_the_last_bit(tmp_path, capsys):
    path, p, y = _probs_file(tmp_path)
    mapped = tmp_path / "mapped.csv"
    rc = main(["summary", str(path), "--logits-key", "predictions", "--labels-key",
               "ground_truth", "--probs", "--csv", str(mapped)])  # fmt: skip
    assert rc == 0
    canon = tmp_path / "canon.npz"
    save_predictions(canon, p, y, probs=True)
    direct = tmp_path / "canon.csv"
    assert main(["summary", str(canon), "--csv", str(direct)]) == 0
    assert mapped.read_bytes() == direct.read_bytes()
    # and both equal the API on the arrays, bit for bit
    api = km.summary(y, p, probs=True)
    table = pd.read_csv(mapped, index_col="group")
    for col in api.columns:
        assert table.loc["all", col] == api.loc["all", col], col
    # without --probs the same file is refused, naming what was found
    assert main(["summary", str(path)]) == 2
    assert "found ['ground_truth', 'predictions']" in capsys.readouterr().err


def test_convert_writes_the_canonical_file_and_the_ids_hash(tmp_path, capsys):
    path, p, y = _probs_file(tmp_path)
    ids = np.array([f"img{i:04d}" for i in range(len(y))])
    np.savez(path, predictions=p, ground_truth=y, names=ids)
    out = tmp_path / "out.npz"
    rc = main(["convert", str(path), str(out), "--logits-key", "predictions",
               "--labels-key", "ground_truth", "--ids-key", "names", "--probs"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"ids sha256: {km.ids_sha256(ids)}" in printed
    got = load_predictions(out)
    assert got.probs and np.array_equal(got.logits, p) and np.array_equal(got.ids, ids)
    with np.load(out) as f:
        assert "logits" not in f.files  # probabilities are never stored as logits
    assert main(["convert", str(path), str(out)]) == 2  # exists
    assert "exists" in capsys.readouterr().err


def test_align_by_id_reorders_and_reports(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n, k = 50, 4
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    ids = np.array([f"ex{i}" for i in range(n)])
    perm = rng.permutation(n)
    save_predictions(tmp_path / "a.npz", z, y, ids=ids)
    save_predictions(tmp_path / "b.npz", z[perm] * 2, y[perm], ids=ids[perm])
    a, b = load_predictions(tmp_path / "a.npz"), load_predictions(tmp_path / "b.npz")
    with pytest.raises(ValueError, match="ids differ.*--align-by-id"):
        km.check_aligned([a, b])
    b2, moved = align_predictions(a, b)
    assert moved == int(np.count_nonzero(perm != np.arange(n)))
    assert np.array_equal(b2.ids, ids) and np.array_equal(b2.logits, z * 2)
    assert np.array_equal(b2.labels, y) and km.check_aligned([a, b2]) == km.ids_sha256(ids)
    assert align_predictions(a, a) == (a, 0)
    rc = main(["summary", str(tmp_path / "a.npz"), "--reference", str(tmp_path / "b.npz"),
               "--align-by-id"])  # fmt: skip
    assert rc == 0 and f"{moved} of {n} rows" in capsys.readouterr().err
    # a missing or an extra id is named
    save_predictions(tmp_path / "c.npz", z[:-1], y[:-1], ids=ids[:-1])
    c = load_predictions(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"id 'ex49' \(position 49 of .*a.npz\) is missing from"):
        align_predictions(a, c)
    with pytest.raises(ValueError, match=r"id 'ex49' of .*a.npz is not in .*c.npz"):
        align_predictions(c, a)
    save_predictions(tmp_path / "d.npz", z, y)
    with pytest.raises(ValueError, match="has no ids"):
        align_predictions(a, load_predictions(tmp_path / "d.npz"))


def test_corrupted_npz_is_one_clear_error_and_cli_exit_2(tmp_path, capsys):
    path = tmp_path / "p.npz"
    save_predictions(path, np.zeros((100, 4), np.float32), np.arange(100) % 4)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x5A  # inside the logits member: CRC fails
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"load_predictions: .*bad.npz: damaged or unreadable"):
        load_predictions(bad)
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(bytes(raw[:50]))
    with pytest.raises(ValueError, match=r"trunc.npz: not a readable .npz"):
        load_predictions(trunc)
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="labels file"):
        load_predictions(tmp_path / "x.npy")
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.npz" in err and "Traceback" not in err


def test_save_refuses_what_load_would_refuse(tmp_path):
    z, y = np.zeros((3, 2), np.float32), np.array([0, 1, 0])
    with pytest.raises(ValueError, match=r"metadata 'config' is a dict"):
        save_predictions(tmp_path / "m.npz", z, y, config={"lr": 0.1})
    with pytest.raises(ValueError, match=r"ids\[1\] is None"):
        save_predictions(tmp_path / "m.npz", z, y, ids=[0, None, 2])
    with pytest.raises(ValueError, match="contains a newline"):
        save_predictions(tmp_path / "m.npz", z, y, ids=["a", "b\nc", "d"])
    with pytest.raises(ValueError, match=r"Python objects"):
        save_predictions(tmp_path / "m.npz", z, y, note=[1, "a", None])
    assert not os.path.exists(tmp_path / "m.npz")
    # paths as ids become strings and load back
    save_predictions(tmp_path / "m.npz", z, y, ids=[tmp_path / f"{i}.png" for i in range(3)])
    got = load_predictions(tmp_path / "m.npz")
    assert got.ids.tolist() == [str(tmp_path / f"{i}.png") for i in range(3)]


def test_save_refuses_non_finite_logits_unless_asked(tmp_path):
    z, y = np.zeros((3, 2), np.float32), np.array([0, 1, 0])
    z[2, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite value at row 2, column 1"):
        save_predictions(tmp_path / "m.npz", z, y)
    save_predictions(tmp_path / "m.npz", z, y, allow_nonfinite=True)
    assert np.isinf(load_predictions(tmp_path / "m.npz").logits[2, 1])
    with pytest.raises(ValueError, match=r"row 0 sums to"):
        save_predictions(tmp_path / "p.npz", np.full((3, 2), 0.2), y, probs=True)


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array([0.0, 1.0, 0.0]), "must be (3 )?integer class indices, got .*dtype float64"),
        (np.array([0, -1, 0]), r"labels\[1\] = -1 is out of range \[0, 2\)"),
        (np.array([0, 1, 2]), r"labels\[2\] = 2 is out of range \[0, 2\)"),
    ],
)
def test_check_aligned_refuses_bad_labels(labels, match):
    p = km.Predictions(logits=np.zeros((3, 2), np.float32), labels=labels)
    with pytest.raises(ValueError, match=match):
        km.check_aligned([p, p])
    torch = pytest.importorskip("torch")  # noqa: F841
    from kdmetrics.kd import TeacherLogits

    t = TeacherLogits(np.zeros((3, 2), np.float32), ids=[0, 1, 2])
    with pytest.raises(ValueError, match="check_aligned: .*" + match):
        t.check_aligned([0, 1, 2], labels=labels)
