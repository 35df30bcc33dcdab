"""Teacher-logit files: memory-mapping, fetching by index or id, alignment checks."""

import warnings

import numpy as np
import pytest

from kdmetrics import ids_sha256
from kdmetrics.kd import (
    NearChanceTeacherWarning,
    TeacherLogits,
    check_teachers,
    near_chance_threshold,
    save_teacher_logits,
)

from _kd_torch import torch

N, K = 300, 6


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, size=N)
    logits = rng.normal(size=(N, K)).astype(np.float16)
    logits[np.arange(N), labels] += 4  # a good teacher: argmax mostly the label
    ids = np.array([f"ex{i:04d}" for i in range(N)])
    return logits, labels, ids


def test_npz_is_memory_mapped_and_fetches_rows_by_index(tmp_path, data):
    logits, labels, ids = data
    path = tmp_path / "t.npz"
    save_teacher_logits(path, logits, ids)
    t = TeacherLogits.open(path)
    assert isinstance(t.logits, np.memmap)
    assert t.logits.dtype == np.float16
    idx = torch.tensor([17, 3, 299, 0, 3])
    rows = t.fetch(idx)
    assert rows.dtype == torch.float32
    np.testing.assert_array_equal(rows.numpy(), logits[idx.numpy()].astype(np.float32))
    np.testing.assert_array_equal(t.fetch_ids(["ex0299", "ex0017"]).numpy(), logits[[299, 17]])
    assert t.ids_sha256 == ids_sha256(ids)
    assert t.check_aligned(ids, labels=labels, n_classes=K) == ids_sha256(ids)


def test_npy_with_sidecar_ids(tmp_path, data):
    logits, labels, ids = data
    save_teacher_logits(tmp_path / "t.npy", logits, ids)
    t = TeacherLogits.open(tmp_path / "t.npy")
    assert isinstance(t.logits, np.memmap)
    np.testing.assert_array_equal(t.ids, ids)
    np.testing.assert_array_equal(t.fetch([5]).numpy()[0], logits[5])
    np.save(tmp_path / "bare.npy", logits)
    with pytest.raises(ValueError, match="no ids"):
        TeacherLogits.open(tmp_path / "bare.npy")


def test_compressed_npz_is_loaded(tmp_path, data):
    logits, _, ids = data
    np.savez_compressed(tmp_path / "c.npz", logits=logits, ids=ids)
    t = TeacherLogits.open(tmp_path / "c.npz")
    assert not isinstance(t.logits, np.memmap)
    np.testing.assert_array_equal(t.fetch([1, 2]).numpy(), logits[[1, 2]].astype(np.float32))


def test_reordered_teacher_is_refused_at_first_bad_position(tmp_path, data):
    logits, labels, ids = data
    order = np.arange(N)
    order[[40, 41]] = [41, 40]
    save_teacher_logits(tmp_path / "t.npz", logits[order], ids[order])
    t = TeacherLogits.open(tmp_path / "t.npz")
    with pytest.raises(ValueError, match=r"position 40 \('ex0041' vs 'ex0040'\).*another order"):
        t.check_aligned(ids, labels=labels, n_classes=K)


def test_truncated_teacher_is_refused(tmp_path, data):
    logits, labels, ids = data
    save_teacher_logits(tmp_path / "t.npz", logits[:-10], ids[:-10])
    t = TeacherLogits.open(tmp_path / "t.npz")
    with pytest.raises(
        ValueError, match="has 290 rows but the training set has 300; first unmatched position 290"
    ):
        t.check_aligned(ids, labels=labels, n_classes=K)


def test_class_count_mismatch_is_refused(tmp_path, data):
    logits, labels, ids = data
    save_teacher_logits(tmp_path / "t.npz", logits[:, :-1], ids)
    t = TeacherLogits.open(tmp_path / "t.npz")
    with pytest.raises(ValueError, match="has 5 classes but the student has 6"):
        t.check_aligned(ids, labels=labels, n_classes=K)


def test_near_chance_teacher_warns(tmp_path, data):
    logits, labels, ids = data
    shuffled = logits[np.random.default_rng(1).permutation(N)]  # rows no longer match labels
    save_teacher_logits(tmp_path / "t.npz", shuffled, ids)
    t = TeacherLogits.open(tmp_path / "t.npz")
    with pytest.warns(NearChanceTeacherWarning, match="near chance"):
        t.check_aligned(ids, labels=labels, n_classes=K)
    # A good teacher raises no warning (filterwarnings=error would turn one into a failure).
    good = TeacherLogits(logits=logits, ids=ids)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good.check_aligned(ids, labels=labels, n_classes=K)


def test_near_chance_threshold():
    chance, thr = near_chance_threshold(np.array([0, 1, 2, 3] * 25), 4)
    assert (chance, thr) == (0.25, 0.5)
    chance, thr = near_chance_threshold(np.array([0] * 80 + [1] * 20), 10)
    assert chance == 0.8 and thr == pytest.approx(0.9)


def test_all_teachers_checked(tmp_path, data):
    logits, labels, ids = data
    good = TeacherLogits(logits=logits, ids=ids, path="good")
    bad = TeacherLogits(logits=logits[::-1].copy(), ids=ids[::-1].copy(), path="bad")
    with pytest.raises(ValueError, match="bad: ids differ from the training set at position 0"):
        check_teachers([good, bad], ids, labels=labels, n_classes=K)


def test_int_and_str_ids_compare_as_text():
    t = TeacherLogits(logits=np.zeros((3, 3), np.float32), ids=np.array([7, 8, 9]))
    t.check_aligned(np.array(["7", "8", "9"]))
    with pytest.raises(ValueError, match="position 2"):
        t.check_aligned(np.array(["7", "8", "10"]))


def test_fetch_out_of_range():
    t = TeacherLogits(logits=np.zeros((3, 3), np.float32), ids=np.arange(3))
    with pytest.raises(ValueError, match="out of range"):
        t.fetch([3])
