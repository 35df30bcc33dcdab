"""One table of every metric, overall and per tier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._validation import call_core
from kdmetrics.metrics.calibration import bin_sums, ece_from_sums
from kdmetrics.metrics.classification import f1_from_counts, mean_defined
from kdmetrics.metrics.divergence import divergences
from kdmetrics.metrics.scoring import example_stats
from kdmetrics.tiers import TIER_NAMES, tier_codes

GROUPS: tuple[str, ...] = ("all", *TIER_NAMES)


def summary(
    labels: Any,
    logits: Any,
    *,
    tier_of_class: Any = None,
    reference_logits: Any = None,
    temperature: float = 1.0,
    n_bins: int = 15,
    probs: bool = False,
) -> pd.DataFrame:
    """Rows ``all`` (and ``head``, ``mid``, ``tail`` with ``tier_of_class``);
    columns n, accuracy, macro_f1, ece, nll, brier, and with
    ``reference_logits`` (a teacher) kl = KL(reference || model) and js.

    A tier's metrics use the examples whose true label is in the tier, except
    macro F1, which averages the tier's classes' F1 from counts over all
    examples (SPEC §2). Every metric uses the defaults of its own function
    (ECE: ``n_bins`` equal-width bins, right-closed). Temperature applies to
    the model and the reference alike.
    """
    func = "summary"
    s = example_stats(func, labels, logits, temperature, probs)
    k = np.asarray(logits).shape[1]
    tp, fp, fn = call_core(func, _kernels.confusion_counts, s.labels, s.pred, k)
    f1 = f1_from_counts(tp, fp, fn, None)
    nll_values, brier_values = s.scores()
    columns: dict[str, np.ndarray] = {
        "correct": s.correct.astype(np.float64),
        "nll": nll_values,
        "brier": brier_values,
    }
    if reference_logits is not None:
        kl, js = divergences(
            func,
            reference_logits,
            logits,
            temperature,
            False,
            probs,
            ("reference_logits", "logits"),
        )
        columns["kl"], columns["js"] = kl, js

    if tier_of_class is None:
        groups = ["all"]
        example_group = np.zeros(s.labels.shape[0], dtype=np.int64)
        class_group = np.zeros(k, dtype=np.int64)
    else:
        groups = list(GROUPS)
        class_group = tier_codes(func, tier_of_class, k) + 1
        example_group = class_group[s.labels]

    # Per-group sums of every per-example column in one Rust pass each; group 0
    # ("all") is every example, tiers are groups 1..3.
    n_groups = len(groups)
    sums = {}
    for col, values in columns.items():
        by_tier, counts = call_core(func, _kernels.group_sums, values, example_group, n_groups)
        by_tier[0] = values.sum() if n_groups > 1 else by_tier[0]
        sums[col] = by_tier
    counts[0] = s.labels.shape[0]

    rows = []
    for g, name in enumerate(groups):
        in_group = np.ones_like(s.correct) if g == 0 else example_group == g
        n = int(counts[g])
        row: dict[str, Any] = {"group": name, "n": n}
        classes = np.ones(k, dtype=bool) if g == 0 else class_group == g
        row["macro_f1"] = mean_defined(f1[classes])
        for col in columns:
            row["accuracy" if col == "correct" else col] = float(sums[col][g] / n) if n else np.nan
        row["ece"] = (
            ece_from_sums(
                *bin_sums(
                    func, s.confidence[in_group], s.correct[in_group], n_bins, "uniform", True
                )[:3]
            )
            if n
            else np.nan
        )
        rows.append(row)
    order = ["group", "n", "accuracy", "macro_f1", "ece", "nll", "brier"]
    if reference_logits is not None:
        order += ["kl", "js"]
    return pd.DataFrame(rows)[order].set_index("group")
