"""The training loop (SPEC §7): one function for the vanilla and distilled arms.

:func:`train` takes any ``nn.Module`` mapping a batch of inputs to logits (or a
zero-argument factory building one, which is then called under
``torch.manual_seed(config.seed)``), a training and a validation data set
yielding ``(x, y, index)``, a :class:`TrainConfig` and, for the distilled
arms, teacher logits aligned with the training set.

Reproducibility: model init (factory under ``seed``), batch order
(:class:`~kdmetrics.kd.data.EpochBatchSampler`, seeded by ``seed + epoch``) and
the training RNG (dropout: ``seed + 1``) depend only on ``seed``, never on the
loss, so the arms differ only in the loss. Checkpoints (``latest.pt`` every
evaluated epoch and ``best.pt``, both written to a temporary file then
``os.replace``-d) hold model, optimizer, scheduler, step, epoch, every RNG
state, the resolved config and the teachers' hashes; ``resume=True`` continues
from ``latest.pt`` and on CPU reproduces an uninterrupted run's weights
exactly. Under ``torchrun`` (``torch.distributed`` initialised) the model is
wrapped in DDP, each rank takes its share of every global batch, and rank 0
alone evaluates, logs and writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from kdmetrics.io.predictions import save_predictions
from kdmetrics.kd.data import EpochBatchSampler, dataset_ids, dataset_labels
from kdmetrics.kd.losses import (
    STRATEGIES,
    LossOutput,
    ce_loss,
    dkd_loss,
    dkd_warmup_factor,
    hard_kd_loss,
    kd_loss,
    multi_teacher_kd_loss,
)
from kdmetrics.kd.store import TeacherLogits, check_teachers
from kdmetrics.metrics.summary import summary
from kdmetrics.tiers import TIER_NAMES, tiers_from_counts

LOSSES = ("vanilla", "kd", "hard", "dkd", "multi")
# Metrics where lower is better, for choosing the best checkpoint.
LOWER_IS_BETTER = ("nll", "ece", "kl_teacher")
CHECKPOINT_FORMAT = "kdmetrics.kd checkpoint 1"
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_KEYS = ("resume", "stop_after_epoch", "progress", "num_workers", "device", "out_dir")


@dataclass
class TrainConfig:
    """Everything that defines a run; stored resolved in checkpoints and logs.

    ``loss``: ``vanilla`` (cross-entropy), ``kd`` (Hinton; ``T``, ``alpha``),
    ``hard`` (CE against the teacher's argmax, weight ``alpha``), ``dkd``
    (``T``, ``dkd_alpha``, ``dkd_beta``, ``dkd_warmup_epochs``) or ``multi``
    (several teachers; ``multi_strategy``, ``teacher_weights``, ``multi_base``).
    ``batch_size`` is the global batch (split across DDP ranks); the LR warms
    up linearly over ``warmup_frac`` of the optimizer steps, then decays
    linearly to 0. ``train_counts`` (K) gives the tiers (default: counted from
    the training labels; tiers are reported when K ≥ sum(``tier_sizes``)).
    ``select_metric``: validation metric choosing ``best.pt`` (lower is better
    for nll, ece, kl_teacher). ``stop_after_epoch`` ends the run early as an
    interruption would (no prediction file), for resuming later.
    """

    loss: str = "vanilla"
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
    log_every: int = 10
    pred_dtype: str = "float32"
    min_teacher_accuracy: float | None = None
    resume: bool = False
    stop_after_epoch: int | None = None


@dataclass
class TrainResult:
    history: list[dict[str, Any]]
    best_metrics: dict[str, Any]
    best_epoch: int | None
    predictions_path: str | None
    checkpoint_dir: str | None
    model: nn.Module
    log_path: str | None = None
    init_sha256: str = ""
    config: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- helpers


def _check_config(cfg: TrainConfig) -> None:
    def bad(name: str, want: str) -> ValueError:
        return ValueError(f"TrainConfig: {name} must be {want}, got {getattr(cfg, name)!r}")

    if cfg.loss not in LOSSES:
        raise bad("loss", f"one of {LOSSES}")
    for name in ("epochs", "batch_size", "grad_accum", "eval_every", "log_every"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(name, "an integer >= 1")
    if not (isinstance(cfg.T, (int, float)) and math.isfinite(cfg.T) and cfg.T > 0):
        raise bad("T", "a finite number > 0")
    if not 0 <= cfg.alpha <= 1:
        raise bad("alpha", "in [0, 1]")
    if not 0 <= cfg.warmup_frac <= 1:
        raise bad("warmup_frac", "in [0, 1]")
    if cfg.lr <= 0 or cfg.weight_decay < 0:
        raise ValueError(
            f"TrainConfig: lr must be > 0 and weight_decay >= 0, got {cfg.lr}, {cfg.weight_decay}"
        )
    if cfg.clip_norm is not None and not cfg.clip_norm > 0:
        raise bad("clip_norm", "None or > 0")
    if cfg.multi_strategy not in STRATEGIES:
        raise bad("multi_strategy", f"one of {STRATEGIES}")
    if cfg.pred_dtype not in ("float16", "float32"):
        raise bad("pred_dtype", "'float16' or 'float32'")
    if cfg.resume and not cfg.out_dir:
        raise ValueError("TrainConfig: resume=True needs out_dir (where latest.pt lives)")


def _resolved(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain Python values (checkpoints load with weights_only=True)."""
    out = {}
    for k, v in dataclasses.asdict(cfg).items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, (list,)):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        out[k] = v
    return out


def _resolve_device(spec: str, distributed: bool) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(spec)
    if dev.type == "cuda" and distributed and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def _to_device(x: Any, device: torch.device) -> Any:
    # Model inputs may be a tensor or a (nested) dict/tuple of tensors (e.g. a tokenizer's output).
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: _to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_device(v, device) for v in x)
    return x


def _autocast(device: torch.device):
    # bf16 on CUDA; fp32 on CPU (bf16 matmuls on CPU are slow and change results).
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
    model: nn.Module, dataset, batch_size: int = 1024, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Logits of ``model`` on ``dataset`` in dataset order, float32 (N, K)."""
    dev = torch.device(device)
    was_training = model.training
    model.eval()
    # Own generator: iterating a DataLoader would otherwise draw from the global RNG.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    out, seen = [], 0
    try:
        with torch.no_grad():
            for batch in loader:
                x = batch[0]
                if len(batch) > 2:
                    idx = batch[2]
                    if not torch.equal(idx, torch.arange(seen, seen + idx.shape[0])):
                        raise ValueError(
                            "predict_logits: the data set did not yield its examples in order"
                        )
                with _autocast(dev):
                    z = model(_to_device(x, dev))
                out.append(z.float().cpu().numpy())
                seen += z.shape[0]
    finally:
        model.train(was_training)
    return np.concatenate(out, axis=0)


def validation_metrics(
    labels: np.ndarray, logits: np.ndarray, tier_of_class, teacher_logits=None
) -> dict[str, float]:
    """kdmetrics' own metrics: accuracy, macro F1 (overall and per tier), ECE,
    NLL and, with the teacher's validation logits, top-1 agreement and KL(teacher ‖ model)."""
    table = summary(labels, logits, tier_of_class=tier_of_class, reference_logits=teacher_logits)
    row = table.loc["all"]
    m = {k: float(row[k]) for k in ("accuracy", "macro_f1", "ece", "nll")}
    if tier_of_class is not None:
        for tier in TIER_NAMES:
            m[f"macro_f1_{tier}"] = float(table.loc[tier, "macro_f1"])
    if teacher_logits is not None:
        t = np.asarray(teacher_logits)
        m["agreement"] = float((logits.argmax(axis=1) == t.argmax(axis=1)).mean())
        m["kl_teacher"] = float(row["kl"])
    return m


def _rng_state() -> dict[str, Any]:
    # The legacy global NumPy RNG is what user code (augmentations) draws from:
    # checkpointed so a resumed run continues it.
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> dict[str, Any]:
    """Reads a checkpoint written by :func:`train` (``weights_only=True``: no pickled code)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a kdmetrics.kd checkpoint")
    return ckpt


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


def _open_teachers(teachers) -> list[TeacherLogits]:
    return [t if isinstance(t, TeacherLogits) else TeacherLogits.open(t) for t in teachers or []]


# ---------------------------------------------------------------- train


def train(
    model: nn.Module | Callable[[], nn.Module],
    train_set,
    val_set,
    config: TrainConfig | None = None,
    teachers: Sequence[TeacherLogits | str | os.PathLike[str]] | None = None,
    *,
    val_teachers: Sequence[TeacherLogits | str | os.PathLike[str]] | None = None,
) -> TrainResult:
    """Trains ``model`` on ``train_set`` and evaluates on ``val_set``; see the module docstring.

    ``teachers``: teacher logits aligned with ``train_set``'s ids (one for
    kd/hard/dkd, one or more for multi); all are alignment-checked first.
    ``val_teachers`` (optional, aligned with ``val_set``): the first one gives
    the validation agreement and KL with the teacher. Returns the history, the
    best validation metrics, the written validation prediction file and the
    model with the best weights loaded.
    """
    cfg = config or TrainConfig()
    _check_config(cfg)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    is_main = rank == 0
    device = _resolve_device(cfg.device, distributed)

    # Model init depends on the seed only (a factory is called under it).
    torch.manual_seed(cfg.seed)
    net = model() if not isinstance(model, nn.Module) else model
    init_sha = state_sha256(net)
    net.to(device)

    train_labels = dataset_labels(train_set)
    train_ids = dataset_ids(train_set)
    val_labels = dataset_labels(val_set)
    val_ids = dataset_ids(val_set)
    with torch.no_grad():  # one example tells the class count, for any model
        was = net.training
        net.eval()
        x0 = torch.utils.data.default_collate([train_set[0][0]])  # a batch of one
        with _autocast(device):
            k = int(net(_to_device(x0, device)).shape[1])
        net.train(was)

    tlist = _open_teachers(teachers)
    if cfg.loss in ("kd", "hard", "dkd") and len(tlist) != 1:
        raise ValueError(
            f"train: loss={cfg.loss!r} needs exactly one teacher, got {len(tlist)} "
            "(use loss='multi')"
        )
    if cfg.loss == "multi" and not tlist:
        raise ValueError("train: loss='multi' needs at least one teacher")
    if cfg.loss == "dkd" or (cfg.loss == "multi" and cfg.multi_base == "dkd"):
        if k < 3:
            raise ValueError(f"train: DKD needs K >= 3 classes, the model outputs {k}")
    ids_sha = (
        check_teachers(
            tlist,
            train_ids,
            labels=train_labels,
            n_classes=k,
            min_accuracy=cfg.min_teacher_accuracy,
        )
        if tlist
        else None
    )
    vlist = _open_teachers(val_teachers)
    if vlist:
        check_teachers(
            vlist, val_ids, labels=val_labels, n_classes=k, min_accuracy=cfg.min_teacher_accuracy
        )
    val_teacher_logits = np.asarray(vlist[0].logits, dtype=np.float32) if vlist else None
    teacher_info = [
        {"path": t.path, "file_sha256": t.file_sha256(), "ids_sha256": t.ids_sha256} for t in tlist
    ]

    counts = (
        np.asarray(cfg.train_counts, dtype=np.int64)
        if cfg.train_counts is not None
        else np.bincount(train_labels, minlength=k)
    )
    if counts.shape != (k,):
        raise ValueError(f"TrainConfig: train_counts must have {k} entries, got {counts.shape}")
    if cfg.tier_of_class is not None:
        tier_of_class = np.asarray(cfg.tier_of_class)
    elif k >= sum(cfg.tier_sizes):
        tier_of_class = tiers_from_counts(counts, (int(cfg.tier_sizes[0]), int(cfg.tier_sizes[1])))
    else:
        tier_of_class = None
    resolved = _resolved(cfg)
    resolved["train_counts"] = counts.tolist()

    sampler = EpochBatchSampler(
        len(train_set), cfg.batch_size, seed=cfg.seed, rank=rank, world=world
    )
    loader_gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        generator=loader_gen,
    )
    micro_per_epoch = len(sampler)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = int(round(cfg.warmup_frac * total_steps))

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    ckpt_dir = os.path.join(cfg.out_dir, "checkpoints") if cfg.out_dir else None
    log = _JsonLog(os.path.join(cfg.out_dir, "log.jsonl") if cfg.out_dir and is_main else None)
    history: list[dict[str, Any]] = []
    start_epoch, step = 0, 0
    best: dict[str, Any] = {"epoch": None, "value": None, "metrics": {}}
    best_state: dict[str, torch.Tensor] | None = None
    latest = os.path.join(ckpt_dir, "latest.pt") if ckpt_dir else None

    if not cfg.resume and latest and os.path.exists(latest):
        raise ValueError(
            f"train: {cfg.out_dir} already holds a run ({latest}); "
            "pass resume=True to continue it or choose another out_dir"
        )
    if cfg.resume and latest and os.path.exists(latest):
        ckpt = load_checkpoint(latest)
        old = {k2: v for k2, v in ckpt["config"].items() if k2 not in RESUMABLE_KEYS}
        new = {k2: v for k2, v in resolved.items() if k2 not in RESUMABLE_KEYS}
        changed = sorted(k2 for k2 in set(old) | set(new) if old.get(k2) != new.get(k2))
        if changed:
            raise ValueError(f"train: cannot resume {latest}: config differs in {changed}")
        if [t["file_sha256"] for t in ckpt["teachers"]] != [t["file_sha256"] for t in teacher_info]:
            raise ValueError(
                f"train: cannot resume {latest}: the teacher files differ from the checkpoint's"
            )
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
        history, best, init_sha = list(ckpt["history"]), dict(ckpt["best"]), ckpt["init_sha256"]
        loader_gen.set_state(ckpt["data_order"]["loader_generator"])
        _set_rng_state(ckpt["rng"])
        log.write({"event": "resume", "epoch": start_epoch, "step": step, "from": latest})
    else:
        torch.manual_seed(cfg.seed + 1)  # training randomness (dropout), apart from init
        np.random.seed(cfg.seed)  # noqa: NPY002  (user code's global RNG, see _rng_state)
        random.seed(cfg.seed)
        log.write(
            {
                "event": "start",
                "config": resolved,
                "init_sha256": init_sha,
                "teachers": teacher_info,
                "ids_sha256": ids_sha,
                "world_size": world,
                "device": str(device),
                "n_classes": k,
            }
        )

    ddp = (
        nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
        if distributed
        else None
    )
    runner: nn.Module = ddp if ddp is not None else net

    def compute_loss(
        logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, epoch: int
    ) -> LossOutput:
        if cfg.loss == "vanilla":
            return ce_loss(logits, y)
        t = [tch.fetch(idx).to(device, non_blocking=True) for tch in tlist]
        warm = dkd_warmup_factor(epoch + 1, cfg.dkd_warmup_epochs)
        if cfg.loss == "kd":
            return kd_loss(logits, t[0], y, T=cfg.T, alpha=cfg.alpha)
        if cfg.loss == "hard":
            return hard_kd_loss(logits, t[0], y, alpha=cfg.alpha)
        if cfg.loss == "dkd":
            return dkd_loss(
                logits, t[0], y, T=cfg.T, alpha=cfg.dkd_alpha, beta=cfg.dkd_beta, warmup=warm
            )
        return multi_teacher_kd_loss(
            logits,
            t,
            y,
            T=cfg.T,
            alpha=cfg.alpha,
            weights=cfg.teacher_weights,
            strategy=cfg.multi_strategy,
            base=cfg.multi_base,
            dkd_alpha=cfg.dkd_alpha,
            dkd_beta=cfg.dkd_beta,
            warmup=warm,
        )

    from tqdm import tqdm  # the plain bar: tqdm.auto warns in notebooks without ipywidgets

    lower = cfg.select_metric in LOWER_IS_BETTER
    stopped = False
    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        runner.train()
        order = hashlib.sha256()
        interval: dict[str, Any] = {"sums": {}, "n": 0, "samples": 0, "t0": time.perf_counter()}
        epoch_sums: dict[str, torch.Tensor] = {}
        epoch_n, epoch_samples, epoch_t0 = 0, 0, time.perf_counter()
        bar = tqdm(
            total=micro_per_epoch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not (cfg.progress and is_main),
        )
        for i, (x, y, idx) in enumerate(loader):
            order.update(idx.to(torch.int64).numpy().tobytes())
            y = y.to(device, non_blocking=True)
            sync = (i + 1) % cfg.grad_accum == 0 or i + 1 == micro_per_epoch
            no_sync = ddp.no_sync() if ddp is not None and not sync else contextlib.nullcontext()
            with no_sync:
                with _autocast(device):
                    logits = runner(_to_device(x, device))
                out = compute_loss(logits, y, idx, epoch)
                if not torch.isfinite(out.loss.detach()).item():
                    terms = {k2: float(v) for k2, v in out.terms.items()}
                    raise FloatingPointError(
                        f"train: non-finite loss {float(out.loss.detach())} at epoch {epoch + 1}, "
                        f"batch {i + 1} (optimizer step {step}); terms {terms}. "
                        "Lower lr, set clip_norm, or check inputs"
                    )
                (out.loss / cfg.grad_accum).backward()
            for name, v in {"loss": out.loss.detach(), **out.terms}.items():
                interval["sums"][name] = interval["sums"].get(name, 0.0) + v
                epoch_sums[name] = epoch_sums.get(name, 0.0) + v
            interval["n"] += 1
            epoch_n += 1
            interval["samples"] += int(y.shape[0])
            epoch_samples += int(y.shape[0])
            bar.update(1)
            if not sync:
                continue
            grad_norm = nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_norm or math.inf)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % cfg.log_every == 0 or i + 1 == micro_per_epoch:
                dt = time.perf_counter() - interval["t0"]
                rec = {
                    "event": "step",
                    "epoch": epoch + 1,
                    "step": step,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "samples_per_s": interval["samples"] * world / max(dt, 1e-9),
                    **{name: float(v) / interval["n"] for name, v in interval["sums"].items()},
                }
                log.write(rec)
                bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{lr:.2e}")
                interval = {"sums": {}, "n": 0, "samples": 0, "t0": time.perf_counter()}
        bar.close()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            "samples_per_s": epoch_samples * world / max(time.perf_counter() - epoch_t0, 1e-9),
            "order_sha256": order.hexdigest(),
            **{f"train_{name}": float(v) / epoch_n for name, v in epoch_sums.items()},
        }
        evaluate = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        if evaluate and is_main:
            z = predict_logits(net, val_set, device=device)
            metrics = validation_metrics(val_labels, z, tier_of_class, val_teacher_logits)
            if cfg.select_metric not in metrics:
                raise ValueError(
                    f"train: select_metric {cfg.select_metric!r} not among {sorted(metrics)}"
                )
            record.update({f"val_{name}": v for name, v in metrics.items()})
            value = metrics[cfg.select_metric]
            improved = best["value"] is None or (
                value < best["value"] if lower else value > best["value"]
            )
            if improved and math.isfinite(value):
                best = {"epoch": epoch + 1, "value": value, "metrics": metrics}
        history.append(record)
        log.write({"event": "epoch", **record})
        if evaluate and is_main and ckpt_dir is not None:
            os.makedirs(ckpt_dir, exist_ok=True)
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "epoch": epoch + 1,
                "rng": _rng_state(),
                "data_order": {
                    "seed": cfg.seed,
                    "next_epoch": epoch + 1,
                    "loader_generator": loader_gen.get_state(),
                },
                "config": resolved,
                "teachers": teacher_info,
                "init_sha256": init_sha,
                "best": best,
                "history": history,
            }
            if best["epoch"] == epoch + 1:
                _atomic_save(ckpt, os.path.join(ckpt_dir, "best.pt"))
            _atomic_save(ckpt, os.path.join(ckpt_dir, "latest.pt"))
        elif evaluate and is_main and best["epoch"] == epoch + 1:
            best_state = {n: t.detach().clone() for n, t in net.state_dict().items()}
        if distributed:
            dist.barrier()
        if (
            cfg.stop_after_epoch is not None
            and epoch + 1 >= cfg.stop_after_epoch
            and epoch + 1 < cfg.epochs
        ):
            stopped = True
            break

    # Best weights back into the model; every rank reads the same best.pt (rank 0
    # wrote it before the end-of-epoch barrier).
    best_path = os.path.join(ckpt_dir, "best.pt") if ckpt_dir else None
    if not stopped:
        if best_path is not None and os.path.exists(best_path):
            net.load_state_dict(load_checkpoint(best_path)["model"])
        elif best_state is not None:
            net.load_state_dict(best_state)
    pred_path = None
    if not stopped and is_main and cfg.out_dir:
        z = predict_logits(net, val_set, device=device)
        pred_path = os.path.join(cfg.out_dir, f"{cfg.model_name}_val.npz")
        is_vanilla = cfg.loss == "vanilla"
        # Both: train_counts for the record, tier_of_class so readers use this
        # run's tier sizes rather than the default (20, 40).
        extra: dict[str, Any] = {"train_counts": counts}
        if tier_of_class is not None:
            extra["tier_of_class"] = tier_of_class
        save_predictions(
            pred_path,
            z.astype(cfg.pred_dtype),
            val_labels,
            ids=val_ids,
            **extra,
            model=cfg.model_name,
            seed=cfg.seed,
            loss=cfg.loss,
            T=float(cfg.T),
            alpha=0.0 if is_vanilla else float(cfg.alpha),
            epoch=int(best["epoch"] if best["epoch"] is not None else len(history)),
            init_sha256=init_sha,
        )
        log.write(
            {
                "event": "end",
                "best_epoch": best["epoch"],
                "best": best["metrics"],
                "predictions": pred_path,
            }
        )
    if distributed:
        dist.barrier()
    return TrainResult(
        history=history,
        best_metrics=dict(best["metrics"]),
        best_epoch=best["epoch"],
        predictions_path=pred_path,
        checkpoint_dir=ckpt_dir,
        model=net,
        log_path=log.path,
        init_sha256=init_sha,
        config=resolved,
    )
