"""The reference workload: K = 113 long-tail classes, teacher and student logits.

Shared by the benchmarks. Labels follow a Zipf-like class frequency (tiers
20/40/53 by training frequency); logits are a noisy signal on the true class,
the student a noisier copy of the teacher, so predictions, confidences and
divergences look like those of real models (~70 % accuracy).
"""

from __future__ import annotations

import numpy as np

K = 113
N_VAL = 6_430
N_TRAIN = 79_278


def class_frequencies(k: int = K, exponent: float = 1.1) -> np.ndarray:
    f = 1.0 / np.arange(1, k + 1) ** exponent
    return f / f.sum()


def workload(n: int, dtype=np.float32, seed: int = 0, k: int = K):
    """(labels, teacher_logits, student_logits, train_counts) for n examples."""
    rng = np.random.default_rng(seed)
    freq = class_frequencies(k)
    labels = rng.choice(k, size=n, p=freq)
    signal = np.zeros((n, k), dtype=np.float32)
    signal[np.arange(n), labels] = 3.0
    teacher = signal + rng.normal(0.0, 1.0, size=(n, k)).astype(np.float32) * 1.2
    student = teacher + rng.normal(0.0, 1.0, size=(n, k)).astype(np.float32) * 0.9
    train_counts = np.round(freq * N_TRAIN).astype(np.int64)
    return labels, teacher.astype(dtype), student.astype(dtype), train_counts
