"""Distributional fidelity: KL and Jensen-Shannon divergence between two models."""

from __future__ import annotations

from typing import Any

import numpy as np

from kdmetrics import _kernels
from kdmetrics._arrays import Rows, per_row
from kdmetrics._validation import check_bool, check_float, check_temperature
from kdmetrics.errors import InvalidArgumentError, ShapeError


def divergences(
    func: str,
    p_logits: Any,
    q_logits: Any,
    temperature: float,
    p_probs: bool,
    q_probs: bool,
    names: tuple[str, str] = ("p_logits", "q_logits"),
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example (KL(p || q), JS(p, q)) in nats, after validation."""
    t = check_temperature(func, temperature)
    p = Rows(func, p_logits, names[0])
    q = Rows(func, q_logits, names[1])
    if p.shape != q.shape:
        raise ShapeError(
            f"{func}: {names[0]} has shape {p.shape} but {names[1]} has shape {q.shape}"
        )
    kl, js = per_row(
        func,
        [(p, bool(p_probs)), (q, bool(q_probs))],
        lambda rows, a, b: _kernels.divergences(
            func,
            a,
            b,
            t,
            p_log_probs=bool(p_probs),
            q_log_probs=bool(q_probs),
            p_name=names[0],
            q_name=names[1],
        ),
    )
    return kl, js


def _which_probs(
    func: str, probs: bool, p_probs: bool | None, q_probs: bool | None
) -> tuple[bool, bool]:
    """``p_probs``/``q_probs`` default to ``probs`` (as ``summary``'s
    ``reference_probs`` defaults to its ``probs``); all three are flags."""
    probs = check_bool(func, "probs", probs)
    return (
        probs if p_probs is None else check_bool(func, "p_probs", p_probs),
        probs if q_probs is None else check_bool(func, "q_probs", q_probs),
    )


def kl_divergence(
    p_logits: Any,
    q_logits: Any,
    *,
    temperature: float = 1.0,
    per_example: bool = False,
    probs: bool = False,
    p_probs: bool | None = None,
    q_probs: bool | None = None,
) -> float | np.ndarray:
    """KL(p || q) = ``sum_k p_k (log p_k - log q_k)`` in nats, ``0 log 0 = 0``.

    Argument order: ``p`` is the reference distribution (the teacher in
    distillation), ``q`` the approximation (the student). Note PyTorch's
    ``F.kl_div(input, target)`` takes them the other way round, as
    ``F.kl_div(log q, p)``. Both come from log-softmax at ``temperature``.
    Mean over examples unless ``per_example``. ``probs=True`` reads both
    inputs as probabilities; ``p_probs``/``q_probs`` set one side each and
    default to ``probs``.
    """
    p_probs, q_probs = _which_probs("kl_divergence", probs, p_probs, q_probs)
    per_example = check_bool("kl_divergence", "per_example", per_example)
    kl, _ = divergences("kl_divergence", p_logits, q_logits, temperature, p_probs, q_probs)
    return kl if per_example else float(kl.mean())


def _check_base(func: str, base: Any) -> float:
    if base is None:
        return 1.0
    b = check_float(func, "base", base, positive=True)
    if b == 1:
        raise InvalidArgumentError(
            f"{func}: base must be None (nats) or a positive number != 1, got {base!r}"
        )
    return float(np.log(b))


def js_divergence(
    p_logits: Any,
    q_logits: Any,
    *,
    temperature: float = 1.0,
    base: float | None = None,
    per_example: bool = False,
    probs: bool = False,
    p_probs: bool | None = None,
    q_probs: bool | None = None,
) -> float | np.ndarray:
    """Jensen-Shannon divergence ``KL(p || m)/2 + KL(q || m)/2``, ``m = (p + q)/2``.

    In nats (at most ln 2) by default; ``base=2`` gives bits in [0, 1]. This is
    the divergence itself, not ``scipy.spatial.distance.jensenshannon``, which
    returns its square root: see :func:`js_distance`. Symmetric in p and q.
    ``probs``/``p_probs``/``q_probs`` as in :func:`kl_divergence`.
    """
    func = "js_divergence"
    scale = _check_base(func, base)
    p_probs, q_probs = _which_probs(func, probs, p_probs, q_probs)
    per_example = check_bool(func, "per_example", per_example)
    _, js = divergences(func, p_logits, q_logits, temperature, p_probs, q_probs)
    js = js / scale
    return js if per_example else float(js.mean())


def js_distance(
    p_logits: Any,
    q_logits: Any,
    *,
    temperature: float = 1.0,
    base: float | None = None,
    per_example: bool = False,
    probs: bool = False,
    p_probs: bool | None = None,
    q_probs: bool | None = None,
) -> float | np.ndarray:
    """Jensen-Shannon distance, ``sqrt(JS)`` per example (clamped at 0 first,
    since rounding can leave JS a hair below 0): what scipy's ``jensenshannon``
    returns. With ``per_example=False``, the mean of the per-example distances.
    """
    func = "js_distance"
    scale = _check_base(func, base)
    p_probs, q_probs = _which_probs(func, probs, p_probs, q_probs)
    per_example = check_bool(func, "per_example", per_example)
    _, js = divergences(func, p_logits, q_logits, temperature, p_probs, q_probs)
    d = np.sqrt(np.maximum(js / scale, 0.0))
    return d if per_example else float(d.mean())
