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


# ---------------------------------------------------------------- integrity traps


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_d3_nonfinite_teacher_logits_refused_on_open(tmp_path, data, suffix, bad):
    logits, _, ids = data
    z = logits.copy()
    z[17, 2] = bad
    path = tmp_path / f"t{suffix}"
    save_teacher_logits(path, z, ids)
    with pytest.raises(ValueError, match=r"TeacherLogits: .*logits row 17 holds NaN or inf"):
        TeacherLogits.open(path)
    with pytest.raises(ValueError, match="row 17 holds NaN or inf"):
        TeacherLogits(z, ids)


def test_d3_float16_overflow_in_a_saved_teacher_is_refused(tmp_path, data):
    logits, _, ids = data
    z = logits.astype(np.float32)
    z[3, 0] = 1e5  # beyond float16: becomes inf when saved as float16
    with np.errstate(over="ignore"):
        save_teacher_logits(tmp_path / "t.npz", z.astype(np.float16), ids)
    with pytest.raises(ValueError, match="row 3 holds NaN or inf .*float16 overflow"):
        TeacherLogits.open(tmp_path / "t.npz")


def test_d4_bitflipped_memory_mapped_teacher_is_refused(tmp_path):
    from kdmetrics.kd.store import _mmap_npz_member

    path = tmp_path / "t.npz"
    save_teacher_logits(path, np.zeros((100, 4), np.float16), np.arange(100))
    ok = TeacherLogits.open(path)
    assert isinstance(ok.logits, np.memmap)  # still memory-mapped after the check
    off = _mmap_npz_member(str(path), "logits.npy").offset
    b = bytearray(path.read_bytes())
    b[off + 2 * (50 * 4 + 1) + 1] ^= 0x70  # a 0.0 would read back as 8192.0
    bad = tmp_path / "t_bad.npz"
    bad.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=r"TeacherLogits.open: .*t_bad.npz: .*Bad CRC-32"):
        TeacherLogits.open(bad)


def test_d19_truncated_npy_teacher_names_the_file(tmp_path, data):
    logits, _, ids = data
    save_teacher_logits(tmp_path / "t.npy", logits, ids)
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"TeacherLogits.open: .*t.npy: not a readable .npy"):
        TeacherLogits.open(tmp_path / "t.npy")


def test_h10_single_class_teacher_refused_and_labels_checked_against_k(data):
    logits, labels, ids = data
    with pytest.raises(ValueError, match="1 class.*at least 2"):
        TeacherLogits(np.zeros((N, 1), np.float32), ids)
    t = TeacherLogits(logits, ids)
    y = labels.copy()
    y[9] = K
    with pytest.raises(ValueError, match=rf"check_aligned: labels\[9\] = {K} is out of range"):
        t.check_aligned(ids, labels=y)  # no n_classes given: the teacher's K is the bound


def test_h3_permuted_rows_with_intact_ids_only_the_accuracy_check_sees(data):
    """Documented limitation: the alignment check trusts the ids. A full shuffle of
    the rows (ids kept in order) is caught by the near-chance warning when labels
    are passed; without labels, or for a partial shuffle, it passes."""
    logits, labels, ids = data
    rng = np.random.default_rng(1)
    shuffled = TeacherLogits(logits[rng.permutation(N)], ids)
    with pytest.warns(NearChanceTeacherWarning, match="almost surely misaligned"):
        shuffled.check_aligned(ids, labels=labels, n_classes=K)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shuffled.check_aligned(ids, n_classes=K)  # no labels: nothing to test against
        part = logits.copy()
        idx = rng.choice(N, size=N * 15 // 100, replace=False)
        part[idx] = part[rng.permutation(idx)]
        TeacherLogits(part, ids).check_aligned(ids, labels=labels, n_classes=K)


def test_ignored_labels_left_out_of_the_teacher_accuracy(data):
    logits, labels, ids = data
    t = TeacherLogits(logits, ids)
    y = labels.copy()
    y[::2] = -100
    keep = y != -100
    assert t.accuracy(y) == float((logits[keep].argmax(1) == y[keep]).mean())
