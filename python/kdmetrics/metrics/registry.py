"""One declaration per metric: the single place a metric's name is written.

Every list of metric names in kdmetrics (the ``summary`` columns and their
order, the metrics ``paired_bootstrap`` accepts and which inputs they need,
the report's tables and headline, the training loop's best-checkpoint
direction, the common tests) is derived from :data:`METRICS`.

A metric is one of four *statistic kinds*, which is all the bootstrap needs to
know about it:

``example_mean``
    the mean of a per-example value (accuracy, NLL, Brier, KL, JS, top-k
    hits, agreement with the teacher); ``per_example`` produces the values.
``macro_f1``
    the mean of per-class F1 computed from confusion counts.
``binned``
    top-1 ECE from per-bin sums of confidence and correctness.
``pair_mean``
    a per-example value of a *pair* of models (churn): it has no value for
    one model alone, so ``summary`` leaves it out and the bootstrap reports
    the pair's value rather than a difference.

To add a metric, see CONTRIBUTING.md ("Adding a metric").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from kdmetrics.errors import InvalidArgumentError
from kdmetrics.metrics.agreement import predicted_classes
from kdmetrics.metrics.divergence import divergences
from kdmetrics.metrics.ranking import top_k_hits
from kdmetrics.metrics.scoring import ExampleStats, example_stats

Statistic = Literal["example_mean", "macro_f1", "binned", "pair_mean"]
# What a metric reads: only predicted classes, per-example probabilities,
# or probabilities plus a reference model's (a teacher's).
Needs = Literal["predictions", "logits", "reference"]


@dataclass
class ModelInputs:
    """One model's validated inputs, with per-example quantities computed on
    first use and shared by every metric that needs them."""

    func: str
    labels: np.ndarray
    logits: Any
    name: str = "logits"
    reference_logits: Any = None
    temperature: float = 1.0
    probs: bool = False
    reference_probs: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def stats(self) -> ExampleStats:
        return example_stats(
            self.func, self.labels, self.logits, self.temperature, self.probs, self.name
        )

    @property
    def pred(self) -> np.ndarray:
        return self.stats.pred

    @cached_property
    def kl_js(self) -> tuple[np.ndarray, np.ndarray]:
        return divergences(
            self.func,
            self.reference_logits,
            self.logits,
            self.temperature,
            self.reference_probs,
            self.probs,
            ("reference_logits", self.name),
        )

    @cached_property
    def reference_pred(self) -> np.ndarray:
        return predicted_classes(self.func, self.reference_logits, "reference_logits")


def _correct(m: ModelInputs) -> np.ndarray:
    return m.stats.correct.astype(np.float64)


def _top_k(m: ModelInputs) -> np.ndarray:
    return top_k_hits(m.func, m.labels, m.logits, int(m.options.get("k", 5)))


def _agreement(m: ModelInputs) -> np.ndarray:
    return (m.pred == m.reference_pred).astype(np.float64)


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is named, read, computed and shown."""

    name: str
    label: str  # the report's column and axis label
    higher_is_better: bool
    needs: Needs
    statistic: Statistic
    # Per-example values whose mean is the metric (kinds example_mean/pair_mean).
    per_example: Callable[[ModelInputs], np.ndarray] | None = None
    in_summary: bool = True
    in_bootstrap_default: bool = False
    # Changes with a temperature applied to the logits (calibration metrics);
    # argmax- and rank-based metrics do not.
    temperature_sensitive: bool = False
    description: str = ""
    # A function of predicted classes alone although it needs the reference
    # (agreement with the teacher's argmax): it moves only when a prediction
    # changes, so a difference resting on few changed agreements is fragile.
    from_argmax: bool = False

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def better(self, delta: float) -> bool:
        """True when a difference ``b - a`` of this metric favours ``b``."""
        return delta > 0 if self.higher_is_better else delta < 0


_DECLARATIONS = (
    MetricSpec(
        "accuracy",
        "accuracy",
        True,
        "predictions",
        "example_mean",
        _correct,
        in_bootstrap_default=True,
        description="micro accuracy, mean of pred == label",
    ),
    MetricSpec(
        "macro_f1",
        "macro F1",
        True,
        "predictions",
        "macro_f1",
        in_bootstrap_default=True,
        description="mean per-class F1 over the group's classes",
    ),
    MetricSpec(
        "top_k_accuracy",
        "top-5 accuracy",
        True,
        "logits",
        "example_mean",
        _top_k,
        description="label among the k highest logits (k=5 by default)",
    ),
    MetricSpec(
        "ece",
        "ECE",
        False,
        "logits",
        "binned",
        in_bootstrap_default=True,
        temperature_sensitive=True,
        description="top-1 expected calibration error, 15 bins",
    ),
    MetricSpec(
        "nll",
        "NLL",
        False,
        "logits",
        "example_mean",
        lambda m: m.stats.scores()[0],
        in_bootstrap_default=True,
        temperature_sensitive=True,
        description="negative log-likelihood, nats",
    ),
    MetricSpec(
        "brier",
        "Brier",
        False,
        "logits",
        "example_mean",
        lambda m: m.stats.scores()[1],
        in_bootstrap_default=True,
        temperature_sensitive=True,
        description="multi-class Brier score, range [0, 2]",
    ),
    MetricSpec(
        "kl",
        "KL(teacher||model)",
        False,
        "reference",
        "example_mean",
        lambda m: m.kl_js[0],
        in_bootstrap_default=True,  # with a reference
        description="KL(reference || model), nats",
    ),
    MetricSpec(
        "js",
        "JS",
        False,
        "reference",
        "example_mean",
        lambda m: m.kl_js[1],
        in_bootstrap_default=True,  # with a reference
        description="Jensen-Shannon divergence to the reference, nats",
    ),
    MetricSpec(
        "teacher_agreement",
        "top-1 agreement",
        True,
        "reference",
        "example_mean",
        _agreement,
        description="fraction of examples where argmax equals the reference's argmax",
        from_argmax=True,
    ),
    MetricSpec(
        "churn",
        "churn",
        False,
        "predictions",
        "pair_mean",
        lambda m: 1.0 - _agreement(m),  # m: model B, reference: model A
        in_summary=False,
        description="fraction of examples whose argmax differs between the two models",
    ),
)

METRICS: dict[str, MetricSpec] = {s.name: s for s in _DECLARATIONS}

# Column order of ``summary`` (reference metrics appear only with a reference).
SUMMARY_METRICS: tuple[str, ...] = tuple(s.name for s in _DECLARATIONS if s.in_summary)
# What ``paired_bootstrap`` computes when no metrics are named.
DEFAULT_BOOTSTRAP_METRICS: tuple[str, ...] = tuple(
    s.name for s in _DECLARATIONS if s.in_bootstrap_default
)
# The defaults that need no reference model (the teacher).
DEFAULT_MODEL_METRICS: tuple[str, ...] = tuple(
    s.name for s in _DECLARATIONS if s.in_bootstrap_default and s.needs != "reference"
)
HIGHER_IS_BETTER: frozenset[str] = frozenset(s.name for s in _DECLARATIONS if s.higher_is_better)


def spec(func: str, name: str) -> MetricSpec:
    """The declaration of ``name``, or a ValueError listing the valid names."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise InvalidArgumentError(
            f"{func}: unknown metric {name!r}; choose from {', '.join(METRICS)}"
        ) from None
