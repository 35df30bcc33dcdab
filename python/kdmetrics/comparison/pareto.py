"""Pareto fronts of quality against cost, with the statistical support of each
dominance.

A model ``j`` *dominates* ``i`` on the point estimates when it costs no more and
is at least as good, and strictly better or strictly cheaper. A dominance is
*supported* when ``j`` costs no more than ``i`` and the paired interval of
``quality(j) - quality(i)`` excludes 0 in ``j``'s favour. Costs are taken as
measured (exact). Each model gets one status:

``front``
    no model dominates it on the point estimates;
``dominated``
    some cheaper-or-equal model is better with an interval that excludes 0;
``not separable``
    dominated on the point estimates only: the interval of the difference
    includes 0, so the data cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

STATUSES = ("front", "not separable", "dominated")


def pareto_table(
    models: Sequence[str],
    quality: Mapping[str, float],
    cost: Mapping[str, float],
    higher_is_better: bool,
    interval: Callable[[str, str], tuple[float, float]],
) -> pd.DataFrame:
    """One row per model with a finite cost and quality: ``model, quality_value,
    cost_value, on_front, status, dominated_by, not_separable_from``.

    ``interval(i, j)`` is the interval of ``quality(j) - quality(i)``.
    """
    sign = 1.0 if higher_is_better else -1.0
    pts = [m for m in models if np.isfinite(quality[m]) and np.isfinite(cost[m])]
    rows = []
    for i in pts:
        point, supported = [], []
        for j in pts:
            if j == i or cost[j] > cost[i]:
                continue
            gain = sign * (quality[j] - quality[i])
            if gain >= 0 and (gain > 0 or cost[j] < cost[i]):
                point.append(j)
            lo, hi = interval(i, j)
            if (higher_is_better and lo > 0) or (not higher_is_better and hi < 0):
                supported.append(j)
        if supported:
            status = "dominated"
        elif point:
            status = "not separable"
        else:
            status = "front"
        rows.append(
            (
                i,
                float(quality[i]),
                float(cost[i]),
                not point,
                status,
                ", ".join(supported),
                ", ".join(j for j in point if j not in supported),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "model",
            "quality_value",
            "cost_value",
            "on_front",
            "status",
            "dominated_by",
            "not_separable_from",
        ],
    )
