"""Area under the risk-coverage curve (AURC) of selective prediction.

Keep the examples a model is most confident about (top-1 confidence
``c = max_k p_k``) and abstain on the rest: at coverage ``k / N`` the
*selective risk* is the error rate of the ``k`` most confident examples. AURC
(Geifman, Uziel and El-Yaniv, ICLR 2019) is the mean of that risk over
``k = 1 .. N``: lower is better; a model whose confidence ranks all its
errors last has the smallest AURC its accuracy allows.

Ties in confidence (common with float16 logits and saturated softmax rows)
are handled by averaging over every order of the tied examples: inside a
block of ``m`` tied examples holding ``e`` errors, the first ``i`` of them
are counted as ``i * e / m`` errors. The result therefore does not depend on
the order of the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kdmetrics.metrics.scoring import example_stats


def aurc(labels: Any, logits: Any, *, temperature: float = 1.0, probs: bool = False) -> float:
    """Area under the risk-coverage curve; lower is better.

    Parameters
    ----------
    labels : array of int, shape (N,)
    logits : array, shape (N, K)
        Logits (or probabilities with ``probs=True``).
    temperature : float
        Confidence from ``softmax(logits / temperature)``; a positive
        temperature does not change the ranking of the confidences within one
        model, so it changes AURC only through ties.
    probs : bool
        Read ``logits`` as probabilities.

    Returns
    -------
    float
        ``(1/N) * sum_{k=1..N} risk_k`` with ``risk_k`` the error rate of the
        ``k`` most confident examples, ties averaged over their orders (see
        the module docstring). In [0, 1].
    """
    s = example_stats("aurc", labels, logits, temperature, probs, scores=False)
    return aurc_from(s.confidence, s.correct)


def aurc_from(confidence: np.ndarray, correct: np.ndarray) -> float:
    """AURC from per-example confidence and correctness (1-D, same length)."""
    c = np.asarray(confidence, dtype=np.float64)
    err = 1.0 - np.asarray(correct, dtype=np.float64)
    n = c.shape[0]
    order = np.argsort(-c, kind="stable")
    c_desc, e_desc = c[order], err[order]
    # Blocks of equal confidence: [start_j, end_j) in the descending order.
    boundary = np.flatnonzero(np.append(True, c_desc[1:] != c_desc[:-1]))
    ends = np.append(boundary[1:], n)
    block_err = np.add.reduceat(e_desc, boundary)
    block_len = ends - boundary
    errors_before = np.concatenate([[0.0], np.cumsum(block_err)[:-1]])
    # Expected errors among the first i members of each block: linear in i.
    block = np.repeat(np.arange(boundary.size), block_len)
    i = np.arange(1, n + 1) - boundary[block]
    expected_errors = errors_before[block] + i * (block_err / block_len)[block]
    return float(np.mean(expected_errors / np.arange(1, n + 1)))
