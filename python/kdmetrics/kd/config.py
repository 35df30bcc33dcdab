"""The training configuration and the names it uses, defined once.

This module does not import torch, so the ``kdmetrics train`` argument parser
reads its choices and defaults from here (the CLI and the API cannot drift
apart) and ``kdmetrics --help`` works without torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kdmetrics.errors import InvalidArgumentError
from kdmetrics.metrics.registry import METRICS

# Built-in losses (see kdmetrics.kd.losses.make_loss).
LOSSES: tuple[str, ...] = ("vanilla", "kd", "hard", "dkd", "multi")
# How several teachers are combined (multi_teacher_kd_loss).
STRATEGIES: tuple[str, ...] = ("split", "fused", "logit-average")
# The per-teacher loss of the multi-teacher loss.
MULTI_BASES: tuple[str, ...] = ("kd", "dkd")
# How many teachers (cached files plus an online teacher module) each loss takes.
TEACHERS_NEEDED: dict[str, tuple[int, float]] = {
    "vanilla": (0, 0),
    "kd": (1, 1),
    "hard": (1, 1),
    "dkd": (1, 1),
    "multi": (1, math.inf),
}
# Label value that marks an example to leave out of every loss term.
IGNORE_INDEX = -100
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_KEYS = ("resume", "stop_after_epoch", "progress", "num_workers", "device", "out_dir")


def loss_hyperparameters(config: TrainConfig) -> dict[str, Any]:
    """The hyperparameters that act on ``config.loss``, by name (for metadata).

    Vanilla has none; ``kd``: T, alpha; ``hard``: alpha; ``dkd``: T,
    dkd_alpha, dkd_beta, dkd_warmup_epochs; ``multi``: T, multi_strategy,
    multi_base, teacher_weights (as text), and alpha (base kd) or the DKD
    weights (base dkd). A callable loss records none: its own parameters are
    unknown to the loop.
    """
    c = config
    dkd = {
        "T": float(c.T),
        "dkd_alpha": float(c.dkd_alpha),
        "dkd_beta": float(c.dkd_beta),
        "dkd_warmup_epochs": int(c.dkd_warmup_epochs),
    }
    if c.loss == "kd":
        return {"T": float(c.T), "alpha": float(c.alpha)}
    if c.loss == "hard":
        return {"alpha": float(c.alpha)}
    if c.loss == "dkd":
        return dkd
    if c.loss == "multi":
        out: dict[str, Any] = {"multi_strategy": c.multi_strategy, "multi_base": c.multi_base}
        if c.teacher_weights is not None:
            out["teacher_weights"] = ",".join(str(float(w)) for w in c.teacher_weights)
        if c.multi_base == "kd":
            return {"T": float(c.T), "alpha": float(c.alpha), **out}
        return {**dkd, **out}
    return {}


def loss_name(loss: Any) -> str:
    """``loss`` itself for a built-in loss; ``callable:<qualified name>`` for a callable."""
    if isinstance(loss, str):
        return loss
    name = getattr(loss, "__qualname__", None) or type(loss).__qualname__
    return f"callable:{getattr(loss, '__module__', '?')}.{name}"


@dataclass
class TrainConfig:
    """Everything that defines a run; stored resolved in checkpoints and logs.

    ``loss``: ``vanilla`` (cross-entropy, the default here and in the CLI),
    ``kd`` (Hinton; ``T``, ``alpha``), ``hard`` (CE against the teacher's
    argmax, weight ``alpha``), ``dkd`` (``T``, ``dkd_alpha``, ``dkd_beta``,
    ``dkd_warmup_epochs``), ``multi`` (several teachers; ``multi_strategy``,
    ``teacher_weights``, ``multi_base``), or a callable with the signature of
    :data:`kdmetrics.kd.losses.LossFn` (recorded as ``callable:<name>``; it
    gets every teacher's logits, cached files first, then the online teacher).
    Prediction-file metadata record only the hyperparameters the loss uses
    (:func:`loss_hyperparameters`).

    ``batch_size`` is the global batch (split across DDP ranks). Default
    optimizer: AdamW(``lr``, ``weight_decay``); default schedule: linear
    warm-up over ``warmup_frac`` of the optimizer steps, then linear decay to 0
    (:func:`kdmetrics.kd.loop.warmup_linear_decay`); both can be replaced by
    factories passed to :func:`~kdmetrics.kd.loop.train`.

    ``train_counts`` (K) gives the tiers (default: counted from the training
    labels; tiers are reported when K >= sum(``tier_sizes``)), unless
    ``tier_of_class`` gives them. ``select_metric``: the validation metric
    choosing ``best.pt``; any metric of ``kdmetrics.metrics.registry`` that
    the run has (``kl``, ``js``, ``teacher_agreement`` need validation teacher
    logits), optionally with a tier suffix (``macro_f1_tail``); its direction
    comes from the registry. ``top_k``: the k of ``top_k_accuracy``.
    ``early_stopping_patience``: stop after this many evaluated epochs without
    an improvement of ``select_metric`` by more than
    ``early_stopping_min_delta`` (None: never); the same margin decides when
    ``best.pt`` is replaced (0: any strict improvement). An early-stopped run
    finishes normally: best weights, prediction files.

    ``pred_dtype``: dtype of the written prediction files. float16 cannot hold
    |logit| > 65504: such logits are saved as float32 instead, with a
    :class:`~kdmetrics.kd.loop.PredictionPrecisionWarning`, never as inf.
    ``stop_after_epoch`` ends the run early as an interruption would (no
    prediction file), for resuming later.
    """

    loss: str | Callable[..., Any] = "vanilla"
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    T: float = 4.0
    alpha: float = 0.9
    dkd_alpha: float = 1.0
    dkd_beta: float = 8.0
    dkd_warmup_epochs: int = 0
    grad_accum: int = 1
    clip_norm: float | None = None
    seed: int = 0
    eval_every: int = 1
    device: str = "auto"
    num_workers: int = 0
    progress: bool = True
    out_dir: str | None = None
    model_name: str = "student"
    train_counts: Sequence[int] | None = None
    tier_of_class: Sequence[int] | None = None
    tier_sizes: tuple[int, int] = (20, 40)
    teacher_weights: Sequence[float] | None = None
    multi_strategy: str = "split"
    multi_base: str = "kd"
    select_metric: str = "macro_f1"
    top_k: int = 5
    early_stopping_patience: int | None = None
    early_stopping_min_delta: float = 0.0
    log_every: int = 10
    pred_dtype: str = "float32"
    min_teacher_accuracy: float | None = None
    resume: bool = False
    stop_after_epoch: int | None = None


def config_default(name: str) -> Any:
    """The default of one TrainConfig field (the CLI's defaults come from here)."""
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[name]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_config(cfg: TrainConfig) -> None:
    """Checks every field that can be checked without data; ValueError naming it."""

    def bad(name: str, want: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"TrainConfig: {name} must be {want}, got {getattr(cfg, name)!r}"
        )

    if not (callable(cfg.loss) or cfg.loss in LOSSES):
        raise bad("loss", f"one of {LOSSES} or a callable")
    for name in ("epochs", "batch_size", "grad_accum", "eval_every", "log_every", "top_k"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(name, "an integer >= 1")
    for name in ("dkd_warmup_epochs", "num_workers", "seed"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad(name, "an integer >= 0")
    if not (_is_number(cfg.T) and cfg.T > 0):
        raise bad("T", "a finite number > 0")
    for name in ("alpha", "warmup_frac"):
        v = getattr(cfg, name)
        if not (_is_number(v) and 0 <= v <= 1):
            raise bad(name, "in [0, 1]")
    for name in ("dkd_alpha", "dkd_beta", "weight_decay", "early_stopping_min_delta"):
        v = getattr(cfg, name)
        if not (_is_number(v) and v >= 0):
            raise bad(name, "a finite number >= 0")
    if not (_is_number(cfg.lr) and cfg.lr > 0):
        raise bad("lr", "a finite number > 0")
    if cfg.clip_norm is not None and not (_is_number(cfg.clip_norm) and cfg.clip_norm > 0):
        raise bad("clip_norm", "None or a finite number > 0")
    if cfg.multi_strategy not in STRATEGIES:
        raise bad("multi_strategy", f"one of {STRATEGIES}")
    if cfg.multi_base not in MULTI_BASES:
        raise bad("multi_base", f"one of {MULTI_BASES}")
    if cfg.pred_dtype not in ("float16", "float32"):
        raise bad("pred_dtype", "'float16' or 'float32'")
    p = cfg.early_stopping_patience
    if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
        raise bad("early_stopping_patience", "None or an integer >= 1")
    if len(tuple(cfg.tier_sizes)) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in cfg.tier_sizes
    ):
        raise bad("tier_sizes", "two integers >= 0 (head, mid class counts)")
    base = metric_base(cfg.select_metric)
    if base not in METRICS or METRICS[base].statistic == "pair_mean":
        raise bad("select_metric", "a validation metric such as 'macro_f1' or 'nll_tail'")
    if not isinstance(cfg.device, str) or not cfg.device:
        raise bad("device", "a device name such as 'auto', 'cpu', 'cuda' or 'cuda:1'")
    if cfg.resume and not cfg.out_dir:
        raise InvalidArgumentError("TrainConfig: resume=True needs out_dir (where latest.pt lives)")


def metric_base(name: str) -> str:
    """The registry name of a validation metric (``macro_f1_tail`` -> ``macro_f1``)."""
    from kdmetrics.tiers import TIER_NAMES

    for tier in TIER_NAMES:
        if name.endswith(f"_{tier}") and name[: -len(tier) - 1] in METRICS:
            return name[: -len(tier) - 1]
    return name


def higher_is_better(name: str) -> bool:
    """Direction of a validation metric, from the registry."""
    return METRICS[metric_base(name)].higher_is_better


def resolved_config(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain Python values (checkpoints load with weights_only=True)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name == "loss":
            v = loss_name(v)
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (tuple, list)):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        out[f.name] = v
    return out
