"""``kdmetrics train``: train a student MLP on feature vectors, vanilla or distilled.

Data sets are ``.npz`` files with ``features`` (N x D), ``labels`` (N) and
optional ``ids`` (N); teachers are teacher-logit files aligned with the
training set's ids. Writes ``log.jsonl``, ``checkpoints/{best,latest}.pt`` and
the prediction files ``<model-name>_val.npz`` (and ``<model-name>_test.npz``
with ``--test``) under ``--out``; the checkpoint is always chosen on the
validation set. Choices and defaults come from ``kdmetrics.kd.config``, the
same as the Python API's. This module imports torch only inside :func:`run`,
so ``kdmetrics --help`` works without it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kdmetrics.errors import InvalidArgumentError, ShapeError
from kdmetrics.kd.config import LOSSES, STRATEGIES, config_default, metric_base


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def _widths(text: str) -> tuple[int, ...]:
    values = _ints(text)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"hidden widths must be integers >= 1, got {text!r}")
    return values


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", ",").split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    def opt(flag: str, field: str, help_text: str = "", **kw: Any) -> None:
        value = config_default(field)  # the API's default, shown in --help
        # the formatter appends "(default: ...)"; help must be non-empty for it
        p.add_argument(flag, default=value, help=help_text or field.replace("_", " "), **kw)

    p.add_argument("--train", required=True, help="training set .npz (features, labels, ids)")
    p.add_argument("--val", required=True, help="validation set .npz; chooses the checkpoint")
    p.add_argument(
        "--test",
        help="held-out test set .npz: predictions with the chosen weights (never chooses)",
    )
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
    opt("--loss", "loss", "training loss", choices=LOSSES)
    opt("--T", "T", "temperature (kd, dkd, multi)", type=float)
    opt("--alpha", "alpha", "weight of the distillation term (kd, hard, multi)", type=float)
    opt("--dkd-alpha", "dkd_alpha", "DKD weight of TCKD", type=float)
    opt("--dkd-beta", "dkd_beta", "DKD weight of NCKD", type=float)
    opt("--dkd-warmup-epochs", "dkd_warmup_epochs", type=int)
    opt("--multi-strategy", "multi_strategy", choices=STRATEGIES)
    p.add_argument("--teacher-weights", type=_floats, help="comma-separated, one per teacher")
    opt("--epochs", "epochs", type=int)
    opt("--batch-size", "batch_size", type=int)
    opt("--lr", "lr", type=float)
    opt("--weight-decay", "weight_decay", type=float)
    opt("--warmup-frac", "warmup_frac", type=float)
    opt("--grad-accum", "grad_accum", type=int)
    p.add_argument("--clip-norm", type=float, help="gradient-norm clip (None: no clipping)")
    p.add_argument("--hidden", type=_widths, default=(256,), help="hidden widths, e.g. 512,256")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout of the MLP's hidden layers")
    opt("--seed", "seed", type=int)
    opt("--eval-every", "eval_every", type=int)
    opt("--select-metric", "select_metric", "validation metric choosing the checkpoint")
    opt(
        "--early-stopping-patience",
        "early_stopping_patience",
        "stop after this many evaluations without improvement",
        type=int,
    )
    opt("--device", "device")
    opt("--num-workers", "num_workers", type=int)
    opt(
        "--tier-sizes",
        "tier_sizes",
        "number of head and mid classes",
        type=int,
        nargs=2,
        metavar=("HEAD", "MID"),
    )
    opt("--pred-dtype", "pred_dtype", choices=("float16", "float32"))
    p.add_argument(
        "--n-classes",
        type=int,
        help="class count (None: the teacher's, else the largest label + 1)",
    )
    opt("--model-name", "model_name")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.pt")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    # the former spelling, kept working but not advertised
    p.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)


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


def _class_count(args: argparse.Namespace, labels_max: int) -> int:
    if args.n_classes is not None:
        if args.n_classes < 2:
            raise InvalidArgumentError(f"--n-classes must be >= 2, got {args.n_classes}")
        return int(args.n_classes)
    if args.teacher:
        from kdmetrics.kd import TeacherLogits

        k = TeacherLogits.open(args.teacher[0]).n_classes
        if labels_max >= k:
            raise ShapeError(
                f"--teacher {args.teacher[0]} has {k} classes but the labels go up to "
                f"{labels_max}: the teacher does not cover every class"
            )
        return k
    return labels_max + 1


def _train(args: argparse.Namespace) -> int:
    from kdmetrics.kd import MLP, FeatureDataset, TrainConfig, train

    train_set = FeatureDataset.from_npz(args.train)
    val_set = FeatureDataset.from_npz(args.val)
    test_set = FeatureDataset.from_npz(args.test) if args.test else None
    sets = [s for s in (train_set, val_set, test_set) if s is not None]
    n_classes = _class_count(args, max(int(s.labels.max()) for s in sets))
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
        progress=not args.quiet,
        out_dir=args.out,
        model_name=args.model_name,
        tier_sizes=tuple(args.tier_sizes),
        teacher_weights=args.teacher_weights,
        multi_strategy=args.multi_strategy,
        select_metric=args.select_metric,
        early_stopping_patience=args.early_stopping_patience,
        pred_dtype=args.pred_dtype,
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
        test_set=test_set,
    )
    if result.predictions_path is not None:
        overall = {k: v for k, v in result.best_metrics.items() if metric_base(k) == k}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in overall.items())
        print(f"best epoch {result.best_epoch} (chosen on --val): {shown}")
        print(f"predictions: {result.predictions_path}")
        if result.test_predictions_path is not None:
            t = result.test_metrics
            print(f"test (held out): accuracy {t['accuracy']:.4f}  macro_f1 {t['macro_f1']:.4f}")
            print(f"test predictions: {result.test_predictions_path}")
        last = result.history[-1]
        print(f"throughput: {last['samples_per_s']:.0f} samples/s (last epoch)")
    return 0
