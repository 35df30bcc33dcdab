"""Distillation with PyTorch: losses, teacher-logit store, training loop.

The data-set and model protocol of the loop is in :mod:`kdmetrics.kd.data`,
the loop's guarantees in :mod:`kdmetrics.kd.loop`, the checkpoint keys in
:mod:`kdmetrics.kd.checkpoint`; definitions in docs/conventions.md.

Needs the ``torch`` extra (``pip install 'kdmetrics[torch]'``). Names are
imported lazily, so ``import kdmetrics.cli.train`` (the ``kdmetrics train``
command's argument parser) works without torch, and ``import kdmetrics`` never
imports torch.

>>> from kdmetrics.kd import FeatureDataset, MLP, TrainConfig, train  # doctest: +SKIP
>>> res = train(lambda: MLP(8, 5), FeatureDataset(x, y), FeatureDataset(xv, yv),
...             TrainConfig(loss="kd", T=4, alpha=0.9, out_dir="runs/kd"),
...             teachers=["teacher_train.npz"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IGNORE_INDEX": "config",
    "LOSSES": "config",
    "STRATEGIES": "config",
    "TrainConfig": "config",
    "loss_hyperparameters": "config",
    "LossFn": "losses",
    "LossOutput": "losses",
    "ce_loss": "losses",
    "kd_loss": "losses",
    "hard_kd_loss": "losses",
    "dkd_loss": "losses",
    "dkd_warmup_factor": "losses",
    "make_loss": "losses",
    "multi_teacher_kd_loss": "losses",
    "NearChanceTeacherWarning": "store",
    "TeacherLogits": "store",
    "check_teachers": "store",
    "near_chance_threshold": "store",
    "save_teacher_logits": "store",
    "EpochBatchSampler": "data",
    "FeatureDataset": "data",
    "MLP": "models",
    "CHECKPOINT_FORMAT": "checkpoint",
    "load_checkpoint": "checkpoint",
    "DeviceUnavailableError": "trainer",
    "EpochEnd": "trainer",
    "PredictionPrecisionWarning": "trainer",
    "TrainResult": "trainer",
    "predict_logits": "trainer",
    "state_sha256": "trainer",
    "validation_metric_names": "trainer",
    "validation_metrics": "trainer",
    "warmup_linear_decay": "trainer",
    "train": "loop",
}

__all__ = sorted(_EXPORTS)

TORCH_MISSING = "kdmetrics.kd needs PyTorch: pip install 'kdmetrics[torch]'"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kdmetrics.kd' has no attribute {name!r}")
    try:
        mod = importlib.import_module(f"kdmetrics.kd.{module}")
    except ModuleNotFoundError as e:
        if e.name == "torch":
            raise ModuleNotFoundError(TORCH_MISSING, name="torch") from e
        raise
    value = getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
