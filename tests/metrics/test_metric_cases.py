"""Hand-computed cases and conventions that a property test would not pin down."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import kdmetrics as km

LN3 = np.log(3.0)
# softmax([0, ln 3]) = [0.25, 0.75]
Z = np.array([[0.0, LN3], [LN3, 0.0], [0.0, 0.0]])
Y = np.array([0, 0, 1])


def test_hand_computed_scores():
    # preds: 1, 0, 0 (tie -> lowest index); correct: no, yes, no
    assert km.accuracy(Y, Z) == pytest.approx(1 / 3)
    assert km.nll(Y, Z) == pytest.approx((np.log(4) + np.log(4 / 3) + np.log(2)) / 3)
    brier = [(0.25 - 1) ** 2 + 0.75**2, (0.75 - 1) ** 2 + 0.25**2, 0.5**2 + 0.5**2]
    assert km.brier(Y, Z) == pytest.approx(np.mean(brier))
    # Per class: class 0 tp=1 fp=1 fn=1 -> 0.5; class 1 tp=0 fp=1 fn=1 -> 0
    np.testing.assert_allclose(km.f1_per_class(Y, Z), [0.5, 0.0])
    assert km.macro_f1(Y, Z) == pytest.approx(0.25)


def test_hand_computed_ece_with_two_bins():
    # confidences .75, .75, .5 -> bin 0 = [0, .5] holds .5 (wrong), bin 1 holds .75s (1 of 2)
    want = (1 / 3) * abs(0 - 0.5) + (2 / 3) * abs(0.5 - 0.75)
    assert km.ece(Y, Z, n_bins=2) == pytest.approx(want)
    table = km.reliability_table(Y, Z, n_bins=2)
    assert table["count"].tolist() == [1, 2]
    # left-closed bins move the 0.5 into the upper bin
    want_left = abs(1 / 3 - (0.75 + 0.75 + 0.5) / 3)
    assert km.ece(Y, Z, n_bins=2, right=False) == pytest.approx(want_left)


def test_saturated_confidence_lands_in_last_bin():
    z = np.array([[0.0, 200.0]], dtype=np.float32)  # softmax saturates to exactly 1.0
    table = km.reliability_table([1], z, n_bins=15)
    assert table["count"].iloc[-1] == 1
    assert km.ece([1], z) == 0.0


def test_temperature_scales_logits():
    assert km.nll(Y, Z, temperature=2.0) == pytest.approx(km.nll(Y, Z / 2.0))
    assert km.ece(Y, Z, temperature=0.5) == pytest.approx(km.ece(Y, Z * 2.0))


def test_absent_classes_and_zero_division():
    y = np.array([0, 0, 1])
    preds = np.array([0, 1, 1])
    # class 2 absent from both: excluded by default, counted with 0.0 / 1.0
    f1 = km.f1_per_class(y, preds, n_classes=3)
    assert np.isnan(f1[2])
    base = (2 / 3 + 2 / 3) / 2
    assert km.macro_f1(y, preds, n_classes=3) == pytest.approx(base)
    assert km.macro_f1(y, preds, n_classes=3, zero_division=0.0) == pytest.approx(4 / 9)
    assert km.macro_f1(y, preds, n_classes=3, zero_division=1.0) == pytest.approx(7 / 9)
    # a tier's macro F1 uses counts from all examples
    assert km.macro_f1(y, preds, n_classes=3, classes=[1]) == pytest.approx(2 / 3)


def test_kl_direction_and_js_bounds():
    p = np.array([[0.0, 0.0]])  # uniform
    q = np.array([[0.0, LN3]])  # [.25, .75]
    want = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert km.kl_divergence(p, q) == pytest.approx(want)
    assert km.kl_divergence(q, p) != pytest.approx(want)
    far = np.array([[1e4, 0.0]])
    near = np.array([[0.0, 1e4]])
    assert km.js_divergence(far, near) == pytest.approx(np.log(2), abs=1e-6)
    assert km.js_divergence(far, near, base=2) == pytest.approx(1.0, abs=1e-6)
    assert km.js_distance(p, p) == 0.0


def test_tiers_from_counts_ranks_by_frequency_ties_by_index():
    counts = np.array([10, 50, 10, 3, 50, 1])
    np.testing.assert_array_equal(km.tiers_from_counts(counts, sizes=(2, 2)), [1, 0, 1, 2, 0, 2])
    reference = km.tiers_from_counts(np.arange(113)[::-1] + 1)
    assert np.bincount(reference).tolist() == [20, 40, 53]


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    true = rng.normal(size=(4000, 10)) * 2
    y = np.array([rng.choice(10, p=np.exp(r) / np.exp(r).sum()) for r in true])
    fit = km.fit_temperature(y, true * 3.0)  # over-confident by 3x
    assert fit.temperature == pytest.approx(3.0, rel=0.1)
    assert fit.nll_after < fit.nll_before
    assert float(fit) == fit.temperature


def test_fit_temperature_warns_at_a_bound():
    z = np.array([[5.0, 0.0], [0.0, 5.0]])
    with pytest.warns(RuntimeWarning, match="bound"):
        fit = km.fit_temperature([0, 1], z)  # perfectly separable: wants T -> 0
    assert fit.at_bound and fit.temperature == pytest.approx(0.01)


def test_sla_threshold_and_threshold_table():
    z = np.log(np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]))
    y = np.array([0, 0, 1, 0])  # correct, correct, wrong, correct
    res = km.sla_threshold(y, z, target=0.95)
    assert res.threshold == pytest.approx(0.8)
    assert res.coverage == 0.5 and res.n_kept == 2
    # accuracy is not monotone: at 0.6 it is back to 3/4
    assert km.sla_threshold(y, z, target=0.75).threshold == pytest.approx(0.6)
    table = km.threshold_table(y, z, [0.5, 0.85, 0.95])
    assert table["n_kept"].tolist() == [4, 1, 0]
    assert np.isnan(table["accuracy"].iloc[2])
    assert np.isnan(km.sla_threshold([1, 1], z[:2], target=0.9).threshold)


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5000, 113)).astype(np.float16)
    y = rng.integers(0, 113, 5000)
    before = km.get_num_threads()
    try:
        km.set_num_threads(1)
        one = (km.nll(y, z), km.ece(y, z), km.js_divergence(z, z[::-1]))
        km.set_num_threads(2)
        two = (km.nll(y, z), km.ece(y, z), km.js_divergence(z, z[::-1]))
    finally:
        km.set_num_threads(0)
    assert one == two  # bit-identical
    assert before >= 1


def test_float16_is_read_as_is_and_strided_views_work():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 20)).astype(np.float16)
    y = rng.integers(0, 20, 300)
    assert km.nll(y, z) == km.nll(y, z.astype(np.float64))
    wide = np.zeros((300, 40), dtype=np.float32)
    wide[:, ::2] = z
    view = wide[:, ::2]  # not contiguous
    assert km.nll(y, view) == km.nll(y, z.astype(np.float32))
    assert km.js_divergence(view, z) == pytest.approx(0.0, abs=1e-12)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 5)).astype(np.float32)
    y = rng.integers(0, 5, 50)
    z0, y0 = z.copy(), y.copy()
    km.summary(y, z, tier_of_class=[0, 0, 1, 2, 2], reference_logits=z * 2)
    km.fit_temperature(y, z)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(y, y0)


def test_import_does_not_import_torch():
    code = "import sys, kdmetrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_summary_reference_columns():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(200, 6))
    y = rng.integers(0, 6, 200)
    table = km.summary(y, z)
    assert list(table.index) == ["all"]
    assert list(table.columns) == [
        "n",
        "accuracy",
        "macro_f1",
        "top_k_accuracy",
        "ece",
        "nll",
        "brier",
    ]
    table = km.summary(
        y, z, tier_of_class=["head", "head", "mid", "mid", "tail", "tail"], reference_logits=z
    )
    assert list(table.index) == ["all", "head", "mid", "tail"]
    assert table.loc["all", "kl"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc["all", "teacher_agreement"] == 1.0
    assert list(table.columns)[-3:] == ["kl", "js", "teacher_agreement"]
