"""A generated long-tail classification task for the demo and tests.

Classes come in confusable families (a family centre plus a smaller class
offset in feature space) and the training labels carry family-local noise, so
a teacher's soft targets say which wrong classes are plausible: information a
hard label lacks. Class frequencies follow the reference workload: 113
classes, tiers of 20/40/53 by training frequency, validation head/mid/tail
shares 5,155/1,065/210 of 6,430.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Validation share of each tier in the reference workload.
REFERENCE_TIER_SHARES = (5155 / 6430, 1065 / 6430, 210 / 6430)


@dataclass(frozen=True)
class Task:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    train_counts: np.ndarray
    tier_of_class: np.ndarray


def class_frequencies(n_classes: int, sizes: tuple[int, int], shares=REFERENCE_TIER_SHARES):
    """Class probabilities, descending, with the given tier shares; a gentle
    geometric decay inside each tier keeps the ranking strict."""
    head, mid = sizes
    tiers = [(0, head), (head, head + mid), (head + mid, n_classes)]
    p = np.empty(n_classes)
    for (lo, hi), share in zip(tiers, shares, strict=True):
        w = 0.97 ** np.arange(hi - lo)
        p[lo:hi] = share * w / w.sum()
    return p


def _exact_counts(p: np.ndarray, n: int) -> np.ndarray:
    """Counts proportional to p summing to n (largest remainder), each >= 1
    when n allows, so every class appears."""
    raw = p * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    if n >= p.size:
        for c in np.flatnonzero(counts == 0):
            counts[c] = 1
            counts[np.argmax(counts)] -= 1
    return counts


def make_long_tail_task(
    *,
    n_train: int = 30_000,
    n_val: int = 6_430,
    n_features: int = 48,
    n_classes: int = 113,
    tier_sizes: tuple[int, int] = (20, 40),
    family_size: int = 6,
    label_noise: float = 0.2,
    seed: int = 0,
) -> Task:
    """Gaussian classes in families; ``label_noise`` of training labels moved to
    a class of the same family drawn by frequency (validation labels are clean)."""
    rng = np.random.default_rng(seed)
    p = class_frequencies(n_classes, tier_sizes)
    # Families mix frequencies so tail classes sit next to head classes.
    family = rng.permutation(np.arange(n_classes) % int(np.ceil(n_classes / family_size)))
    n_fam = family.max() + 1
    centres = rng.normal(0.0, 1.0, (n_fam, n_features)) * 1.8
    means = centres[family] + rng.normal(0.0, 1.0, (n_classes, n_features)) * 0.5
    # A fixed random nonlinearity so that depth and width pay off.
    mix = rng.normal(0.0, 1.0 / np.sqrt(n_features), (n_features, n_features))

    def draw(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.repeat(np.arange(n_classes), counts))
        z = means[y] + rng.normal(0.0, 1.0, (y.size, n_features))
        x = z + 0.5 * np.tanh(z @ mix)
        return x.astype(np.float32), y

    train_counts = _exact_counts(p, n_train)
    x_train, y_train = draw(train_counts)
    x_val, y_val = draw(_exact_counts(p, n_val))
    noisy = rng.random(y_train.size) < label_noise
    for i in np.flatnonzero(noisy):
        mates = np.flatnonzero(family == family[y_train[i]])
        # In proportion to the mates' frequency, so noise keeps the class counts.
        y_train[i] = rng.choice(mates, p=p[mates] / p[mates].sum())
    counts_after = np.bincount(y_train, minlength=n_classes)
    from kdmetrics.tiers import tiers_from_counts

    return Task(
        x_train, y_train, x_val, y_val, counts_after, tiers_from_counts(counts_after, tier_sizes)
    )
