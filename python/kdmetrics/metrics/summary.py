"""One table of every metric, overall and per tier; columns come from the registry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdmetrics import _kernels
from kdmetrics._arrays import shape_of
from kdmetrics._validation import check_bool, check_int
from kdmetrics.metrics.calibration import bin_sums, ece_from_sums
from kdmetrics.metrics.classification import f1_from_counts, mean_defined
from kdmetrics.metrics.registry import METRICS, SUMMARY_METRICS, ModelInputs
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
    top_k: int = 5,
    probs: bool = False,
    reference_probs: bool | None = None,
) -> pd.DataFrame:
    """Every metric of the registry that one model has, overall and per tier.

    Rows ``all`` (and ``head``, ``mid``, ``tail`` with ``tier_of_class``);
    columns ``n`` then, in registry order, accuracy, macro_f1, top_k_accuracy
    (``k = top_k``), ece, nll, brier and, with ``reference_logits`` (a
    teacher), kl = KL(reference || model), js and teacher_agreement.

    A tier's metrics use the examples whose true label is in the tier, except
    macro F1, which averages the tier's classes' F1 from counts over all
    examples (docs/conventions.md, "Tiers"). ECE uses ``n_bins`` equal-width
    bins, right-closed. Temperature applies to the model and the reference
    alike. ``probs=True`` reads ``logits`` as probabilities;
    ``reference_probs`` does the same for the reference and defaults to
    ``probs``.
    """
    func = "summary"
    top_k = check_int(func, "top_k", top_k, minimum=1)
    probs = check_bool(func, "probs", probs)
    if reference_probs is None:
        reference_probs = probs
    reference_probs = check_bool(func, "reference_probs", reference_probs)
    m = ModelInputs(
        func,
        labels,
        logits,
        reference_logits=reference_logits,
        temperature=temperature,
        probs=probs,
        reference_probs=bool(reference_probs),
        options={"k": top_k},
    )
    s = m.stats
    m.labels = s.labels  # validated from here on
    k = shape_of(func, logits)[1]
    names = [
        n
        for n in SUMMARY_METRICS
        if METRICS[n].needs != "reference" or reference_logits is not None
    ]

    if tier_of_class is None:
        groups = ["all"]
        example_group = np.zeros(s.labels.shape[0], dtype=np.int64)
        class_group = np.zeros(k, dtype=np.int64)
    else:
        groups = list(GROUPS)
        class_group = tier_codes(func, tier_of_class, k) + 1
        example_group = class_group[s.labels]
    n_groups = len(groups)

    # Per-group means of every per-example metric, one Rust pass each; group 0
    # ("all") is every example, tiers are groups 1..3.
    means: dict[str, np.ndarray] = {}
    counts: Any = None
    for name in names:
        spec = METRICS[name]
        if spec.statistic != "example_mean" or spec.per_example is None:
            continue
        values = spec.per_example(m)
        by_group, counts = _kernels.group_sums(func, values, example_group, n_groups)
        if n_groups > 1:
            by_group[0] = values.sum()
        counts[0] = s.labels.shape[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            means[name] = by_group / counts

    f1 = None
    if "macro_f1" in names:
        tp, fp, fn = _kernels.confusion_counts(func, s.labels, s.pred, k)
        f1 = f1_from_counts(tp, fp, fn, None)

    rows = []
    for g, group in enumerate(groups):
        in_group = np.ones_like(s.correct) if g == 0 else example_group == g
        n = int(np.count_nonzero(in_group))
        row: dict[str, Any] = {"group": group, "n": n}
        for name in names:
            statistic = METRICS[name].statistic
            if statistic == "example_mean":
                row[name] = float(means[name][g]) if n else np.nan
            elif statistic == "macro_f1":
                assert f1 is not None
                classes = np.ones(k, dtype=bool) if g == 0 else class_group == g
                row[name] = mean_defined(f1[classes])
            elif statistic == "binned":
                row[name] = (
                    ece_from_sums(
                        *bin_sums(
                            func,
                            s.confidence[in_group],
                            s.correct[in_group],
                            n_bins,
                            "uniform",
                            True,
                        )[:3]
                    )
                    if n
                    else np.nan
                )
        rows.append(row)
    return pd.DataFrame(rows)[["group", "n", *names]].set_index("group")
