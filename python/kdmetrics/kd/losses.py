"""Distillation losses: KD, hard-label KD, DKD and multi-teacher KD (docs/conventions.md).

Every loss returns a :class:`LossOutput`: the scalar to back-propagate and a
dict of its *unweighted* components (``ce``, ``kl``, ``tckd``, ``nckd``,
``kl_t0``, ...), detached, so a training loop can log each term on its own.
KL terms in ``terms`` are in nats without the ``T²`` factor; the total is
built from them as each docstring states.

Numerics: inputs are upcast to float32 (float64 stays float64, for
``gradcheck``) inside an ``autocast(enabled=False)`` region, so the losses are
computed in float32 even under bf16 autocast and float16 teacher logits are
accepted. KL is ``Σ_k p_k (log p_k − log q_k)`` from log-softmax on both sides
(p = teacher, q = student), summed over classes and averaged over the batch
(``batchmean``), which is why inputs must be 2-D (batch, classes).

Multi-teacher ``split`` vs ``fused`` under plain KL: with weights ``w_m``
summing to 1, ``Σ_m w_m KL(p_m ‖ q) − KL(p̄ ‖ q) = Σ_m w_m KL(p_m ‖ p̄)``, the
generalised Jensen–Shannon divergence among the teachers (times ``T²`` in the
loss). It does not depend on the student, so the two strategies give
*identical gradients* and differ only in the logged value: an observed
split-vs-fused difference under plain KD is noise or a bug. This still holds
for per-example weights that are normalised per example (as here). They do
differ for DKD (its binary and renormalised non-target distributions are not
linear in the teacher probabilities) and for weights that depend on the student
or are not normalised per example.

Checks shared by every loss (ValueError naming the loss and the argument):
the batch must not be empty; labels are integer class indices in ``[0, K)``
(not bool); teacher logits must be finite (a NaN or inf row, e.g. from a
float16 overflow in a saved file, would otherwise drop that row's KL term
silently and make the gradients NaN). One label rule for all losses: the
label ``-100`` (:data:`IGNORE_INDEX`, as in ``torch.nn.CrossEntropyLoss``)
removes that example from *every* term, cross-entropy and distillation alike,
and every mean is over the remaining examples; a batch whose labels are all
``-100`` is refused. All checks cost one device synchronisation per call.

:func:`make_loss` turns a :class:`~kdmetrics.kd.config.TrainConfig` into the
training loop's :data:`LossFn`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from kdmetrics.errors import InvalidArgumentError, NonFiniteError, OutOfRangeError, ShapeError
from kdmetrics.kd.config import (
    IGNORE_INDEX,
    LOSSES,
    MULTI_BASES,
    STRATEGIES,
    TrainConfig,
    loss_name,
)

__all__ = [
    "IGNORE_INDEX",
    "LOSSES",
    "STRATEGIES",
    "LossFn",
    "LossOutput",
    "ce_loss",
    "dkd_loss",
    "dkd_warmup_factor",
    "hard_kd_loss",
    "kd_loss",
    "make_loss",
    "multi_teacher_kd_loss",
]


class LossOutput(NamedTuple):
    """``loss``: the scalar to back-propagate; ``terms``: its unweighted,
    detached components by name, for logging."""

    loss: Tensor
    terms: dict[str, Tensor]


# ---------------------------------------------------------------- validation


def _check_T(func: str, T: float) -> float:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise InvalidArgumentError(f"{func}: T must be a finite number > 0, got {T!r}")
    return float(T)


def _check_unit(func: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidArgumentError(f"{func}: {name} must be in [0, 1], got {value!r}")
    return float(value)


def _check_nonneg(func: str, name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 0)
    ):
        raise InvalidArgumentError(f"{func}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _upcast(x: Tensor) -> Tensor:
    # float16/bfloat16 -> float32; float32/float64 kept (float64 for gradcheck).
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_logits(func: str, name: str, x: Tensor, like: Tensor | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidArgumentError(f"{func}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ShapeError(f"{func}: {name} must be 2-D (batch, classes), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidArgumentError(f"{func}: {name} must be floating point, got {x.dtype}")
    if like is not None and x.shape != like.shape:
        raise ShapeError(
            f"{func}: {name} has shape {tuple(x.shape)} but student_logits has {tuple(like.shape)}"
        )
    return _upcast(x)


def _check_labels(func: str, labels: Tensor, s: Tensor) -> Tensor:
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != s.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ShapeError(f"{func}: labels must be a 1-D tensor of length {s.shape[0]}, got {shape}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise InvalidArgumentError(
            f"{func}: labels must be integer class indices, got {labels.dtype}"
        )
    return labels.long()


def _first_nonfinite(t: Tensor) -> tuple[str, int]:
    bad = ~torch.isfinite(t)
    where = bad.nonzero()[0].tolist()[:-1]  # drop the class position: name the row
    return "".join(f"[{i}]" for i in where), int(bad.any(dim=-1).sum())


def _check_batch(
    func: str, s: Tensor, y: Tensor, teachers: Sequence[tuple[str, Tensor]] = ()
) -> Tensor | None:
    """Label range and teacher finiteness, read with one device sync.

    Returns the mask of examples to keep (labels != IGNORE_INDEX), or None
    when every example is kept.
    """
    n, k = s.shape
    if n == 0:
        raise ShapeError(f"{func}: empty batch (student_logits has 0 rows)")
    ignored = y == IGNORE_INDEX
    bad = ((y < 0) & ~ignored) | (y >= k)
    flags = [bad.any(), ignored.all(), ignored.any()]
    flags += [(~torch.isfinite(t)).any() for _, t in teachers]
    got = torch.stack(flags).tolist()
    if got[0]:
        i = int(bad.nonzero()[0, 0])
        raise OutOfRangeError(
            f"{func}: labels[{i}] = {int(y[i])} is out of range [0, {k}) "
            f"({int(bad.sum())} bad label(s); the label {IGNORE_INDEX} leaves an example out)",
            i,
            int(y[i]),
            k,
        )
    for (name, t), nonfinite in zip(teachers, got[3:], strict=True):
        if nonfinite:
            where, rows = _first_nonfinite(t)
            raise NonFiniteError(
                f"{func}: {name}{where} holds NaN or inf ({rows} row(s)); teacher logits must "
                "be finite (a float16 overflow in a saved teacher file?)"
            )
    if got[1]:
        raise InvalidArgumentError(
            f"{func}: every label in the batch is {IGNORE_INDEX} (left out): nothing to learn from"
        )
    return ~ignored if got[2] else None


def _device(func: str, student_logits: Any) -> torch.device:
    if not isinstance(student_logits, Tensor):
        raise InvalidArgumentError(
            f"{func}: student_logits must be a torch.Tensor, got {type(student_logits).__name__}"
        )
    return student_logits.device


def _no_autocast(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


# ---------------------------------------------------------------- building blocks


def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Per-row KL(p ‖ q) from log-probabilities, ``0 · log 0 = 0``."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(dim=1)


def _kd_term(student: Tensor, log_p_teacher: Tensor, T: float) -> Tensor:
    """Per-row KL(teacher ‖ student) at temperature T (teacher given as log-probs)."""
    return _kl_rows(log_p_teacher, F.log_softmax(student / T, dim=1))


def _dkd_terms(student: Tensor, teacher: Tensor, labels: Tensor, T: float) -> tuple[Tensor, Tensor]:
    """Per-row TCKD and NCKD (without T²) of Zhao et al. (2022).

    TCKD is the KL between the binary (target, rest) distributions, each side
    computed in log space: ``log p_t = z_y/T − lse(z/T)`` and
    ``log p_rest = lse_{k≠y}(z_k/T) − lse(z/T)`` (the authors' code takes the
    log of summed probabilities, which underflows for confident models).
    NCKD is the KL between the distributions renormalised over the K − 1
    non-target classes.
    """
    target = F.one_hot(labels, student.shape[1]).bool()

    def binary_and_rest(z: Tensor) -> tuple[Tensor, Tensor]:
        z = z / T
        lse = z.logsumexp(dim=1)
        log_target = z.gather(1, labels[:, None]).squeeze(1) - lse
        rest = z[~target].view(z.shape[0], z.shape[1] - 1)  # row-major: order kept
        log_rest = rest.logsumexp(dim=1) - lse
        return torch.stack([log_target, log_rest], dim=1), F.log_softmax(rest, dim=1)

    bin_s, rest_s = binary_and_rest(student)
    bin_t, rest_t = binary_and_rest(teacher)
    return _kl_rows(bin_t, bin_s), _kl_rows(rest_t, rest_s)


def dkd_warmup_factor(epoch: int, warmup_epochs: int) -> float:
    """The authors' linear warm-up of the KD part: ``min(epoch / warmup, 1)``
    with ``epoch`` counted from 1; ``warmup_epochs = 0`` means no warm-up."""
    if warmup_epochs <= 0:
        return 1.0
    return min(max(epoch, 0) / warmup_epochs, 1.0)


def _student_teacher_labels(
    func: str, student_logits: Tensor, teacher_logits: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Checked float32 student and (detached) teacher logits and long labels,
    without the examples labelled IGNORE_INDEX."""
    s = _check_logits(func, "student_logits", student_logits)
    t = _check_logits(func, "teacher_logits", teacher_logits, s).detach().to(s.dtype)
    y = _check_labels(func, labels, s)
    keep = _check_batch(func, s, y, [("teacher_logits", t)])
    if keep is not None:
        s, t, y = s[keep], t[keep], y[keep]
    return s, t, y


# ---------------------------------------------------------------- public losses


def ce_loss(student_logits: Tensor, labels: Tensor) -> LossOutput:
    """Plain cross-entropy (the vanilla arm), in float32."""
    func = "ce_loss"
    with _no_autocast(_device(func, student_logits)):
        s = _check_logits(func, "student_logits", student_logits)
        y = _check_labels(func, labels, s)
        keep = _check_batch(func, s, y)
        if keep is not None:
            s, y = s[keep], y[keep]
        ce = F.cross_entropy(s, y)
    return LossOutput(ce, {"ce": ce.detach()})


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, T: float, alpha: float
) -> LossOutput:
    """Hinton et al. (2015):
    ``loss = alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) · CE(s, y)``.

    KL is summed over classes and averaged over the batch (``batchmean``);
    ``alpha = 0`` is exactly cross-entropy. ``terms``: ``ce`` and ``kl`` (without T²).
    """
    func = "kd_loss"
    T = _check_T(func, T)
    alpha = _check_unit(func, "alpha", alpha)
    with _no_autocast(_device(func, student_logits)):
        s, t, y = _student_teacher_labels(func, student_logits, teacher_logits, labels)
        ce = F.cross_entropy(s, y)
        kl = _kd_term(s, F.log_softmax(t.to(s.dtype) / T, dim=1), T).mean()
        loss = alpha * T * T * kl + (1.0 - alpha) * ce
    return LossOutput(loss, {"ce": ce.detach(), "kl": kl.detach()})


def hard_kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, alpha: float = 1.0
) -> LossOutput:
    """Hard-label distillation: ``alpha · CE(s, argmax t) + (1 − alpha) · CE(s, y)``.

    Ties in the teacher's argmax go to the lowest class index.
    ``terms``: ``ce`` (true labels) and ``ce_teacher`` (teacher's argmax).
    """
    func = "hard_kd_loss"
    alpha = _check_unit(func, "alpha", alpha)
    with _no_autocast(_device(func, student_logits)):
        s, t, y = _student_teacher_labels(func, student_logits, teacher_logits, labels)
        ce = F.cross_entropy(s, y)
        ce_t = F.cross_entropy(s, t.argmax(dim=1))
        loss = alpha * ce_t + (1.0 - alpha) * ce
    return LossOutput(loss, {"ce": ce.detach(), "ce_teacher": ce_t.detach()})


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    *,
    T: float,
    alpha: float = 1.0,
    beta: float = 8.0,
    ce_weight: float = 1.0,
    warmup: float = 1.0,
) -> LossOutput:
    """Decoupled KD (Zhao et al., CVPR 2022):
    ``loss = ce_weight · CE + warmup · T² · (alpha · TCKD + beta · NCKD)``.

    ``warmup`` in [0, 1] scales the KD part (see :func:`dkd_warmup_factor`).
    Both KL terms are ``batchmean``. Refuses K < 3 (with two classes the
    non-target distribution has one class and NCKD is identically zero).
    ``terms``: ``ce``, ``tckd``, ``nckd`` (without T²).
    """
    func = "dkd_loss"
    T = _check_T(func, T)
    alpha = _check_nonneg(func, "alpha", alpha)
    beta = _check_nonneg(func, "beta", beta)
    ce_weight = _check_nonneg(func, "ce_weight", ce_weight)
    warmup = _check_unit(func, "warmup", warmup)
    with _no_autocast(_device(func, student_logits)):
        k = student_logits.shape[-1]
        if student_logits.ndim == 2 and k < 3:
            raise ShapeError(f"{func}: student_logits needs K >= 3 classes for DKD, got {k}")
        s, t, y = _student_teacher_labels(func, student_logits, teacher_logits, labels)
        ce = F.cross_entropy(s, y)
        tckd, nckd = (v.mean() for v in _dkd_terms(s, t, y, T))
        loss = ce_weight * ce + warmup * T * T * (alpha * tckd + beta * nckd)
    return LossOutput(loss, {"ce": ce.detach(), "tckd": tckd.detach(), "nckd": nckd.detach()})


def _teacher_stack(func: str, teachers: Tensor | Sequence[Tensor], s: Tensor) -> Tensor:
    if isinstance(teachers, Tensor):
        if teachers.ndim != 3:
            raise ShapeError(
                f"{func}: teacher_logits must be (teachers, batch, classes), "
                f"got shape {tuple(teachers.shape)}"
            )
        stack = list(teachers.unbind(0))
    else:
        stack = list(teachers)
    if not stack:
        raise ShapeError(f"{func}: teacher_logits is empty")
    checked = [
        _check_logits(func, f"teacher_logits[{m}]", t, s).detach().to(s.dtype)
        for m, t in enumerate(stack)
    ]
    return torch.stack(checked)


def _teacher_weights(func: str, weights, n_teachers: int, s: Tensor) -> Tensor:
    """(M, B) weights normalised over teachers per example."""
    if weights is None:
        w = torch.ones(n_teachers, dtype=s.dtype, device=s.device)
    else:
        w = torch.as_tensor(weights, dtype=s.dtype, device=s.device)
    if w.shape == (n_teachers,):
        w = w[:, None].expand(n_teachers, s.shape[0])
    elif w.shape != (n_teachers, s.shape[0]):
        raise ShapeError(
            f"{func}: weights must have shape ({n_teachers},) or ({n_teachers}, {s.shape[0]}), "
            f"got {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all() or (w < 0).any() or (w.sum(0) <= 0).any():
        raise InvalidArgumentError(
            f"{func}: weights must be finite, >= 0 and not all zero for an example"
        )
    return (w / w.sum(0, keepdim=True)).detach()


def multi_teacher_kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor | Sequence[Tensor],
    labels: Tensor,
    *,
    T: float,
    alpha: float,
    weights=None,
    strategy: str = "split",
    base: str = "kd",
    dkd_alpha: float = 1.0,
    dkd_beta: float = 8.0,
    warmup: float = 1.0,
) -> LossOutput:
    """Distillation from M teachers (``teacher_logits``: (M, B, K) or a list).

    ``weights``: (M,) or per-example (M, B), normalised to sum to 1 over
    teachers (default: equal). ``strategy``:

    - ``split``: weighted mean over teachers of the per-teacher KD terms;
    - ``fused``: KD against the weighted mean of the teachers' probabilities
      ``p̄ = Σ w_m softmax(t_m/T)``;
    - ``logit-average``: KD against ``softmax(Σ w_m t_m / T)``, a third, different target.

    ``base="kd"``: ``alpha · T² · KL + (1 − alpha) · CE``; ``base="dkd"``: the
    DKD loss (``dkd_alpha``, ``dkd_beta``, ``warmup``; ``alpha`` unused) with the
    same three ways of combining teachers (the fused target enters DKD as the
    logits ``T · log p̄``, whose softmax at T is p̄). See the module docstring
    for why ``split`` and ``fused`` have identical gradients under plain KD.
    ``terms``: ``ce``, the combined ``kl`` (or ``tckd``/``nckd``) and, for
    ``split``, per teacher ``kl_t{m}`` (or ``tckd_t{m}``/``nckd_t{m}``).
    """
    func = "multi_teacher_kd_loss"
    T = _check_T(func, T)
    alpha = _check_unit(func, "alpha", alpha)
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(
            f"{func}: strategy must be one of {STRATEGIES}, got {strategy!r}"
        )
    if base not in MULTI_BASES:
        raise InvalidArgumentError(f"{func}: base must be one of {MULTI_BASES}, got {base!r}")
    if base == "dkd":
        dkd_alpha = _check_nonneg(func, "dkd_alpha", dkd_alpha)
        dkd_beta = _check_nonneg(func, "dkd_beta", dkd_beta)
        warmup = _check_unit(func, "warmup", warmup)
    with _no_autocast(_device(func, student_logits)):
        s = _check_logits(func, "student_logits", student_logits)
        t = _teacher_stack(func, teacher_logits, s)
        y = _check_labels(func, labels, s)
        if base == "dkd" and s.shape[1] < 3:
            raise ShapeError(
                f"{func}: student_logits needs K >= 3 classes for DKD, got {s.shape[1]}"
            )
        w = _teacher_weights(func, weights, t.shape[0], s)  # (M, B)
        keep = _check_batch(func, s, y, [("teacher_logits", t)])
        if keep is not None:
            s, t, y, w = s[keep], t[:, keep], y[keep], w[:, keep]
        ce = F.cross_entropy(s, y)
        terms: dict[str, Tensor] = {"ce": ce.detach()}
        names = ("kl",) if base == "kd" else ("tckd", "nckd")

        def per_teacher_rows(target_logits: Tensor) -> tuple[Tensor, ...]:
            if base == "kd":
                return (_kd_term(s, F.log_softmax(target_logits / T, dim=1), T),)
            return _dkd_terms(s, target_logits, y, T)

        if strategy == "split":
            parts = [per_teacher_rows(t[m]) for m in range(t.shape[0])]
            combined = []
            for j, name in enumerate(names):
                rows = torch.stack([p[j] for p in parts])  # (M, B)
                combined.append((w * rows).sum(0).mean())
                for m in range(t.shape[0]):
                    terms[f"{name}_t{m}"] = rows[m].mean().detach()
        else:
            if strategy == "fused":
                # log p̄ = logsumexp_m(log w_m + log p_m): no underflow to log 0
                # (a zero weight gives log w = -inf, which logsumexp handles).
                log_p = F.log_softmax(t / T, dim=2)
                target = T * torch.logsumexp(w.log()[:, :, None] + log_p, dim=0)
            else:
                target = (w[:, :, None] * t).sum(0)
            combined = [rows.mean() for rows in per_teacher_rows(target)]
        for name, value in zip(names, combined, strict=True):
            terms[name] = value.detach()
        if base == "kd":
            loss = alpha * T * T * combined[0] + (1.0 - alpha) * ce
        else:
            loss = ce + warmup * T * T * (dkd_alpha * combined[0] + dkd_beta * combined[1])
    return LossOutput(loss, terms)


# ---------------------------------------------------------------- the loop's loss

LossFn = Callable[[Tensor, Sequence[Tensor], Tensor, int], LossOutput]
"""The training loop's loss: ``loss_fn(student_logits, teacher_logits, labels, epoch)``.

- ``student_logits``: (B, K), as the model returned them (bfloat16 under CUDA
  autocast: upcast inside the loss, as the built-in losses do);
- ``teacher_logits``: a list with one float32 (B, K) tensor per teacher, its
  rows aligned with the batch's examples (cached teacher files in the order
  given, then the online teacher module's logits); empty without teachers;
- ``labels``: (B,) int64, possibly holding ``IGNORE_INDEX``;
- ``epoch``: the 0-based epoch (for warm-ups).

It returns a :class:`LossOutput` (the loop logs every entry of ``terms``).
A callable passed as ``TrainConfig(loss=...)`` may also return a scalar
tensor, logged as ``loss`` alone.
"""


def _user_loss(fn: Callable[..., Any]) -> LossFn:
    name = loss_name(fn)

    def loss(s: Tensor, t: Sequence[Tensor], y: Tensor, epoch: int) -> LossOutput:
        out = fn(s, t, y, epoch)
        if isinstance(out, LossOutput):
            return out
        if isinstance(out, Tensor) and out.ndim == 0 and out.is_floating_point():
            return LossOutput(out, {})
        raise InvalidArgumentError(
            f"train: loss {name} returned {type(out).__name__}"
            f"{tuple(out.shape) if isinstance(out, Tensor) else ''}; "
            "return a scalar floating tensor or a LossOutput"
        )

    return loss


def make_loss(config: TrainConfig) -> LossFn:
    """The :data:`LossFn` for ``config.loss`` with the config's hyperparameters.

    ``kd``, ``hard`` and ``dkd`` use the first teacher; ``multi`` uses all of
    them; DKD's warm-up factor comes from the epoch (:func:`dkd_warmup_factor`
    with the epoch counted from 1).
    """
    c = config
    if callable(c.loss):
        return _user_loss(c.loss)
    if c.loss not in LOSSES:
        raise InvalidArgumentError(
            f"make_loss: loss must be one of {LOSSES} or a callable, got {c.loss!r}"
        )

    def warm(epoch: int) -> float:
        return dkd_warmup_factor(epoch + 1, c.dkd_warmup_epochs)

    def vanilla(s: Tensor, t: Sequence[Tensor], y: Tensor, epoch: int) -> LossOutput:
        return ce_loss(s, y)

    def kd(s: Tensor, t: Sequence[Tensor], y: Tensor, epoch: int) -> LossOutput:
        return kd_loss(s, t[0], y, T=c.T, alpha=c.alpha)

    def hard(s: Tensor, t: Sequence[Tensor], y: Tensor, epoch: int) -> LossOutput:
        return hard_kd_loss(s, t[0], y, alpha=c.alpha)

    def dkd(s: Tensor, t: Sequence[Tensor], y: Tensor, epoch: int) -> LossOutput:
        return dkd_loss(s, t[0], y, T=c.T, alpha=c.dkd_alpha, beta=c.dkd_beta, warmup=warm(epoch))

    def multi(s: Tensor, t: Sequence[Tensor], y: Tensor, epoch: int) -> LossOutput:
        return multi_teacher_kd_loss(
            s,
            list(t),
            y,
            T=c.T,
            alpha=c.alpha,
            weights=c.teacher_weights,
            strategy=c.multi_strategy,
            base=c.multi_base,
            dkd_alpha=c.dkd_alpha,
            dkd_beta=c.dkd_beta,
            warmup=warm(epoch),
        )

    return {"vanilla": vanilla, "kd": kd, "hard": hard, "dkd": dkd, "multi": multi}[c.loss]
