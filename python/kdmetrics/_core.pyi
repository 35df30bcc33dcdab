# Type stubs for the Rust extension (rust/python/). Checked with
# `python -m mypy.stubtest kdmetrics._core`.
from typing import final

import numpy as np
import numpy.typing as npt

__version__: str

__all__ = [
    "__version__",
    "bin_by_edges",
    "bootstrap_indices",
    "bin_equal_mass",
    "confusion_counts",
    "divergences",
    "example_stats",
    "get_num_threads",
    "group_sums",
    "nll_curve",
    "ResampleProblem",
    "order_statistics",
    "column_summary",
    "predict",
    "top_k_hits",
    "set_num_threads",
]

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def example_stats(
    logits: npt.NDArray[np.floating],
    labels: npt.NDArray[np.int64] | None,
    temperature: float,
    log_probs: bool = False,
    name: str = "logits",
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
]: ...
def predict(logits: npt.NDArray[np.floating], name: str = "logits") -> npt.NDArray[np.int64]: ...
def top_k_hits(
    logits: npt.NDArray[np.floating],
    labels: npt.NDArray[np.int64],
    k: int,
    name: str = "logits",
) -> npt.NDArray[np.float64]: ...
def divergences(
    p_logits: npt.NDArray[np.floating],
    q_logits: npt.NDArray[np.floating],
    temperature: float,
    p_log_probs: bool = False,
    q_log_probs: bool = False,
    p_name: str = "p_logits",
    q_name: str = "q_logits",
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def nll_curve(
    logits: npt.NDArray[np.floating],
    labels: npt.NDArray[np.int64],
    beta: float,
    log_probs: bool = False,
    name: str = "logits",
) -> tuple[float, float, float]: ...
def confusion_counts(
    labels: npt.NDArray[np.int64], preds: npt.NDArray[np.int64], n_classes: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def bin_by_edges(
    confidence: npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    edges: npt.NDArray[np.float64],
    right_closed: bool,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def bin_equal_mass(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], n_bins: int
) -> tuple[
    tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]: ...
def group_sums(
    values: npt.NDArray[np.float64], groups: npt.NDArray[np.int64], n_groups: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64]]: ...
def column_summary(
    values: npt.NDArray[np.float64], thresholds: npt.NDArray[np.float64]
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]: ...
def order_statistics(
    values: npt.NDArray[np.float64], cols: npt.NDArray[np.int64], ranks: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]: ...

@final
class ResampleProblem:
    def __new__(
        cls,
        labels: npt.NDArray[np.int64],
        preds: list[npt.NDArray[np.int64]],
        n_classes: int,
        class_tier: npt.NDArray[np.int64],
        n_tiers: int,
        statistics: list[tuple[str, list[npt.NDArray[np.float64]] | None]],
        n_bins: int,
    ) -> ResampleProblem: ...
    @property
    def n_stats(self) -> int: ...
    @property
    def n_models(self) -> int: ...
    @property
    def n_deltas(self) -> int: ...
    def deltas(self, seed: int, start: int, count: int) -> npt.NDArray[np.float64]: ...
    def deltas_into(self, seed: int, start: int, out: npt.NDArray[np.float64]) -> None: ...
    def full(self) -> npt.NDArray[np.float64]: ...
    def jackknife_accel(self) -> npt.NDArray[np.float64]: ...
    def eval_indices(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]: ...

def bootstrap_indices(n: int, seed: int, i: int, count: int) -> npt.NDArray[np.int64]: ...
