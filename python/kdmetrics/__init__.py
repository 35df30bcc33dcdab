"""kdmetrics: what did the distillation actually transfer?

Metrics over N x K logits (Rust kernels, float16/32/64 read as they are) for
comparing a teacher, a vanilla student and a distilled student: capacity,
calibration, distributional fidelity, temperature scaling, selective
prediction, overall and per class tier. ``kdmetrics.kd`` (needs torch) holds
the distillation losses and training loop; importing kdmetrics never imports
torch.
"""

from kdmetrics._arrays import ProbabilitiesAsLogitsWarning
from kdmetrics._kernels import __version__ as __version__
from kdmetrics._kernels import get_num_threads, set_num_threads
from kdmetrics.comparison import Comparison, compare
from kdmetrics.errors import (
    AlignmentError,
    InvalidArgumentError,
    KdMetricsError,
    NonFiniteError,
    OutOfRangeError,
    ShapeError,
)
from kdmetrics.io.predictions import (
    Predictions,
    check_aligned,
    ids_sha256,
    load_predictions,
    save_predictions,
)
from kdmetrics.metrics.agreement import churn, teacher_agreement
from kdmetrics.metrics.aurc import aurc
from kdmetrics.metrics.calibration import ece, ece_debiased, reliability_table
from kdmetrics.metrics.classification import (
    accuracy,
    balanced_accuracy,
    confusion_counts,
    f1_per_class,
    macro_f1,
)
from kdmetrics.metrics.divergence import js_distance, js_divergence, kl_divergence
from kdmetrics.metrics.ranking import top_k_accuracy
from kdmetrics.metrics.scoring import brier, nll
from kdmetrics.metrics.selective import SLAThreshold, sla_threshold, threshold_table
from kdmetrics.metrics.summary import summary
from kdmetrics.metrics.temperature import TemperatureFit, fit_temperature
from kdmetrics.stats.bootstrap import paired_bootstrap
from kdmetrics.stats.grid import compare_grid
from kdmetrics.stats.policy import calibration_bootstrap
from kdmetrics.stats.seeds import SeedComparison, compare_seeds
from kdmetrics.tiers import TIER_NAMES, tiers_from_counts

__all__ = [
    "AlignmentError",
    "InvalidArgumentError",
    "KdMetricsError",
    "NonFiniteError",
    "OutOfRangeError",
    "ShapeError",
    "TIER_NAMES",
    "Predictions",
    "ProbabilitiesAsLogitsWarning",
    "SLAThreshold",
    "SeedComparison",
    "TemperatureFit",
    "accuracy",
    "aurc",
    "calibration_bootstrap",
    "balanced_accuracy",
    "brier",
    "Comparison",
    "check_aligned",
    "churn",
    "compare",
    "compare_grid",
    "compare_seeds",
    "confusion_counts",
    "ece",
    "ece_debiased",
    "f1_per_class",
    "fit_temperature",
    "get_num_threads",
    "ids_sha256",
    "js_distance",
    "js_divergence",
    "kl_divergence",
    "load_predictions",
    "macro_f1",
    "nll",
    "paired_bootstrap",
    "reliability_table",
    "save_predictions",
    "set_num_threads",
    "sla_threshold",
    "summary",
    "threshold_table",
    "teacher_agreement",
    "tiers_from_counts",
    "top_k_accuracy",
]
