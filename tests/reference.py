"""Obviously-correct float64 NumPy references for the metric kernels.

Written for clarity, not speed: loops where a loop reads better. Every
property test compares kdmetrics against these.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(logits, temperature))


def predictions(logits: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(logits, dtype=np.float64), axis=1)


def accuracy(labels, logits) -> float:
    return float(np.mean(predictions(logits) == labels))


def f1_per_class(labels, preds, n_classes, zero_division="exclude") -> np.ndarray:
    out = np.empty(n_classes)
    for c in range(n_classes):
        tp = np.sum((labels == c) & (preds == c))
        fp = np.sum((labels != c) & (preds == c))
        fn = np.sum((labels == c) & (preds != c))
        if tp + fp + fn == 0:
            out[c] = np.nan if zero_division == "exclude" else float(zero_division)
        else:
            out[c] = 2 * tp / (2 * tp + fp + fn)
    return out


def macro_f1(labels, preds, n_classes, classes=None) -> float:
    f1 = f1_per_class(labels, preds, n_classes)
    if classes is not None:
        f1 = f1[classes]
    f1 = f1[~np.isnan(f1)]
    return float(f1.mean()) if f1.size else float("nan")


def nll(labels, logits, temperature=1.0) -> float:
    lp = log_softmax(logits, temperature)
    return float(-np.mean(lp[np.arange(len(labels)), labels]))


def brier(labels, logits, temperature=1.0) -> float:
    p = softmax(logits, temperature)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def ece(labels, logits, n_bins=15, temperature=1.0, right=True) -> float:
    p = softmax(logits, temperature)
    conf = p.max(axis=1)
    correct = predictions(logits) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        if right:
            member = (conf > lo) & (conf <= hi)
            if b == 0:
                member |= conf == 0.0
        else:
            member = (conf >= lo) & (conf < hi)
            if b == n_bins - 1:
                member |= conf == 1.0
        if member.any():
            total += member.sum() / len(conf) * abs(correct[member].mean() - conf[member].mean())
    return float(total)


def kl(p_logits, q_logits, temperature=1.0) -> np.ndarray:
    lp = log_softmax(p_logits, temperature)
    lq = log_softmax(q_logits, temperature)
    p = np.exp(lp)
    terms = np.where(p > 0, p * (lp - lq), 0.0)
    return terms.sum(axis=1)


def js(p_logits, q_logits, temperature=1.0) -> np.ndarray:
    """In log space: log m = logaddexp(log p, log q) - log 2 stays finite
    where p or q is subnormal (0.5 * (p + q) would underflow to 0 there)."""
    lp = log_softmax(p_logits, temperature)
    lq = log_softmax(q_logits, temperature)
    lm = np.logaddexp(lp, lq) - np.log(2.0)

    def kl_to_m(la):
        a = np.exp(la)
        with np.errstate(invalid="ignore"):
            return np.where(a > 0, a * (la - lm), 0.0).sum(axis=1)

    return 0.5 * kl_to_m(lp) + 0.5 * kl_to_m(lq)


def top_k_accuracy(labels, logits, k) -> float:
    """Label among the k best classes, ranking with the argmax tie rule
    (stable sort of -z: equal scores keep class-index order)."""
    z = np.asarray(logits, dtype=np.float64)
    hits = []
    for row, y in zip(z, labels, strict=True):
        order = np.argsort(-row, kind="stable")
        hits.append(y in order[:k])
    return float(np.mean(hits))


def agreement(logits_a, logits_b) -> float:
    return float(np.mean(predictions(logits_a) == predictions(logits_b)))


def churn(logits_a, logits_b) -> float:
    return 1.0 - agreement(logits_a, logits_b)
