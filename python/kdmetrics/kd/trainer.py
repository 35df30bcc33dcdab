"""The pieces of the training loop: a run object and the helpers it uses.

:func:`kdmetrics.kd.loop.train` drives a :class:`_Run` through its steps:
``setup`` (device, model, data, teachers, tiers, loader, optimizer),
``restore_or_start``, then per epoch ``train_epoch``, ``evaluate`` and
``end_epoch`` (history, checkpoint, callbacks, early stopping), and
``finish`` (best weights, prediction files). Each step is short and can be
read on its own; the public names are re-exported by ``kdmetrics.kd.loop``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from kdmetrics.errors import AlignmentError, InvalidArgumentError, OutOfRangeError, ShapeError
from kdmetrics.io.predictions import save_predictions
from kdmetrics.kd.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from kdmetrics.kd.config import (
    IGNORE_INDEX,
    RESUMABLE_KEYS,
    TEACHERS_NEEDED,
    TrainConfig,
    check_config,
    higher_is_better,
    loss_hyperparameters,
    loss_name,
    resolved_config,
)
from kdmetrics.kd.data import (
    EpochBatchSampler,
    IndexedCollate,
    IndexedDataset,
    call_model,
    dataset_ids,
    dataset_labels,
    output_logits,
    split_batch,
)
from kdmetrics.kd.losses import LossFn, LossOutput, make_loss
from kdmetrics.kd.store import (
    NearChanceTeacherWarning,
    TeacherLogits,
    check_teachers,
    near_chance_threshold,
)
from kdmetrics.metrics.registry import METRICS, SUMMARY_METRICS
from kdmetrics.metrics.summary import summary
from kdmetrics.tiers import TIER_NAMES, tier_codes, tiers_from_counts

OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]
"""``optimizer(model) -> torch.optim.Optimizer`` (gets the model, to build parameter groups)."""
SchedulerFactory = Callable[[torch.optim.Optimizer, int], Any]
"""``scheduler(optimizer, total_steps) -> LR scheduler``, stepped once per optimizer step."""


class DeviceUnavailableError(InvalidArgumentError):
    """The requested device does not exist or is not available here."""


class PredictionPrecisionWarning(UserWarning):
    """float16 could not hold the logits: the prediction file was saved as float32."""


@dataclass
class TrainResult:
    """What :func:`~kdmetrics.kd.loop.train` returns.

    ``history``: one record per epoch (``train_*`` means of the loss terms,
    ``val_*`` validation metrics when evaluated, ``lr``, ``samples_per_s``,
    ``order_sha256`` of the batch order). ``best_metrics``/``best_epoch``: the
    validation metrics of the epoch chosen by ``select_metric`` (the weights
    in ``model``). ``predictions_path``/``test_predictions_path``: the written
    prediction files (None without ``out_dir`` or for an interrupted run).
    ``test_metrics``: metrics of the chosen weights on ``test_set``.
    ``stopped_early``: early stopping or a callback ended the run.
    ``init_sha256``: hash of the initial weights (equal across the arms of
    one seed). ``config``: the resolved config.
    """

    history: list[dict[str, Any]]
    best_metrics: dict[str, Any]
    best_epoch: int | None
    predictions_path: str | None
    checkpoint_dir: str | None
    model: nn.Module
    log_path: str | None = None
    init_sha256: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    test_predictions_path: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


@dataclass
class EpochEnd:
    """What an epoch-end callback receives; a callback returning True stops the run.

    Under ``torchrun`` every rank calls the callbacks, only rank 0 has the
    validation metrics, and rank 0's decision to stop counts.
    """

    epoch: int  # completed epochs (1-based)
    record: dict[str, Any]  # this epoch's history record
    model: nn.Module
    best_epoch: int | None
    best_value: float | None
    is_main: bool


Callback = Callable[[EpochEnd], Any]


# ---------------------------------------------------------------- helpers


def warmup_linear_decay(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor per optimizer step: linear warm-up ``(step + 1) / warmup`` for
    the first ``warmup_steps`` steps, then linear decay to 0 at ``total_steps``."""
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise InvalidArgumentError(
            f"warmup_linear_decay: need 0 <= warmup_steps <= total_steps, total_steps >= 1; "
            f"got {warmup_steps}, {total_steps}"
        )

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def resolve_device(spec: str, distributed: bool = False) -> torch.device:
    """``auto`` is CUDA when available, else CPU; a device that does not exist
    or is not available here raises :class:`DeviceUnavailableError`."""
    func = "train"
    name = "cuda" if spec == "auto" and torch.cuda.is_available() else spec
    name = "cpu" if name == "auto" else name
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise DeviceUnavailableError(
            f"{func}: device {spec!r} is not a device name ({e}); use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"{func}: device {spec!r} was asked for but CUDA is not available here "
                f"(torch {torch.__version__}); use device='cpu' or 'auto'"
            )
        if dev.index is None and distributed:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"{func}: device {spec!r}: only {torch.cuda.device_count()} CUDA device(s)"
            )
        torch.cuda.set_device(dev)
    elif dev.type != "cpu":
        try:
            torch.empty(1, device=dev)
        except (RuntimeError, AssertionError) as e:
            raise DeviceUnavailableError(
                f"{func}: device {spec!r} is not available ({e})"
            ) from None
    return dev


def to_device(x: Any, device: torch.device) -> Any:
    """Moves a tensor or a (nested) dict/tuple of tensors (a tokenizer's output)."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict) or (hasattr(x, "items") and hasattr(x, "keys")):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x


def autocast(device: torch.device):
    """bf16 autocast on CUDA; fp32 on CPU (bf16 matmuls on CPU are slow and change results)."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"
    )


def state_sha256(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names and bytes): the arms' shared init."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def predict_logits(
    model: nn.Module,
    dataset: Any,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    *,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> np.ndarray:
    """Logits of ``model`` on ``dataset`` in dataset order, float32 (N, K).

    Any item form of the data-set protocol (:mod:`kdmetrics.kd.data`), or
    bare inputs without labels; the model may return a tensor, a dict with
    ``logits`` or a ModelOutput. The model is put in eval mode and restored.
    """
    func = "predict_logits"
    dev = torch.device(device)
    was_training = model.training
    model.eval()
    # Own generator: iterating a DataLoader would otherwise draw from the global RNG.
    loader = DataLoader(
        IndexedDataset(dataset),
        batch_size=batch_size,
        shuffle=False,
        generator=torch.Generator(),
        collate_fn=IndexedCollate(collate_fn),
    )
    out = []
    try:
        with torch.no_grad():
            for positions, batch in loader:
                if isinstance(batch, torch.Tensor):
                    x = batch
                else:
                    x, _ = split_batch(func, batch, positions)
                with autocast(dev):
                    z = output_logits(func, call_model(model, to_device(x, dev)))
                out.append(z.float().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        raise ShapeError(f"{func}: the data set is empty")
    return np.concatenate(out, axis=0)


def validation_metric_names(has_reference: bool, has_tiers: bool) -> list[str]:
    """Names :func:`validation_metrics` returns, from the metric registry."""
    base = [n for n in SUMMARY_METRICS if METRICS[n].needs != "reference" or has_reference]
    tiers = [f"{n}_{t}" for t in TIER_NAMES for n in base] if has_tiers else []
    return base + tiers


def validation_metrics(
    labels: np.ndarray,
    logits: np.ndarray,
    tier_of_class: Any = None,
    teacher_logits: Any = None,
    *,
    top_k: int = 5,
) -> dict[str, float]:
    """Every metric ``kdmetrics.summary`` computes for one model (the registry's
    summary metrics: accuracy, macro F1, top-k accuracy, ECE, NLL, Brier and,
    with the teacher's validation logits, KL(teacher || model), JS and
    teacher_agreement), overall and, with tiers, per tier as ``<name>_<tier>``."""
    table = summary(
        labels, logits, tier_of_class=tier_of_class, reference_logits=teacher_logits, top_k=top_k
    )
    names = [c for c in table.columns if c != "n"]
    m = {name: float(table.loc["all", name]) for name in names}
    if tier_of_class is not None:
        for tier in TIER_NAMES:
            m.update({f"{name}_{tier}": float(table.loc[tier, name]) for name in names})
    return m


def _prediction_array(z: np.ndarray, dtype: str, path: str) -> np.ndarray:
    """float16 when asked and it holds every value; float32 with a warning otherwise."""
    if dtype == "float16":
        top = float(np.abs(z).max(initial=0.0))
        if top > float(np.finfo(np.float16).max):
            warnings.warn(
                f"train: {path}: |logit| reaches {top:.4g}, beyond float16's 65504; "
                "saved as float32 instead of pred_dtype='float16' (never as inf)",
                PredictionPrecisionWarning,
                stacklevel=4,
            )
            return z.astype(np.float32)
    return z.astype(dtype)


class _JsonLog:
    def __init__(self, path: str | None):
        self.path = path
        if path is not None:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), **record}) + "\n")


class RunningMeans:
    """Running sums of the loss terms over batches, and the sample rate."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.batches = 0
        self.samples = 0
        self.t0 = time.perf_counter()

    def add(self, values: dict[str, torch.Tensor], samples: int) -> None:
        for name, v in values.items():  # tensors: no device sync per batch
            self.sums[name] = self.sums.get(name, 0.0) + v
        self.batches += 1
        self.samples += samples

    def means(self) -> dict[str, float]:
        return {name: float(v) / max(self.batches, 1) for name, v in self.sums.items()}

    def rate(self, world: int = 1) -> float:
        return self.samples * world / max(time.perf_counter() - self.t0, 1e-9)


class Progress:
    """A tqdm bar on a terminal; on anything else (logs, CI, pipes) plain lines,
    at most one every ``every_s`` seconds within an epoch, so logs get no flood
    of carriage-return frames."""

    def __init__(self, enabled: bool, total: int, desc: str, every_s: float = 30.0):
        self.enabled, self.total, self.desc, self.every_s = enabled, total, desc, every_s
        self.done, self.postfix, self.last = 0, "", time.perf_counter()
        self.bar = None
        stream = sys.stderr
        if enabled and hasattr(stream, "isatty") and stream.isatty():
            from tqdm import tqdm  # the plain bar: tqdm.auto warns in notebooks without ipywidgets

            self.bar = tqdm(total=total, desc=desc, leave=False, file=stream)

    def update(self, **postfix: str) -> None:
        self.done += 1
        if postfix:
            self.postfix = ", ".join(f"{k} {v}" for k, v in postfix.items())
        if self.bar is not None:
            self.bar.update(1)
            if postfix:
                self.bar.set_postfix(postfix)
        elif self.enabled and time.perf_counter() - self.last >= self.every_s:
            self.line(f"{self.done}/{self.total} batches, {self.postfix}")
            self.last = time.perf_counter()

    def line(self, text: str) -> None:
        if self.enabled:
            print(f"{self.desc}: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _open_teachers(teachers: Sequence[Any] | None) -> list[TeacherLogits]:
    return [t if isinstance(t, TeacherLogits) else TeacherLogits.open(t) for t in teachers or []]


def _factory_name(factory: Any, default: str) -> str:
    return default if factory is None else loss_name(factory).removeprefix("callable:")


# ---------------------------------------------------------------- the run


class _Run:
    """One training run; see the module docstring for the order of the steps."""

    def __init__(
        self,
        config: TrainConfig,
        train_set: Any,
        val_set: Any,
        *,
        test_set: Any = None,
        teachers: Sequence[Any] | None = None,
        val_teachers: Sequence[Any] | None = None,
        teacher_model: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        callbacks: Sequence[Callback] = (),
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ):
        self.cfg = config
        self.train_set, self.val_set, self.test_set = train_set, val_set, test_set
        self.teacher_paths, self.val_teacher_paths = teachers, val_teachers
        self.teacher_model = teacher_model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.callbacks = list(callbacks)
        self.collate = IndexedCollate(collate_fn)
        self.collate_fn = collate_fn
        self.interrupted = self.stopped_early = False

    # ------------------------------------------------------------ setup

    def setup(self, model: nn.Module | Callable[[], nn.Module]) -> None:
        cfg = self.cfg
        check_config(cfg)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank, self.world = (
            (dist.get_rank(), dist.get_world_size()) if self.distributed else (0, 1)
        )
        self.is_main = self.rank == 0
        self.device = resolve_device(cfg.device, self.distributed)
        self.net = self._build_model(model)
        self.init_sha = state_sha256(self.net)
        self.net.to(self.device)
        self._read_data()
        self.k = self._class_count(self.net, "model")
        self._check_labels()
        self._setup_teachers()
        self._setup_tiers()
        self._check_select_metric()
        self.loss_fn: LossFn = make_loss(cfg)
        self._setup_loader()
        self._setup_optimizer()
        self._setup_output()

    def _build_model(self, model: Any) -> nn.Module:
        if isinstance(model, nn.Module):
            # Never train the caller's instance: reusing it for the next arm
            # would silently start that arm from this arm's trained weights.
            try:
                net = copy.deepcopy(model)
            except Exception as e:
                raise InvalidArgumentError(
                    f"train: could not copy the model instance ({e}); pass a factory "
                    "(e.g. lambda: MyModel(...)) instead"
                ) from None
        elif callable(model):
            torch.manual_seed(self.cfg.seed)  # model init depends on the seed only
            net = model()
        else:
            raise InvalidArgumentError(
                f"train: model must be an nn.Module or a zero-argument factory, got "
                f"{type(model).__name__}"
            )
        if not isinstance(net, nn.Module):
            raise InvalidArgumentError(
                f"train: the model factory returned {type(net).__name__}, not a Module"
            )
        if self.teacher_model is not None and self.teacher_model is model:
            raise InvalidArgumentError("train: teacher_model is the student model itself")
        return net

    def _read_data(self) -> None:
        sets = {"train_set": self.train_set, "val_set": self.val_set, "test_set": self.test_set}
        self.labels, self.ids = {}, {}
        for name, ds in sets.items():
            if ds is None:
                continue
            if not hasattr(ds, "__len__") or not hasattr(ds, "__getitem__"):
                raise InvalidArgumentError(
                    f"train: {name} must have __len__ and __getitem__ (a map-style "
                    f"data set), got {type(ds).__name__}"
                )
            if len(ds) == 0:
                raise ShapeError(f"train: {name} is empty")
            self.labels[name] = dataset_labels(ds, f"train: {name}")
            self.ids[name] = dataset_ids(ds)

    def _class_count(self, net: nn.Module, what: str) -> int:
        """K from one example through ``net``: works for any model."""
        positions, batch = self.collate([(0, self.train_set[0])])
        x, _ = split_batch("train: train_set", batch, positions)
        was = net.training
        net.eval()
        with torch.no_grad(), autocast(self.device):
            z = output_logits(f"train: {what}", call_model(net, to_device(x, self.device)))
        net.train(was)
        k = int(z.shape[1])
        if k < 2:
            raise ShapeError(f"train: the {what} outputs {k} class(es); need at least 2")
        return k

    def _check_labels(self) -> None:
        for name, y in self.labels.items():
            ok = (y >= 0) & (y < self.k)
            if name == "train_set":
                ok |= y == IGNORE_INDEX  # left out of every loss term
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                hint = f" or {IGNORE_INDEX} (left out)" if name == "train_set" else ""
                raise OutOfRangeError(
                    f"train: {name} label {int(y[i])} at position {i} is not in [0, {self.k})"
                    f"{hint}: the model outputs K={self.k} classes",
                    i,
                    int(y[i]),
                    self.k,
                )
        if not (self.labels["train_set"] != IGNORE_INDEX).any():
            raise InvalidArgumentError(f"train: every train_set label is {IGNORE_INDEX} (left out)")

    def _setup_teachers(self) -> None:
        cfg, k = self.cfg, self.k
        self.tlist = _open_teachers(self.teacher_paths)
        n = len(self.tlist) + (self.teacher_model is not None)
        lo, hi = TEACHERS_NEEDED.get(loss_name(cfg.loss), (0, math.inf))
        if not lo <= n <= hi:
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            hint = " (use loss='multi' for several)" if hi == 1 and n > 1 else ""
            if hi == 0:
                distil = [name for name, (need, _) in TEACHERS_NEEDED.items() if need > 0]
                hint = f" (to distil, choose a loss among {distil})"
            raise InvalidArgumentError(
                f"train: loss={loss_name(cfg.loss)!r} needs {want} teacher(s) (teacher files "
                f"plus teacher_model), got {n}{hint}"
            )
        uses_dkd = cfg.loss == "dkd" or (cfg.loss == "multi" and cfg.multi_base == "dkd")
        if uses_dkd and k < 3:
            raise ShapeError(f"train: DKD needs K >= 3 classes, the model outputs {k}")
        y = self.labels["train_set"]
        self.ids_sha = (
            check_teachers(
                self.tlist,
                self.ids["train_set"],
                labels=y,
                n_classes=k,
                min_accuracy=cfg.min_teacher_accuracy,
            )
            if self.tlist
            else None
        )
        vlist = _open_teachers(self.val_teacher_paths)
        if vlist:
            check_teachers(
                vlist,
                self.ids["val_set"],
                labels=self.labels["val_set"],
                n_classes=k,
                min_accuracy=cfg.min_teacher_accuracy,
            )
        self.val_teacher_logits = np.asarray(vlist[0].logits, dtype=np.float32) if vlist else None
        self.has_reference = bool(vlist) or self.teacher_model is not None
        self.teacher_info = [
            {"path": t.path, "file_sha256": t.file_sha256(), "ids_sha256": t.ids_sha256}
            for t in self.tlist
        ]
        if self.teacher_model is not None:
            self._setup_online_teacher()

    def _setup_online_teacher(self) -> None:
        """The online teacher sees each batch's own inputs (augmented ones
        included), so its rows are aligned by construction; its class count is
        checked like a file's, and its validation accuracy like a file's
        training accuracy (near chance warns)."""
        tm = self.teacher_model
        if not isinstance(tm, nn.Module):
            raise InvalidArgumentError(
                f"train: teacher_model must be an nn.Module, got {type(tm).__name__}"
            )
        self.teacher_was_training = tm.training
        tm.to(self.device).eval()
        kt = self._class_count(tm, "teacher_model")
        if kt != self.k:
            raise ShapeError(
                f"train: teacher_model outputs {kt} classes but the student outputs {self.k}"
            )
        if not self.is_main:
            return
        z = predict_logits(tm, self.val_set, device=self.device, collate_fn=self.collate_fn)
        if self.val_teacher_logits is None:
            self.val_teacher_logits = z
        y = self.labels["val_set"]
        acc = float((z.argmax(axis=1) == y).mean())
        chance, threshold = near_chance_threshold(y, self.k)
        if self.cfg.min_teacher_accuracy is not None:
            threshold = float(self.cfg.min_teacher_accuracy)
        if acc < threshold:
            warnings.warn(
                f"train: teacher_model's validation accuracy is {acc:.4f}, near chance "
                f"({chance:.4f}; warning below {threshold:.4f}): is it the right, trained model?",
                NearChanceTeacherWarning,
                stacklevel=4,
            )
        tm.eval()  # predict_logits restores the mode it found: eval

    def _setup_tiers(self) -> None:
        cfg, k = self.cfg, self.k
        y = self.labels["train_set"]
        if cfg.train_counts is not None:
            counts = np.asarray(cfg.train_counts)
            if counts.shape != (k,) or counts.dtype.kind not in "iu":
                raise ShapeError(
                    f"TrainConfig: train_counts must be {k} integers (one per class the model "
                    f"outputs), got shape {counts.shape} dtype {counts.dtype}"
                )
            counts = counts.astype(np.int64)
        else:
            counts = np.bincount(y[y >= 0], minlength=k)
        self.counts = counts
        self.tier_of_class: np.ndarray | None
        if cfg.tier_of_class is not None:
            self.tier_of_class = tier_codes("TrainConfig", cfg.tier_of_class, k)
        elif k >= sum(cfg.tier_sizes):
            sizes = (int(cfg.tier_sizes[0]), int(cfg.tier_sizes[1]))
            self.tier_of_class = tiers_from_counts(counts, sizes)
        else:
            self.tier_of_class = None

    def _check_select_metric(self) -> None:
        names = validation_metric_names(self.has_reference, self.tier_of_class is not None)
        if self.cfg.select_metric not in names:
            raise InvalidArgumentError(
                f"TrainConfig: select_metric {self.cfg.select_metric!r} is not a validation "
                f"metric of this run; choose from {names} (kl, js and teacher_agreement need "
                "val_teachers or teacher_model; tier suffixes need tiers)"
            )

    def _setup_loader(self) -> None:
        cfg = self.cfg
        self.sampler = EpochBatchSampler(
            len(self.train_set), cfg.batch_size, seed=cfg.seed, rank=self.rank, world=self.world
        )
        self.loader_gen = torch.Generator().manual_seed(cfg.seed)
        self.loader = DataLoader(
            IndexedDataset(self.train_set),
            batch_sampler=self.sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=self.loader_gen,
            collate_fn=self.collate,
        )

    def _setup_optimizer(self) -> None:
        cfg = self.cfg
        steps_per_epoch = math.ceil(len(self.sampler) / cfg.grad_accum)
        total = steps_per_epoch * cfg.epochs
        self.optimizer: torch.optim.Optimizer
        if self.optimizer_factory is None:
            self.optimizer = torch.optim.AdamW(
                self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = self.optimizer_factory(self.net)
            if not isinstance(self.optimizer, torch.optim.Optimizer):
                raise InvalidArgumentError(
                    "train: the optimizer factory must return a torch.optim.Optimizer, got "
                    f"{type(self.optimizer).__name__}"
                )
        if self.scheduler_factory is None:
            warmup = int(round(cfg.warmup_frac * total))
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, warmup_linear_decay(total, warmup)
            )
        else:
            self.scheduler = self.scheduler_factory(self.optimizer, total)
            if not all(hasattr(self.scheduler, a) for a in ("step", "state_dict")):
                raise InvalidArgumentError(
                    "train: the scheduler factory must return an LR scheduler (step, state_dict), "
                    f"got {type(self.scheduler).__name__}"
                )

    def _setup_output(self) -> None:
        cfg = self.cfg
        self.resolved = resolved_config(cfg)
        self.resolved["train_counts"] = self.counts.tolist()
        self.resolved["optimizer"] = _factory_name(self.optimizer_factory, "AdamW")
        self.resolved["scheduler"] = _factory_name(self.scheduler_factory, "warmup_linear_decay")
        self.ckpt_dir = os.path.join(cfg.out_dir, "checkpoints") if cfg.out_dir else None
        log_path = os.path.join(cfg.out_dir, "log.jsonl") if cfg.out_dir and self.is_main else None
        self.log = _JsonLog(log_path)
        self.history: list[dict[str, Any]] = []
        self.start_epoch, self.step = 0, 0
        self.best: dict[str, Any] = {"epoch": None, "value": None, "metrics": {}}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.latest = os.path.join(self.ckpt_dir, "latest.pt") if self.ckpt_dir else None

    # ------------------------------------------------------------ restore or start

    def restore_or_start(self) -> None:
        cfg, latest = self.cfg, self.latest
        exists = latest is not None and os.path.exists(latest)
        if exists and not cfg.resume:
            raise InvalidArgumentError(
                f"train: {cfg.out_dir} already holds a run ({latest}); "
                "pass resume=True to continue it or choose another out_dir"
            )
        if exists:
            assert latest is not None
            self._restore(latest)
        else:
            torch.manual_seed(cfg.seed + 1)  # training randomness (dropout), apart from init
            np.random.seed(cfg.seed)  # noqa: NPY002  (user code's global RNG, see rng_state)
            random.seed(cfg.seed)
            self.log.write(
                {
                    "event": "start",
                    "config": self.resolved,
                    "init_sha256": self.init_sha,
                    "teachers": self.teacher_info,
                    "teacher_model": type(self.teacher_model).__name__
                    if self.teacher_model is not None
                    else None,
                    "ids_sha256": self.ids_sha,
                    "world_size": self.world,
                    "device": str(self.device),
                    "n_classes": self.k,
                }
            )
        self.ddp = (
            nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.distributed
            else None
        )
        self.runner: nn.Module = self.ddp if self.ddp is not None else self.net

    def _restore(self, latest: str) -> None:
        ckpt = load_checkpoint(latest)
        old = {k: v for k, v in ckpt["config"].items() if k not in RESUMABLE_KEYS}
        new = {k: v for k, v in self.resolved.items() if k not in RESUMABLE_KEYS}
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            raise InvalidArgumentError(
                f"train: cannot resume {latest}: config differs in {changed}"
            )
        if [t["file_sha256"] for t in ckpt["teachers"]] != [
            t["file_sha256"] for t in self.teacher_info
        ]:
            raise AlignmentError(
                f"train: cannot resume {latest}: the teacher files differ from the checkpoint's"
            )
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.start_epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.history, self.best = list(ckpt["history"]), dict(ckpt["best"])
        self.init_sha = ckpt["init_sha256"]
        self.loader_gen.set_state(ckpt["data_order"]["loader_generator"])
        set_rng_state(ckpt["rng"])
        self.log.write(
            {"event": "resume", "epoch": self.start_epoch, "step": self.step, "from": latest}
        )

    # ------------------------------------------------------------ one epoch

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        self.sampler.set_epoch(epoch)
        self.runner.train()
        order = hashlib.sha256()
        interval, total = RunningMeans(), RunningMeans()
        n_micro = len(self.sampler)
        bar = Progress(cfg.progress and self.is_main, n_micro, f"epoch {epoch + 1}/{cfg.epochs}")
        for i, (positions, batch) in enumerate(self.loader):
            order.update(positions.numpy().tobytes())
            out, n = self._forward_backward(epoch, i, positions, batch)
            values = {"loss": out.loss.detach(), **out.terms}
            interval.add(values, n)
            total.add(values, n)
            if not ((i + 1) % cfg.grad_accum == 0 or i + 1 == n_micro):
                bar.update()
                continue
            grad_norm, lr = self._optimizer_step()
            if self.step % cfg.log_every == 0 or i + 1 == n_micro:
                rec = {
                    "event": "step",
                    "epoch": epoch + 1,
                    "step": self.step,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "samples_per_s": interval.rate(self.world),
                    **interval.means(),
                }
                self.log.write(rec)
                bar.update(loss=f"{rec['loss']:.4f}", lr=f"{lr:.2e}")
                interval = RunningMeans()
            else:
                bar.update()
        bar.close()
        return {
            "epoch": epoch + 1,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "samples_per_s": total.rate(self.world),
            "order_sha256": order.hexdigest(),
            **{f"train_{name}": v for name, v in total.means().items()},
        }

    def _forward_backward(
        self, epoch: int, i: int, positions: torch.Tensor, batch: Any
    ) -> tuple[LossOutput, int]:
        cfg = self.cfg
        x, y = split_batch("train: train_set", batch, positions)
        x, y = to_device(x, self.device), y.to(self.device, non_blocking=True)
        sync = (i + 1) % cfg.grad_accum == 0 or i + 1 == len(self.sampler)
        no_sync = (
            self.ddp.no_sync() if self.ddp is not None and not sync else contextlib.nullcontext()
        )
        with no_sync:
            with autocast(self.device):
                logits = output_logits("train: model", call_model(self.runner, x))
            out = self.loss_fn(logits, self._teacher_logits(positions, x), y, epoch)
            if not torch.isfinite(out.loss.detach()).item():
                terms = {k: float(v) for k, v in out.terms.items()}
                raise FloatingPointError(
                    f"train: non-finite loss {float(out.loss.detach())} at epoch {epoch + 1}, "
                    f"batch {i + 1} (optimizer step {self.step}); terms {terms}. "
                    "Lower lr, set clip_norm, or check inputs"
                )
            (out.loss / cfg.grad_accum).backward()
        return out, int(y.shape[0])

    def _teacher_logits(self, positions: torch.Tensor, x: Any) -> list[torch.Tensor]:
        """Cached rows by example position (never batch counter), then the online teacher."""
        t = [tch.fetch(positions).to(self.device, non_blocking=True) for tch in self.tlist]
        if self.teacher_model is not None:
            with torch.no_grad(), autocast(self.device):
                z = output_logits("train: teacher_model", call_model(self.teacher_model, x))
            t.append(z.float())
        return t

    def _optimizer_step(self) -> tuple[float, float]:
        clip = self.cfg.clip_norm or math.inf
        grad_norm = float(nn.utils.clip_grad_norm_(self.net.parameters(), clip))
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return grad_norm, lr

    # ------------------------------------------------------------ evaluate, save, stop

    def should_evaluate(self, epoch: int) -> bool:
        return (epoch + 1) % self.cfg.eval_every == 0 or epoch + 1 == self.cfg.epochs

    def evaluate(self, epoch: int, record: dict[str, Any]) -> None:
        """Validation metrics into ``record``; updates the best epoch (rank 0 only)."""
        if not self.is_main:
            return
        cfg = self.cfg
        metrics = self._metrics("val_set", self.val_set, self.val_teacher_logits)
        record.update({f"val_{name}": v for name, v in metrics.items()})
        value = metrics[cfg.select_metric]
        best = self.best["value"]
        sign = 1.0 if higher_is_better(cfg.select_metric) else -1.0
        improved = best is None or sign * (value - best) > cfg.early_stopping_min_delta
        if math.isfinite(value) and improved:
            self.best = {"epoch": epoch + 1, "value": value, "metrics": metrics}

    def _metrics(self, name: str, dataset: Any, teacher_logits: Any) -> dict[str, float]:
        z = predict_logits(self.net, dataset, device=self.device, collate_fn=self.collate_fn)
        return validation_metrics(
            self.labels[name], z, self.tier_of_class, teacher_logits, top_k=self.cfg.top_k
        )

    def end_epoch(self, epoch: int, record: dict[str, Any], evaluated: bool) -> bool:
        """History, log, checkpoint, callbacks; True when the run should stop."""
        cfg = self.cfg
        self.history.append(record)
        self.log.write({"event": "epoch", **record})
        if evaluated and self.is_main:
            self.save_checkpoint(epoch)
        summary_line = f"train loss {record.get('train_loss', math.nan):.4f}"
        if f"val_{cfg.select_metric}" in record:
            summary_line += f", val {cfg.select_metric} {record[f'val_{cfg.select_metric}']:.4f}"
        Progress(cfg.progress and self.is_main, 0, f"epoch {epoch + 1}/{cfg.epochs}").line(
            f"{summary_line}, {record['samples_per_s']:.0f} samples/s"
        )
        stop = self._run_callbacks(epoch, record) or self._early_stop()
        stop = self._agree(stop)
        if self.distributed:
            dist.barrier()
        if stop:
            self.stopped_early = True
            return True
        if cfg.stop_after_epoch is not None and cfg.stop_after_epoch <= epoch + 1 < cfg.epochs:
            self.interrupted = True  # as an interruption would: no prediction file
            return True
        return False

    def save_checkpoint(self, epoch: int) -> None:
        if self.ckpt_dir is None:
            if self.best["epoch"] == epoch + 1:
                self.best_state = {n: t.detach().clone() for n, t in self.net.state_dict().items()}
            return
        os.makedirs(self.ckpt_dir, exist_ok=True)
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": epoch + 1,
            "rng": rng_state(),
            "data_order": {
                "seed": self.cfg.seed,
                "next_epoch": epoch + 1,
                "loader_generator": self.loader_gen.get_state(),
            },
            "config": self.resolved,
            "teachers": self.teacher_info,
            "init_sha256": self.init_sha,
            "best": self.best,
            "history": self.history,
        }
        if self.best["epoch"] == epoch + 1:
            atomic_save(ckpt, os.path.join(self.ckpt_dir, "best.pt"))
        atomic_save(ckpt, os.path.join(self.ckpt_dir, "latest.pt"))

    def _run_callbacks(self, epoch: int, record: dict[str, Any]) -> bool:
        event = EpochEnd(
            epoch + 1, record, self.net, self.best["epoch"], self.best["value"], self.is_main
        )
        return any([cb(event) is True for cb in self.callbacks])  # every callback runs

    def _early_stop(self) -> bool:
        patience = self.cfg.early_stopping_patience
        if patience is None or not self.is_main:
            return False
        key = f"val_{self.cfg.select_metric}"
        since = [h for h in self.history if key in h and h["epoch"] > (self.best["epoch"] or 0)]
        return len(since) >= patience

    def _agree(self, stop: bool) -> bool:
        """Rank 0's decision, on every rank."""
        if not self.distributed:
            return stop
        flag = [stop]
        dist.broadcast_object_list(flag, src=0)
        return bool(flag[0])

    # ------------------------------------------------------------ finish

    def finish(self) -> TrainResult:
        """Best weights back into the model; prediction files for val (and test)."""
        cfg = self.cfg
        if not self.interrupted:
            self._load_best()
        paths: dict[str, str | None] = {"val": None, "test": None}
        test_metrics: dict[str, float] = {}
        if not self.interrupted and self.is_main:
            if self.test_set is not None:
                test_metrics = self._metrics("test_set", self.test_set, None)
            if cfg.out_dir:
                paths["val"] = self._write_predictions("val", "val_set", self.val_set)
                if self.test_set is not None:
                    paths["test"] = self._write_predictions("test", "test_set", self.test_set)
            self.log.write(
                {
                    "event": "end",
                    "best_epoch": self.best["epoch"],
                    "best": self.best["metrics"],
                    "test": test_metrics,
                    "predictions": paths["val"],
                    "test_predictions": paths["test"],
                    "stopped_early": self.stopped_early,
                }
            )
        if self.teacher_model is not None:
            self.teacher_model.train(self.teacher_was_training)
        if self.distributed:
            dist.barrier()
        return TrainResult(
            history=self.history,
            best_metrics=dict(self.best["metrics"]),
            best_epoch=self.best["epoch"],
            predictions_path=paths["val"],
            checkpoint_dir=self.ckpt_dir,
            model=self.net,
            log_path=self.log.path,
            init_sha256=self.init_sha,
            config=self.resolved,
            test_predictions_path=paths["test"],
            test_metrics=test_metrics,
            stopped_early=self.stopped_early,
        )

    def _load_best(self) -> None:
        # Every rank reads the same best.pt (rank 0 wrote it before the epoch's barrier).
        best_path = os.path.join(self.ckpt_dir, "best.pt") if self.ckpt_dir else None
        if best_path is not None and os.path.exists(best_path):
            self.net.load_state_dict(load_checkpoint(best_path)["model"])
        elif self.best_state is not None:
            self.net.load_state_dict(self.best_state)

    def _write_predictions(self, split: str, name: str, dataset: Any) -> str:
        cfg = self.cfg
        assert cfg.out_dir is not None
        path = os.path.join(cfg.out_dir, f"{cfg.model_name}_{split}.npz")
        z = predict_logits(self.net, dataset, device=self.device, collate_fn=self.collate_fn)
        # Both: train_counts for the record, tier_of_class so readers use this
        # run's tiers rather than the default tier sizes.
        extra: dict[str, Any] = {"train_counts": self.counts}
        if self.tier_of_class is not None:
            extra["tier_of_class"] = self.tier_of_class
        chosen = self.best["epoch"]
        save_predictions(
            path,
            _prediction_array(z, cfg.pred_dtype, path),
            self.labels[name],
            ids=self.ids[name],
            **extra,
            model=cfg.model_name,
            seed=cfg.seed,
            loss=loss_name(cfg.loss),
            split=split,
            # The weights were chosen on validation: a val file is optimistic.
            selected_on="val" if chosen is not None else "none (last epoch)",
            epoch=int(chosen if chosen is not None else len(self.history)),
            init_sha256=self.init_sha,
            **loss_hyperparameters(cfg),
        )
        return path
