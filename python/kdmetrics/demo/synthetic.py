"""A generated long-tail classification task for the demo and tests.

What it generates, and why:

- **113 classes with a long tail**, tiers of 20/40/53 classes by training
  frequency, with the validation tier shares of the reference workload
  (head/mid/tail 5,155/1,065/210 of 6,430 examples). Tail classes have a few
  dozen training examples or fewer, so a tail class is hard for any model.
- **Confusable families**: a class mean is its family's centre plus a smaller
  class offset, and families mix head, mid and tail classes, so most errors
  are a rare class predicted as a frequent neighbour (the long-tail failure).
- **Family-local label noise** on the training labels (validation labels are
  clean): a hard label sometimes names a wrong member of the right family; a
  teacher's soft targets say which wrong classes are plausible, which a hard
  label cannot.
- **Two views of each example**: the teacher sees ``x_teacher``, a cleaner
  view of the latent point; the students see ``x_student``, the same point
  through extra noise. It stands in for the gap between a large model, which
  extracts features a small one cannot, and that small model, at a cost a
  2-core CPU affords in seconds. The teacher is therefore genuinely stronger
  than any student, as in practice, without hours of training.

The defaults land the models of ``kdmetrics demo`` in the regime people
distil in: a teacher with macro F1 about 0.3 (head ~0.65, mid ~0.45, tail
~0.2), a vanilla student that is over-confident (fitted temperature > 1), and
a distilled student that gains more in NLL and divergence to the teacher than
in accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Validation share of each tier in the reference workload.
REFERENCE_TIER_SHARES = (5155 / 6430, 1065 / 6430, 210 / 6430)


@dataclass(frozen=True)
class Task:
    """Training and validation views of one generated task.

    ``x_*_teacher`` is the teacher's view, ``x_*`` the students'; both views
    of example ``i`` share its label ``y_*[i]`` and id ``i``.
    """

    x_train: np.ndarray
    x_train_teacher: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    x_val_teacher: np.ndarray
    y_val: np.ndarray
    train_counts: np.ndarray
    tier_of_class: np.ndarray


def class_frequencies(n_classes: int, sizes: tuple[int, int], shares=REFERENCE_TIER_SHARES):
    """Class probabilities, descending, with the given tier shares; a
    geometric decay inside each tier keeps the ranking strict and makes the
    last tail classes rarer than the first."""
    head, mid = sizes
    tiers = [(0, head), (head, head + mid), (head + mid, n_classes)]
    p = np.empty(n_classes)
    for (lo, hi), share, decay in zip(tiers, shares, (0.93, 0.97, 0.97), strict=True):
        w = decay ** np.arange(hi - lo)
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
    n_train: int = 16_000,
    n_val: int = 6_430,
    n_features: int = 32,
    n_classes: int = 113,
    tier_sizes: tuple[int, int] = (20, 40),
    family_size: int = 5,
    family_spread: float = 1.0,
    class_spread: float = 0.25,
    label_noise: float = 0.1,
    student_noise: float = 0.8,
    n_nuisance: int = 16,
    mix_families: float = 0.4,
    seed: int = 0,
) -> Task:
    """Generates the task (see the module docstring).

    Latent points are ``mean[y] + N(0, I)`` in ``n_features`` dimensions, with
    ``mean[c] = family_spread * centre[family(c)] + class_spread * offset[c]``.
    Families are runs of ``family_size`` classes of similar frequency, except
    that a share ``mix_families`` of the classes trade places at random (some
    tail classes sit beside head classes). The teacher's view is the latent
    point through a fixed smooth nonlinearity; the students' view adds
    ``N(0, student_noise**2 I)`` first and ``n_nuisance`` pure-noise features
    (which a student can overfit to, as small models do). ``label_noise`` of
    the labels, in both splits, move to a member of the same family drawn by
    frequency (so the class counts keep their shape). Everything is drawn from
    one ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    p = class_frequencies(n_classes, tier_sizes)
    # Families of classes of similar frequency (head next to head, tail next
    # to tail); ``mix_families`` of the classes swap to a random family.
    n_fam = int(np.ceil(n_classes / family_size))
    family = np.arange(n_classes) // family_size
    swap = np.flatnonzero(rng.random(n_classes) < mix_families)
    family[swap] = family[rng.permutation(swap)]
    centres = rng.normal(0.0, 1.0, (n_fam, n_features))
    means = family_spread * centres[family] + class_spread * rng.normal(
        0.0, 1.0, (n_classes, n_features)
    )
    mix = rng.normal(0.0, 1.0 / np.sqrt(n_features), (n_features, n_features))

    def draw(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = rng.permutation(np.repeat(np.arange(n_classes), counts))
        z = means[y] + rng.normal(0.0, 1.0, (y.size, n_features))
        z_student = z + rng.normal(0.0, student_noise, z.shape)

        def view(u: np.ndarray) -> np.ndarray:
            return (u + 0.5 * np.tanh(u @ mix)).astype(np.float32)

        # Features that carry no signal: what a small model overfits to.
        nuisance = rng.normal(0.0, 1.0, (y.size, n_nuisance)).astype(np.float32)
        return np.concatenate([view(z_student), nuisance], axis=1), view(z), y

    train_counts = _exact_counts(p, n_train)
    x_train, x_train_teacher, y_train = draw(train_counts)
    x_val, x_val_teacher, y_val = draw(_exact_counts(p, n_val))
    # The same labelling process for both splits: a validation set scores a
    # model against labels as noisy as the ones it learned from.
    for y in (y_train, y_val):
        for i in np.flatnonzero(rng.random(y.size) < label_noise):
            mates = np.flatnonzero(family == family[y[i]])
            y[i] = rng.choice(mates, p=p[mates] / p[mates].sum())
    counts_after = np.bincount(y_train, minlength=n_classes)
    from kdmetrics.tiers import tiers_from_counts

    return Task(
        x_train,
        x_train_teacher,
        y_train,
        x_val,
        x_val_teacher,
        y_val,
        counts_after,
        tiers_from_counts(counts_after, tier_sizes),
    )
