"""The one door to the Rust extension ``kdmetrics._core``.

Every other module calls the kernels through this module, so the boundary
(what crosses it, which errors come back) is visible in one place. Callers
hand over arrays that ``_validation`` has already checked.
"""

from __future__ import annotations

from kdmetrics._core import (
    bin_by_edges,
    bin_equal_mass,
    bootstrap_eval,
    bootstrap_indices,
    confusion_counts,
    divergences,
    example_stats,
    get_num_threads,
    group_sums,
    nll_curve,
    paired_bootstrap,
    predict,
    set_num_threads,
)

__all__ = [
    "bin_by_edges",
    "bin_equal_mass",
    "bootstrap_eval",
    "bootstrap_indices",
    "confusion_counts",
    "divergences",
    "example_stats",
    "get_num_threads",
    "group_sums",
    "nll_curve",
    "paired_bootstrap",
    "predict",
    "set_num_threads",
]
