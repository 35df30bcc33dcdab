"""Distillation losses against explicit float64 NumPy formulas (docs/conventions.md)."""

import numpy as np
import pytest

from kdmetrics.kd import (
    ce_loss,
    dkd_loss,
    dkd_warmup_factor,
    hard_kd_loss,
    kd_loss,
    multi_teacher_kd_loss,
)

from _kd_torch import torch

F = torch.nn.functional
torch.set_num_threads(1)


# ---------------------------------------------------------------- NumPy references


def np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def np_kl_rows(p, log_p, log_q):
    return np.where(p > 0, p * (log_p - log_q), 0.0).sum(axis=1)


def np_ce(s, y):
    return float(-np_log_softmax(s)[np.arange(len(y)), y].mean())


def np_kd(s, t, y, T, alpha):
    log_p, log_q = np_log_softmax(t / T), np_log_softmax(s / T)
    kl = np_kl_rows(np.exp(log_p), log_p, log_q).mean()
    return alpha * T**2 * kl + (1 - alpha) * np_ce(s, y)


def np_binary_rest(z, y, T):
    """Binary (target, rest) log-probs and renormalised non-target log-probs, in log space."""
    z = z / T
    n, k = z.shape
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    mask = np.ones_like(z, dtype=bool)
    mask[np.arange(n), y] = False
    rest = z[mask].reshape(n, k - 1)
    rest_lse = np.log(np.exp(rest - rest.max(1, keepdims=True)).sum(1)) + rest.max(1)
    binary = np.stack([z[np.arange(n), y] - lse, rest_lse - lse], axis=1)
    return binary, np_log_softmax(rest)


def np_dkd_terms(s, t, y, T):
    bs, rs = np_binary_rest(s, y, T)
    bt, rt = np_binary_rest(t, y, T)
    return np_kl_rows(np.exp(bt), bt, bs), np_kl_rows(np.exp(rt), rt, rs)


def np_dkd(s, t, y, T, alpha, beta, warmup=1.0):
    tckd, nckd = np_dkd_terms(s, t, y, T)
    return np_ce(s, y) + warmup * T**2 * (alpha * tckd.mean() + beta * nckd.mean())


def np_multi(s, ts, y, T, alpha, w, strategy):
    w = np.asarray(w, dtype=np.float64) / np.sum(w)
    log_q = np_log_softmax(s / T)
    if strategy == "split":
        kls = [np_kl_rows(np.exp(np_log_softmax(t / T)), np_log_softmax(t / T), log_q) for t in ts]
        kl = sum(wm * k for wm, k in zip(w, kls, strict=True)).mean()
    elif strategy == "fused":
        p = sum(wm * np.exp(np_log_softmax(t / T)) for wm, t in zip(w, ts, strict=True))
        kl = np_kl_rows(p, np.log(p), log_q).mean()
    else:
        z = sum(wm * t for wm, t in zip(w, ts, strict=True))
        kl = np_kl_rows(np.exp(np_log_softmax(z / T)), np_log_softmax(z / T), log_q).mean()
    return alpha * T**2 * kl + (1 - alpha) * np_ce(s, y)


def batch(seed, n=16, k=7, n_teachers=0, scale=3.0):
    rng = np.random.default_rng(seed)
    s = rng.normal(scale=scale, size=(n, k))
    t = rng.normal(scale=scale, size=(n_teachers or 1, n, k))
    y = rng.integers(0, k, size=n)
    return s, (t if n_teachers else t[0]), y


def tt(a, dtype=torch.float64, grad=False):
    return torch.tensor(a, dtype=dtype, requires_grad=grad)


# ---------------------------------------------------------------- KD


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 1.0), (0.5, 0.3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_kd_matches_reference(seed, T, alpha):
    s, t, y = batch(seed)
    out = kd_loss(tt(s), tt(t), torch.tensor(y), T=T, alpha=alpha)
    assert out.loss.item() == pytest.approx(np_kd(s, t, y, T, alpha), rel=1e-12, abs=1e-12)
    assert out.terms["ce"].item() == pytest.approx(np_ce(s, y), rel=1e-12)
    assert out.loss.dtype == torch.float64  # float64 kept (gradcheck); float32 otherwise


def test_kd_float32_close_to_float64_reference():
    s, t, y = batch(3)
    out = kd_loss(tt(s, torch.float32), tt(t, torch.float16), torch.tensor(y), T=4.0, alpha=0.9)
    assert out.loss.dtype == torch.float32
    t16 = t.astype(np.float16).astype(np.float64)  # the teacher as float16 holds it
    assert out.loss.item() == pytest.approx(np_kd(s, t16, y, 4.0, 0.9), rel=1e-5)


def test_alpha_zero_is_exactly_cross_entropy():
    s, t, y = batch(4)
    for dtype in (torch.float32, torch.float64):
        st = tt(s, dtype)
        out = kd_loss(st, tt(t, dtype), torch.tensor(y), T=4.0, alpha=0.0)
        assert torch.equal(out.loss, F.cross_entropy(st, torch.tensor(y)))
        assert torch.equal(ce_loss(st, torch.tensor(y)).loss, out.loss)


def broken_variants(s, t, y, T, alpha):
    """The classic silent bugs (docs/conventions.md), each a plausible-looking KD loss."""
    ce = F.cross_entropy(s, y)
    p, log_p = F.softmax(t / T, dim=1), F.log_softmax(t / T, dim=1)
    log_q = F.log_softmax(s / T, dim=1)
    kl = F.kl_div(log_q, p, reduction="batchmean")
    return {
        # F.kl_div expects log-probabilities as input; softmax silently gives another number.
        "softmax_student": alpha
        * T**2
        * F.kl_div(F.softmax(s / T, dim=1), p, reduction="batchmean")
        + (1 - alpha) * ce,
        "reversed_kl": alpha * T**2 * F.kl_div(log_p, log_q.exp(), reduction="batchmean")
        + (1 - alpha) * ce,
        "alpha_on_wrong_term": (1 - alpha) * T**2 * kl + alpha * ce,
        "missing_T2": alpha * kl + (1 - alpha) * ce,
        # reduction="mean" divides by K too (written out: torch warns on it).
        "reduction_mean": alpha * T**2 * (p * (log_p - log_q)).mean() + (1 - alpha) * ce,
    }


def test_broken_variants_all_differ_from_kd_loss():
    s, t, y = batch(5)
    T, alpha = 4.0, 0.9
    st, tt_, yt = tt(s), tt(t), torch.tensor(y)
    good = kd_loss(st, tt_, yt, T=T, alpha=alpha).loss.item()
    assert good == pytest.approx(np_kd(s, t, y, T, alpha), rel=1e-12)
    for name, value in broken_variants(st, tt_, yt, T, alpha).items():
        assert abs(value.item() - good) > 1e-3 * abs(good), name


def test_kd_under_bf16_autocast_is_float32():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 5)
    x, y = torch.randn(8, 6), torch.randint(0, 5, (8,))
    teacher = torch.randn(8, 5).half()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = lin(x)
        assert s.dtype == torch.bfloat16
        out = kd_loss(s, teacher, y, T=2.0, alpha=0.7)
    assert out.loss.dtype == torch.float32
    ref = np_kd(
        s.float().detach().numpy().astype(np.float64),
        teacher.float().numpy().astype(np.float64),
        y.numpy(),
        2.0,
        0.7,
    )
    assert out.loss.item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"T": 0.0, "alpha": 0.5}, "T must"),
        ({"T": -1.0, "alpha": 0.5}, "T must"),
        ({"T": float("nan"), "alpha": 0.5}, "T must"),
        ({"T": 2.0, "alpha": 1.5}, "alpha must"),
        ({"T": 2.0, "alpha": -0.1}, "alpha must"),
    ],
)
def test_kd_rejects_bad_hyperparameters(kwargs, match):
    s, t, y = batch(0)
    with pytest.raises(ValueError, match=match):
        kd_loss(tt(s), tt(t), torch.tensor(y), **kwargs)


def test_kd_rejects_bad_shapes():
    s, t, y = batch(0)
    with pytest.raises(ValueError, match="student_logits must be 2-D"):
        kd_loss(tt(s)[None], tt(t), torch.tensor(y), T=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="teacher_logits has shape"):
        kd_loss(tt(s), tt(t)[:, :-1], torch.tensor(y), T=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="labels must be a 1-D tensor of length 16"):
        kd_loss(tt(s), tt(t), torch.tensor(y[:-1]), T=2.0, alpha=0.5)


# ---------------------------------------------------------------- hard-label KD


def test_hard_kd_matches_reference():
    s, t, y = batch(6)
    out = hard_kd_loss(tt(s), tt(t), torch.tensor(y), alpha=0.6)
    ref = 0.6 * np_ce(s, t.argmax(1)) + 0.4 * np_ce(s, y)
    assert out.loss.item() == pytest.approx(ref, rel=1e-12)
    assert out.terms["ce_teacher"].item() == pytest.approx(np_ce(s, t.argmax(1)), rel=1e-12)


# ---------------------------------------------------------------- DKD


@pytest.mark.parametrize("T,alpha,beta,warmup", [(4.0, 1.0, 8.0, 1.0), (1.0, 0.5, 2.0, 0.3)])
def test_dkd_matches_reference(T, alpha, beta, warmup):
    s, t, y = batch(7)
    out = dkd_loss(tt(s), tt(t), torch.tensor(y), T=T, alpha=alpha, beta=beta, warmup=warmup)
    assert out.loss.item() == pytest.approx(np_dkd(s, t, y, T, alpha, beta, warmup), rel=1e-12)
    tckd, nckd = np_dkd_terms(s, t, y, T)
    assert out.terms["tckd"].item() == pytest.approx(tckd.mean(), rel=1e-12)
    assert out.terms["nckd"].item() == pytest.approx(nckd.mean(), rel=1e-12)


def test_dkd_tckd_is_stable_for_confident_students():
    # Target probability 1 - 1e-40: the rest mass underflows in float32, so the
    # authors' log(sum of probabilities) gives log 0; log-sum-exp does not.
    s, t, y = batch(8, scale=1.0)
    s[np.arange(len(y)), y] += 100.0
    out = dkd_loss(tt(s, torch.float32), tt(t, torch.float32), torch.tensor(y), T=1.0)
    assert torch.isfinite(out.loss)
    assert out.loss.item() == pytest.approx(np_dkd(s, t, y, 1.0, 1.0, 8.0), rel=1e-4)
    p = F.softmax(tt(s, torch.float32), dim=1)
    naive_rest = p.sum(1) - p[torch.arange(len(y)), torch.tensor(y)]
    assert (naive_rest == 0).any()  # the naive route would indeed hit log 0


def test_dkd_refuses_two_classes():
    s, t, y = batch(0, k=2)
    with pytest.raises(ValueError, match="K >= 3"):
        dkd_loss(tt(s), tt(t), torch.tensor(y), T=2.0)


def test_dkd_warmup():
    assert dkd_warmup_factor(1, 20) == pytest.approx(0.05)
    assert dkd_warmup_factor(40, 20) == 1.0
    assert dkd_warmup_factor(3, 0) == 1.0
    s, t, y = batch(9)
    out = dkd_loss(tt(s), tt(t), torch.tensor(y), T=4.0, warmup=0.0)
    assert torch.equal(out.loss, F.cross_entropy(tt(s), torch.tensor(y)))


# ---------------------------------------------------------------- multi-teacher


@pytest.mark.parametrize("strategy", ["split", "fused", "logit-average"])
def test_multi_matches_reference(strategy):
    s, ts, y = batch(10, n_teachers=3)
    w = [0.5, 0.3, 0.2]
    out = multi_teacher_kd_loss(
        tt(s), tt(ts), torch.tensor(y), T=3.0, alpha=0.8, weights=w, strategy=strategy
    )
    assert out.loss.item() == pytest.approx(np_multi(s, ts, y, 3.0, 0.8, w, strategy), rel=1e-12)
    if strategy == "split":
        assert {"kl_t0", "kl_t1", "kl_t2"} <= set(out.terms)


def test_strategies_give_different_targets():
    s, ts, y = batch(11, n_teachers=2)
    vals = {
        st: multi_teacher_kd_loss(
            tt(s), tt(ts), torch.tensor(y), T=2.0, alpha=1.0, strategy=st
        ).loss.item()
        for st in ("split", "fused", "logit-average")
    }
    assert len({round(v, 8) for v in vals.values()}) == 3


def grad_of(strategy, s, ts, y, weights=None, base="kd"):
    st = tt(s, grad=True)
    out = multi_teacher_kd_loss(
        st, tt(ts), torch.tensor(y), T=3.0, alpha=0.9, weights=weights, strategy=strategy, base=base
    )
    out.loss.backward()
    return out.loss.item(), st.grad


@pytest.mark.parametrize("per_example", [False, True])
def test_split_and_fused_same_gradient_under_plain_kd(per_example):
    s, ts, y = batch(12, n_teachers=3)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 1.0, size=(3, len(y))) if per_example else [0.2, 0.5, 0.3]
    ls, gs = grad_of("split", s, ts, y, w)
    lf, gf = grad_of("fused", s, ts, y, w)
    torch.testing.assert_close(gs, gf, rtol=1e-10, atol=1e-12)
    # The values differ by alpha * T² * generalised JS among the teachers.
    wn = np.asarray(w) / np.asarray(w).sum(0)
    wn = wn if per_example else wn[:, None]
    p = np.exp(np.stack([np_log_softmax(t / 3.0) for t in ts]))
    pbar = (wn[..., None] * p).sum(0)
    js = sum(wn[m] * np_kl_rows(p[m], np.log(p[m]), np.log(pbar)) for m in range(3)).mean()
    assert ls - lf == pytest.approx(0.9 * 9.0 * js, rel=1e-9)
    assert ls - lf > 1e-3


def test_split_and_fused_differ_under_dkd():
    s, ts, y = batch(13, n_teachers=3)
    _, gs = grad_of("split", s, ts, y, base="dkd")
    _, gf = grad_of("fused", s, ts, y, base="dkd")
    assert (gs - gf).abs().max().item() > 1e-4


def test_multi_single_teacher_dkd_equals_dkd():
    s, ts, y = batch(14, n_teachers=1)
    out = multi_teacher_kd_loss(tt(s), tt(ts), torch.tensor(y), T=4.0, alpha=0.5, base="dkd")
    ref = dkd_loss(tt(s), tt(ts[0]), torch.tensor(y), T=4.0)
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-12)


def test_multi_rejects_bad_arguments():
    s, ts, y = batch(0, n_teachers=2)
    with pytest.raises(ValueError, match="strategy must be"):
        multi_teacher_kd_loss(tt(s), tt(ts), torch.tensor(y), T=2.0, alpha=0.5, strategy="mean")
    with pytest.raises(ValueError, match="weights must have shape"):
        multi_teacher_kd_loss(tt(s), tt(ts), torch.tensor(y), T=2.0, alpha=0.5, weights=[1.0])
    with pytest.raises(ValueError, match="teacher_logits\\[1\\] has shape"):
        multi_teacher_kd_loss(
            tt(s), [tt(ts[0]), tt(ts[1])[:, :3]], torch.tensor(y), T=2.0, alpha=0.5
        )


# ---------------------------------------------------------------- gradients


LOSSES = {
    "ce": lambda s, t, y: ce_loss(s, y).loss,
    "kd": lambda s, t, y: kd_loss(s, t[0], y, T=2.0, alpha=0.7).loss,
    "hard": lambda s, t, y: hard_kd_loss(s, t[0], y, alpha=0.7).loss,
    "dkd": lambda s, t, y: dkd_loss(s, t[0], y, T=2.0, alpha=1.0, beta=4.0).loss,
    "split": lambda s, t, y: multi_teacher_kd_loss(s, t, y, T=2.0, alpha=0.7).loss,
    "fused": lambda s, t, y: (
        multi_teacher_kd_loss(s, t, y, T=2.0, alpha=0.7, strategy="fused").loss
    ),
    "logit-average": lambda s, t, y: (
        multi_teacher_kd_loss(s, t, y, T=2.0, alpha=0.7, strategy="logit-average").loss
    ),
    "multi-dkd": lambda s, t, y: (
        multi_teacher_kd_loss(s, t, y, T=2.0, alpha=0.7, strategy="fused", base="dkd").loss
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck(name):
    s, ts, y = batch(15, n=5, k=4, n_teachers=2, scale=1.5)
    st = tt(s, grad=True)
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x, tt(ts), torch.tensor(y)), (st,))


# ---------------------------------------------------------------- traps shared by every loss

# Each built-in loss with one teacher (multi gets a stack of two), as f(s, t, y) -> LossOutput.
ONE_TEACHER = {
    "ce": lambda s, t, y: ce_loss(s, y),
    "kd": lambda s, t, y: kd_loss(s, t, y, T=2.0, alpha=0.6),
    "hard": lambda s, t, y: hard_kd_loss(s, t, y, alpha=0.6),
    "dkd": lambda s, t, y: dkd_loss(s, t, y, T=2.0, alpha=1.0, beta=2.0),
    "multi": lambda s, t, y: multi_teacher_kd_loss(s, [t, 0.5 * t + 1.0], y, T=2.0, alpha=0.6),
    "multi-dkd": lambda s, t, y: multi_teacher_kd_loss(
        s, [t, 0.5 * t + 1.0], y, T=2.0, alpha=0.6, base="dkd", strategy="fused"
    ),
}
WITH_TEACHER = sorted(set(ONE_TEACHER) - {"ce"})


@pytest.mark.parametrize("name", WITH_TEACHER)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_d3_nonfinite_teacher_logits_refused_by_every_loss(name, bad):
    s, t, y = batch(3)
    t = tt(t)
    t[4, 2] = bad
    with pytest.raises(ValueError, match=r"teacher_logits\S*\[4\] holds NaN or inf"):
        ONE_TEACHER[name](tt(s, grad=True), t, torch.tensor(y))


@pytest.mark.parametrize("name", sorted(ONE_TEACHER))
@pytest.mark.parametrize("label", [7, 100, -1, -5])
def test_d17_label_out_of_range_refused_by_every_loss(name, label):
    s, t, y = batch(4)  # K = 7
    y[3] = label
    with pytest.raises(ValueError, match=rf"labels\[3\] = {label} is out of range \[0, 7\)"):
        ONE_TEACHER[name](tt(s), tt(t), torch.tensor(y))


@pytest.mark.parametrize("name", sorted(ONE_TEACHER))
def test_d17_numpy_student_refused_by_every_loss(name):
    s, t, y = batch(5)
    with pytest.raises(ValueError, match="student_logits must be a torch.Tensor, got ndarray"):
        ONE_TEACHER[name](s, tt(t), torch.tensor(y))


@pytest.mark.parametrize("name", sorted(ONE_TEACHER))
def test_h8_ignore_index_drops_the_example_from_every_term(name):
    s, t, y = batch(6, n=12)
    y_ign = y.copy()
    y_ign[[1, 5, 6]] = -100
    keep = y_ign != -100
    st, st_ref = tt(s, grad=True), tt(s[keep], grad=True)
    got = ONE_TEACHER[name](st, tt(t), torch.tensor(y_ign))
    ref = ONE_TEACHER[name](st_ref, tt(t[keep]), torch.tensor(y[keep]))
    assert got.loss.item() == pytest.approx(ref.loss.item(), rel=1e-12)
    assert got.terms.keys() == ref.terms.keys()
    for k in got.terms:
        assert got.terms[k].item() == pytest.approx(ref.terms[k].item(), rel=1e-12), k
    got.loss.backward()
    ref.loss.backward()
    assert torch.all(st.grad[~torch.tensor(keep)] == 0)
    np.testing.assert_allclose(st.grad[torch.tensor(keep)].numpy(), st_ref.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(ONE_TEACHER))
def test_h8_empty_and_all_ignored_batches_refused(name):
    s, t, y = batch(7)
    with pytest.raises(ValueError, match="empty batch"):
        ONE_TEACHER[name](tt(s[:0]), tt(t[:0]), torch.tensor(y[:0]))
    with pytest.raises(ValueError, match="every label in the batch is -100"):
        ONE_TEACHER[name](tt(s), tt(t), torch.full((16,), -100))


@pytest.mark.parametrize("name", sorted(ONE_TEACHER))
def test_h8_bool_labels_refused(name):
    s, t, y = batch(8, k=2) if name in ("ce", "kd", "hard", "multi") else batch(8)
    with pytest.raises(ValueError, match="labels must be integer class indices, got torch.bool"):
        ONE_TEACHER[name](tt(s), tt(t), torch.tensor(y) > 0)


def test_make_loss_dispatches_to_the_losses_with_the_config():
    from kdmetrics.kd import LOSSES as NAMES
    from kdmetrics.kd import TrainConfig, make_loss

    s, ts, y = batch(9, n_teachers=2)
    st, tl, yt = tt(s), [tt(ts[0]), tt(ts[1])], torch.tensor(y)
    c = TrainConfig(T=3.0, alpha=0.4, dkd_alpha=0.5, dkd_beta=3.0, dkd_warmup_epochs=4)
    expected = {
        "vanilla": ce_loss(st, yt),
        "kd": kd_loss(st, tl[0], yt, T=3.0, alpha=0.4),
        "hard": hard_kd_loss(st, tl[0], yt, alpha=0.4),
        "dkd": dkd_loss(st, tl[0], yt, T=3.0, alpha=0.5, beta=3.0, warmup=0.5),
        "multi": multi_teacher_kd_loss(st, tl, yt, T=3.0, alpha=0.4),
    }
    assert set(expected) == set(NAMES)
    for name, want in expected.items():
        c.loss = name
        got = make_loss(c)(st, tl, yt, 1)  # epoch 1 (0-based): DKD warm-up 2/4
        assert got.loss.item() == want.loss.item(), name
