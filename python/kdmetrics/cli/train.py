"""``kdmetrics train``: train a student MLP on feature vectors, vanilla or distilled.

Data sets are ``.npz`` files with ``features`` (N x D), ``labels`` (N) and
``ids`` (N); teachers are teacher-logit files aligned with the training set
(SPEC §5). Writes ``log.jsonl``, ``checkpoints/{best,latest}.pt`` and the
validation prediction file ``<model-name>_val.npz`` under ``--out``.
This module imports torch only inside :func:`run`, so ``kdmetrics --help``
works without it.
"""

from __future__ import annotations

import argparse
import os
import sys

LOSSES = ("vanilla", "kd", "hard", "dkd", "multi")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="training set .npz (features, labels, ids)")
    p.add_argument("--val", required=True, help="validation set .npz (features, labels, ids)")
    p.add_argument(
        "--teacher",
        action="append",
        default=[],
        help="teacher logits on the training set (.npz or .npy); repeat for several",
    )
    p.add_argument(
        "--val-teacher",
        action="append",
        default=[],
        help="teacher logits on the validation set (agreement and KL with the teacher)",
    )
    p.add_argument("--loss", choices=LOSSES, default="kd")
    p.add_argument("--T", type=float, default=4.0, help="temperature")
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the distillation term")
    p.add_argument("--dkd-alpha", type=float, default=1.0, help="DKD weight of TCKD")
    p.add_argument("--dkd-beta", type=float, default=8.0, help="DKD weight of NCKD")
    p.add_argument("--dkd-warmup-epochs", type=int, default=0)
    p.add_argument("--multi-strategy", choices=("split", "fused", "logit-average"), default="split")
    p.add_argument("--teacher-weights", type=_floats, help="comma-separated, one per teacher")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-frac", type=float, default=0.05)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--clip-norm", type=float)
    p.add_argument("--hidden", type=_ints, default=(256,), help="hidden widths, e.g. 512,256")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--tier-sizes", type=_ints, default=(20, 40), help="head,mid class counts")
    p.add_argument(
        "--n-classes",
        type=int,
        help="class count (default: the teacher's, else the largest label + 1)",
    )
    p.add_argument("--model-name", default="student")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.pt")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        print("kdmetrics train: needs PyTorch: pip install 'kdmetrics[torch]'", file=sys.stderr)
        return 2
    # Under torchrun, join the process group (gloo on CPU, nccl on CUDA).

    joined = False
    if (
        "RANK" in os.environ
        and "WORLD_SIZE" in os.environ
        and not torch.distributed.is_initialized()
    ):
        backend = "nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo"
        torch.distributed.init_process_group(backend)
        joined = True
    try:
        return _train(args)
    finally:
        if joined:
            torch.distributed.destroy_process_group()


def _train(args: argparse.Namespace) -> int:
    from kdmetrics.kd import MLP, FeatureDataset, TrainConfig, train

    if len(args.tier_sizes) != 2:
        raise ValueError(f"--tier-sizes needs two integers, got {args.tier_sizes}")
    train_set = FeatureDataset.from_npz(args.train)
    val_set = FeatureDataset.from_npz(args.val)
    n_classes = int(max(train_set.labels.max(), val_set.labels.max())) + 1
    if args.n_classes is not None:
        n_classes = args.n_classes
    elif args.teacher:
        from kdmetrics.kd import TeacherLogits

        n_classes = TeacherLogits.open(args.teacher[0]).n_classes
    config = TrainConfig(
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_frac=args.warmup_frac,
        T=args.T,
        alpha=args.alpha,
        dkd_alpha=args.dkd_alpha,
        dkd_beta=args.dkd_beta,
        dkd_warmup_epochs=args.dkd_warmup_epochs,
        grad_accum=args.grad_accum,
        clip_norm=args.clip_norm,
        seed=args.seed,
        eval_every=args.eval_every,
        device=args.device,
        num_workers=args.num_workers,
        progress=not args.no_progress,
        out_dir=args.out,
        model_name=args.model_name,
        tier_sizes=tuple(args.tier_sizes),
        teacher_weights=args.teacher_weights,
        multi_strategy=args.multi_strategy,
        resume=args.resume,
    )
    hidden, dropout, d = tuple(args.hidden), args.dropout, train_set.n_features
    result = train(
        lambda: MLP(d, n_classes, hidden, dropout),
        train_set,
        val_set,
        config,
        teachers=args.teacher or None,
        val_teachers=args.val_teacher or None,
    )
    if result.predictions_path is not None:
        m = result.best_metrics
        shown = "  ".join(f"{k} {v:.4f}" for k, v in m.items())
        print(f"best epoch {result.best_epoch}: {shown}")
        print(f"predictions: {result.predictions_path}")
        last = result.history[-1]
        print(f"throughput: {last['samples_per_s']:.0f} samples/s (last epoch)")
    return 0
