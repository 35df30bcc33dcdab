"""The training loop: one function for the vanilla and distilled arms.

:func:`train` takes any ``nn.Module`` mapping a batch of inputs to logits, or
a zero-argument factory building one (called under
``torch.manual_seed(config.seed)``), data sets following the protocol of
:mod:`kdmetrics.kd.data` (items ``(x, y)``, ``(x, y, index)`` or dicts with
``labels``; optional ``ids``), a :class:`TrainConfig` and, for the distilled
arms, teacher logits aligned with the training set (cached files) and/or an
online ``teacher_model``.

**A model instance is deep-copied**: ``train(instance, ...)`` trains a copy
and returns it as ``result.model``; the caller's instance keeps its weights,
so passing the same instance to the vanilla and the distilled arm gives both
the same initial weights (the same ``init_sha256``). A factory gives the same
guarantee through the seed.

Reproducibility: model init (factory under ``seed``), batch order
(:class:`~kdmetrics.kd.data.EpochBatchSampler`, seeded by ``seed + epoch``)
and the training RNG (dropout: ``seed + 1``) depend only on ``seed``, never on
the loss, so the arms differ only in the loss. Checkpoints
(:mod:`kdmetrics.kd.checkpoint`: ``latest.pt`` every evaluated epoch and
``best.pt``) let ``resume=True`` continue from ``latest.pt``; on CPU that
reproduces an uninterrupted run's weights exactly. Under ``torchrun``
(``torch.distributed`` initialised) the model is wrapped in DDP, each rank
takes its share of every global batch, and rank 0 alone evaluates, logs and
writes files.

**Splits.** ``best.pt`` is chosen on ``val_set`` with ``select_metric``
(direction from the metric registry). The prediction files
``<model_name>_val.npz`` and, with ``test_set``, ``<model_name>_test.npz``
carry ``split`` and ``selected_on = "val"`` in their metadata: metrics on the
validation file are optimistic (the weights were chosen on it); report the
test file as held out.

**Teachers.** Cached teacher rows are fetched by the example position the
loop attaches to every item, never by batch counter, after the files passed
the alignment check (ids, order, class count; near-chance accuracy warns).
An online ``teacher_model`` runs on each batch's own inputs, so random
augmentation reaches teacher and student alike; its class count is checked
and its validation accuracy must not be near chance (warning), and it gives
the validation ``teacher_agreement``/``kl``/``js`` when no ``val_teachers``
are passed. It is put in eval mode (restored afterwards) and never trained.

**Progress** is a tqdm bar on a terminal and plain lines otherwise (one per
epoch, and at most one every 30 s within an epoch).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from kdmetrics.kd.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from kdmetrics.kd.config import TrainConfig
from kdmetrics.kd.losses import LOSSES
from kdmetrics.kd.store import TeacherLogits
from kdmetrics.kd.trainer import (
    Callback,
    DeviceUnavailableError,
    EpochEnd,
    OptimizerFactory,
    PredictionPrecisionWarning,
    SchedulerFactory,
    TrainResult,
    _Run,
    predict_logits,
    state_sha256,
    validation_metric_names,
    validation_metrics,
    warmup_linear_decay,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "LOSSES",
    "Callback",
    "DeviceUnavailableError",
    "EpochEnd",
    "PredictionPrecisionWarning",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "predict_logits",
    "state_sha256",
    "train",
    "validation_metric_names",
    "validation_metrics",
    "warmup_linear_decay",
]

TeacherSource = TeacherLogits | str | os.PathLike[str]


def train(
    model: nn.Module | Callable[[], nn.Module],
    train_set: Any,
    val_set: Any,
    config: TrainConfig | None = None,
    teachers: Sequence[TeacherSource] | None = None,
    *,
    val_teachers: Sequence[TeacherSource] | None = None,
    test_set: Any = None,
    teacher_model: nn.Module | None = None,
    optimizer: OptimizerFactory | None = None,
    scheduler: SchedulerFactory | None = None,
    callbacks: Sequence[Callback] = (),
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> TrainResult:
    """Trains ``model`` on ``train_set``, selects on ``val_set``; see the module docstring.

    ``teachers``: teacher-logit files (or :class:`TeacherLogits`) aligned with
    ``train_set``'s ids (one for kd/hard/dkd, one or more for multi, counting
    ``teacher_model``); all are alignment-checked first. ``val_teachers``
    (aligned with ``val_set``): the first one gives the validation
    ``teacher_agreement``, ``kl`` and ``js``. ``test_set``: evaluated once with
    the selected weights (``result.test_metrics``, and a prediction file).
    ``optimizer(model)`` and ``scheduler(optimizer, total_steps)``: factories
    replacing AdamW and :func:`warmup_linear_decay`. ``callbacks``: called as
    ``callback(EpochEnd)`` after every epoch; returning True stops the run
    (which then finishes normally). ``collate_fn`` batches the data sets' items.

    Every problem found in the arguments, data, teachers, device or config is
    a ValueError naming ``train`` (or ``TrainConfig``) and the argument, raised
    before the first epoch.
    """
    run = _Run(
        config or TrainConfig(),
        train_set,
        val_set,
        test_set=test_set,
        teachers=teachers,
        val_teachers=val_teachers,
        teacher_model=teacher_model,
        optimizer=optimizer,
        scheduler=scheduler,
        callbacks=callbacks,
        collate_fn=collate_fn,
    )
    run.setup(model)
    run.restore_or_start()
    for epoch in range(run.start_epoch, run.cfg.epochs):
        record = run.train_epoch(epoch)
        evaluated = run.should_evaluate(epoch)
        if evaluated:
            run.evaluate(epoch, record)
        if run.end_epoch(epoch, record, evaluated):
            break
    return run.finish()
