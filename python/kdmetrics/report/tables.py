"""The report's per-class, per-tier and teacher-signal tables.

Each function takes plain arrays (labels, a dict of model name -> logits,
``tier_of_class``) and returns a DataFrame; ``build_report`` calls them.
Groups are ``all`` and, with tiers, ``head``, ``mid``, ``tail`` (an example's
tier is its true label's).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.metrics.agreement import predicted_classes
from kdmetrics.metrics.aurc import aurc_from
from kdmetrics.metrics.classification import f1_per_class
from kdmetrics.metrics.scoring import example_stats
from kdmetrics.metrics.selective import DEFAULT_THRESHOLDS, coverage_table
from kdmetrics.tiers import TIER_NAMES

# Mean top-1 probability of the teacher's soft targets above which they are
# called saturated: the student then sees (almost) one-hot targets, and KD
# carries little beyond the hard label.
SATURATED_MAX_PROB = 0.99


def groups(
    labels: np.ndarray, tier_of_class: np.ndarray | None
) -> Iterator[tuple[str, np.ndarray]]:
    """(group name, boolean mask of its examples): ``all`` then each tier."""
    yield "all", np.ones(labels.shape[0], dtype=bool)
    if tier_of_class is not None:
        example_tier = np.asarray(tier_of_class)[labels]
        for code, name in enumerate(TIER_NAMES):
            yield name, example_tier == code


def per_class_f1(
    labels: np.ndarray,
    models: Mapping[str, Any],
    *,
    tier_of_class: np.ndarray | None = None,
    train_counts: np.ndarray | None = None,
    a: str = "vanilla",
    b: str = "distilled",
) -> pd.DataFrame:
    """One row per class: tier, training count, validation support, each
    model's F1 (counts over all examples, NaN when ``TP + FP + FN = 0``) and
    ``delta = F1[b] - F1[a]``."""
    k = int(np.asarray(next(iter(models.values()))).shape[1])
    table = pd.DataFrame({"class": np.arange(k)})
    if tier_of_class is not None:
        table["tier"] = [TIER_NAMES[int(t)] for t in tier_of_class]
    if train_counts is not None:
        table["train_count"] = np.asarray(train_counts, dtype=np.int64)
    table["support"] = np.bincount(labels, minlength=k)
    for name, logits in models.items():
        table[f"f1_{name}"] = f1_per_class(labels, logits)
    table["delta"] = table[f"f1_{b}"] - table[f"f1_{a}"]
    return table


def agreement_table(
    labels: np.ndarray,
    models: Mapping[str, Any],
    teacher_logits: Any,
    *,
    tier_of_class: np.ndarray | None = None,
) -> pd.DataFrame:
    """Top-1 agreement with the teacher (fraction of examples where a model's
    argmax is the teacher's), per model and group; ``both_right`` and
    ``agree_wrong`` split it into agreeing on a right and on a wrong answer."""
    t_pred = predicted_classes("agreement_table", teacher_logits, "teacher_logits")
    t_right = t_pred == labels
    rows = []
    for name, logits in models.items():
        pred = predicted_classes("agreement_table", logits, name)
        agree = pred == t_pred
        for group, mask in groups(labels, tier_of_class):
            n = int(mask.sum())
            rows.append(
                {
                    "model": name,
                    "group": group,
                    "n": n,
                    "teacher_agreement": float(agree[mask].mean()) if n else math.nan,
                    "both_right": float((agree & t_right)[mask].mean()) if n else math.nan,
                    "agree_wrong": float((agree & ~t_right)[mask].mean()) if n else math.nan,
                }
            )
    return pd.DataFrame(rows)


def selective_by_tier(
    labels: np.ndarray,
    models: Mapping[str, Any],
    *,
    tier_of_class: np.ndarray | None = None,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Coverage and accuracy at confidence ``>= t`` within each group:
    ``coverage`` is the fraction of the *group's* examples kept (does a
    threshold drop the tail first?), ``accuracy`` the accuracy of those kept
    (NaN when none)."""
    t = np.asarray(thresholds, dtype=np.float64)
    parts = []
    for name, logits in models.items():
        s = example_stats("selective_by_tier", labels, logits, scores=False)
        correct = s.correct.astype(np.float64)
        for group, mask in groups(labels, tier_of_class):
            if not mask.any():
                continue
            table = coverage_table(s.confidence[mask], correct[mask], t)
            table.insert(0, "group", group)
            table.insert(0, "model", name)
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


def aurc_table(
    labels: np.ndarray, models: Mapping[str, Any], *, tier_of_class: np.ndarray | None = None
) -> pd.DataFrame:
    """AURC (area under the risk-coverage curve, lower is better) per model and
    group, with the group's error rate: AURC can be no lower than what a
    perfect ranking of that many errors gives."""
    rows = []
    for name, logits in models.items():
        s = example_stats("aurc_table", labels, logits, scores=False)
        correct = s.correct.astype(np.float64)
        for group, mask in groups(labels, tier_of_class):
            n = int(mask.sum())
            if not n:
                continue
            c, ok = s.confidence[mask], correct[mask]
            err = 1.0 - ok.mean()
            # Best possible: all errors ranked last (Geifman et al.'s AURC*).
            best = aurc_from(np.where(ok > 0, 1.0, 0.0), ok)
            rows.append(
                {
                    "model": name,
                    "group": group,
                    "n": n,
                    "error_rate": float(err),
                    "aurc": aurc_from(c, ok),
                    "aurc_optimal": best,
                }
            )
    table = pd.DataFrame(rows)
    table["excess_aurc"] = table["aurc"] - table["aurc_optimal"]
    return table


def soft_target_diagnostics(
    teacher_logits: Any, temperatures: Sequence[float], *, source: str
) -> pd.DataFrame:
    """Mean entropy (nats) and mean top-1 probability of the teacher's
    ``softmax(z / T)`` for each temperature T, and whether they are saturated
    (mean top-1 probability > :data:`SATURATED_MAX_PROB`).

    Computed in float64 over row chunks, so large (memory-mapped) files are
    read once without a full-size float64 copy.
    """
    rows = []
    z_all = teacher_logits
    n = int(z_all.shape[0])
    for temp in temperatures:
        ent_sum, max_sum = 0.0, 0.0
        for lo in range(0, n, 8192):
            z = np.asarray(z_all[lo : lo + 8192], dtype=np.float64) / float(temp)
            z -= z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            p = np.exp(logp)
            ent_sum += float(-(p * logp).sum())
            max_sum += float(p.max(axis=1).sum())
        rows.append(
            {
                "source": source,
                "temperature": float(temp),
                "n": n,
                "mean_entropy": ent_sum / n,
                "max_entropy": math.log(int(z_all.shape[1])),
                "mean_max_prob": max_sum / n,
                "saturated": bool(max_sum / n > SATURATED_MAX_PROB),
            }
        )
    return pd.DataFrame(rows)
