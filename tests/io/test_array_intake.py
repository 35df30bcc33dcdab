"""Array intake: probabilities per block, the probabilities-as-logits warning, torch tensors."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, softmax

import kdmetrics as km
from kdmetrics import _arrays, _kernels
from kdmetrics._arrays import ProbabilitiesAsLogitsWarning


def _problem(n=300, k=9, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * 2
    z[np.arange(n), y] += 2
    return y, z, softmax(z, axis=1).astype(dtype)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few rows, so every probabilities path crosses many blocks."""
    monkeypatch.setattr(_arrays, "BLOCK_BYTES", 8 * 9 * 7)  # 7 rows of K=9


def _full_log(p):
    with np.errstate(divide="ignore"):
        return np.log(p, dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_blocked_probs_equal_whole_log_path_bitwise(tiny_blocks, dtype):
    y, _, p = _problem(dtype=dtype)
    p[3, :] = 0
    p[3, y[3]] = 1  # a saturated row: log 0 = -inf elsewhere
    lp = _full_log(p)
    pred, conf, nll, brier = _kernels.example_stats("t", lp, y, 1.0, log_probs=True)
    assert np.array_equal(km.nll(y, p, probs=True, per_example=True), nll)
    assert np.array_equal(km.brier(y, p, probs=True, per_example=True), brier)
    # ECE from the kernel's confidences, binned in NumPy (right-closed, 15 bins).
    b = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
    ok = (pred == y).astype(float)
    ref = sum(abs(ok[b == i].sum() - conf[b == i].sum()) for i in range(15)) / len(y)
    assert km.ece(y, p, probs=True) == pytest.approx(ref, abs=1e-12)
    q = np.roll(p, 1, axis=0)
    kl, js = _kernels.divergences("t", lp, _full_log(q), 1.0, p_log_probs=True, q_log_probs=True)
    assert np.array_equal(km.kl_divergence(p, q, probs=True, per_example=True), kl)
    assert np.array_equal(km.js_divergence(p, q, probs=True, per_example=True), js)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(2, 6),
    t=st.sampled_from([0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
)
def test_probs_agree_with_logits_path(n, k, t, seed, dtype):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    p = softmax(z, axis=1).astype(dtype)
    q = softmax(rng.normal(size=(n, k)), axis=1).astype(dtype)
    lp = np.log(p.astype(np.float64))  # the logits these probabilities are
    lq = np.log(q.astype(np.float64))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_arrays, "BLOCK_BYTES", 8 * k * 3)  # 3 rows per block
        got = km.nll(y, p, probs=True, temperature=t, per_example=True)
        kl = km.kl_divergence(p, q, probs=True, temperature=t, per_example=True)
    ref = -log_softmax(lp / t, axis=1)[np.arange(n), y]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    # The logits path on log p gives the same numbers (to the documented 1e-6).
    np.testing.assert_allclose(got, km.nll(y, lp, temperature=t, per_example=True), atol=1e-6)
    a, b = log_softmax(lp / t, axis=1), log_softmax(lq / t, axis=1)
    np.testing.assert_allclose(kl, (np.exp(a) * (a - b)).sum(1), atol=1e-6)


def test_fit_temperature_probs_blocked_equals_one_block(monkeypatch):
    y, z, p = _problem(n=400)
    whole = km.fit_temperature(y, p, probs=True)  # fits in one block
    monkeypatch.setattr(_arrays, "BLOCK_BYTES", 8 * 9 * 16)
    blocked = km.fit_temperature(y, p, probs=True)
    assert blocked.temperature == pytest.approx(whole.temperature, rel=1e-12)
    assert blocked.nll_after == pytest.approx(whole.nll_after, rel=1e-12)
    logits_fit = km.fit_temperature(y, np.log(p.astype(np.float64)))
    assert blocked.temperature == pytest.approx(logits_fit.temperature, rel=1e-9)


def test_probability_errors_name_the_global_row(tiny_blocks):
    y, _, p = _problem(n=100, dtype=np.float64)
    bad = p.copy()
    bad[57, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"nll: logits has a NaN or infinite value at row 57, column 2"
    ):
        km.nll(y, bad, probs=True)
    bad = p.copy()
    bad[63] *= 0.5
    with pytest.raises(ValueError, match=r"ece: logits \(probabilities\) row 63 sums to 0\.5"):
        km.ece(y, bad, probs=True)
    bad = p.copy()
    bad[41, 0] = -0.25
    with pytest.raises(
        ValueError, match=r"q_logits \(probabilities\) has a negative value -0\.25 at row 41"
    ):
        km.kl_divergence(p, bad, probs=True)
    assert np.array_equal(bad[41, 0], -0.25)  # the caller's array is untouched


def test_probabilities_read_as_logits_warn_and_are_not_switched():
    y, z, p = _problem()
    with pytest.warns(ProbabilitiesAsLogitsWarning, match="probs=True"):
        as_logits = km.nll(y, p)
    # Still read as logits: softmax of the probabilities, not the probabilities.
    ref = -log_softmax(p.astype(np.float64), axis=1)[np.arange(len(y)), y].mean()
    assert as_logits == pytest.approx(ref, abs=1e-6)
    assert as_logits != pytest.approx(km.nll(y, p, probs=True), rel=1e-3)
    with pytest.warns(ProbabilitiesAsLogitsWarning):
        km.kl_divergence(p, p)
    with pytest.warns(ProbabilitiesAsLogitsWarning):
        km.fit_temperature(y, p)


def test_no_warning_for_logits_few_rows_or_uniform_rows():
    y, z, p = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        km.nll(y, z)
        km.nll(y, p, probs=True)
        km.nll(y[:5], p[:5])  # too few rows to tell
        km.nll(y, np.full_like(p, 1 / p.shape[1]))  # uniform: the same either way


def test_kl_js_probs_flag_is_consistent_with_summary(tiny_blocks):
    """D6: probs= sets both sides; p_probs/q_probs override one side."""
    y, z, p = _problem(dtype=np.float64)
    assert km.kl_divergence(p, p, probs=True) == 0.0
    t = km.summary(y, p, probs=True, reference_logits=p)
    assert t.loc["all", "kl"] == 0.0
    mixed = km.kl_divergence(z, p, q_probs=True)
    assert mixed == pytest.approx(km.kl_divergence(z, z), abs=1e-9)
    assert km.js_divergence(p, z, probs=True, q_probs=False) == pytest.approx(
        km.js_divergence(z, z), abs=1e-9
    )


def test_paired_bootstrap_accepts_probabilities():
    y, z, p = _problem()
    z2 = z * 0.7
    p2 = softmax(z2, axis=1)
    a = km.paired_bootstrap(y, z, z2, n_resamples=40, seed=3, reference_logits=z * 1.3)
    b = km.paired_bootstrap(
        y, p, p2, n_resamples=40, seed=3, probs=True, reference_logits=softmax(z * 1.3, axis=1)
    )
    cols = ["a", "b", "delta", "ci_low", "ci_high"]
    np.testing.assert_allclose(b[cols].to_numpy(float), a[cols].to_numpy(float), atol=1e-5)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.bfloat16])
def test_tensors_of_any_float_dtype_with_grad(dtype):
    y, z, p = _problem()
    t = torch.tensor(z, dtype=dtype, requires_grad=True)
    ref = t.detach().to(torch.float64).numpy()  # the values the tensor holds, exactly
    exact = dtype != torch.bfloat16 and dtype != torch.float16
    for f in (km.nll, km.brier, km.ece, km.accuracy, km.macro_f1):
        got, want = f(torch.tensor(y), t), f(y, ref)
        assert got == pytest.approx(want, abs=1e-6 if not exact else 1e-9)
    assert km.top_k_accuracy(y, t, k=2) == km.top_k_accuracy(y, ref, k=2)
    tp = torch.tensor(p, dtype=dtype, requires_grad=True)
    refp = tp.detach().to(torch.float64).numpy()
    refp = refp / refp.sum(1, keepdims=True)
    assert km.nll(y, tp, probs=True) == pytest.approx(km.nll(y, refp, probs=True), abs=2e-2)
    assert t.requires_grad and t.grad is None  # untouched


def test_bfloat16_matches_its_float32_values_exactly():
    y, z, _ = _problem()
    t = torch.tensor(z, dtype=torch.bfloat16)
    z32 = t.float().numpy()
    assert km.nll(y, t, per_example=True).tolist() == km.nll(y, z32, per_example=True).tolist()
    assert km.ece(y, t) == km.ece(y, z32)
    assert km.kl_divergence(t, t * 2).__eq__(km.kl_divergence(z32, (t * 2).float().numpy()))
    # The whole-array path (argmax metrics) reads bfloat16 as exact float16 when it can.
    arr = _arrays.scores_array("f", t)
    assert arr.dtype == np.float16 and np.array_equal(arr.astype(np.float32), z32)
    wide = torch.tensor([[1e-30, 1.0], [1e30, 2.0]], dtype=torch.bfloat16)
    arr = _arrays.scores_array("f", wide)
    assert arr.dtype == np.float32 and np.array_equal(arr, wide.float().numpy())


def test_import_kdmetrics_does_not_import_torch():
    code = "import sys, kdmetrics, kdmetrics.io; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_big_endian_floats_are_read():
    y, z, p = _problem(n=50)
    for dtype in (">f2", ">f4", ">f8"):
        native = z.astype(dtype.replace(">", "<"))
        assert km.nll(y, z.astype(dtype)) == km.nll(y, native)
        assert km.nll(y, p.astype(dtype), probs=True) == km.nll(
            y, p.astype(dtype.replace(">", "<")), probs=True
        )
    with pytest.raises(ValueError, match="must be float16, float32 or float64"):
        km.nll(y, z.astype(np.longdouble))
