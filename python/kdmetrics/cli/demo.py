"""``kdmetrics demo``: a synthetic long-tail task, a teacher, a vanilla and a
distilled student trained on CPU, and the report on them."""

from __future__ import annotations

import argparse

from kdmetrics.cli import UsageError

EPILOG = """\
With no arguments: 113 classes in tiers of 20/40/53, a validation set of about
6,430 examples (head ~5,155 / mid ~1,065 / tail ~210), a teacher MLP that sees
a cleaner view of each example, and two student MLPs that share initial
weights, data order and hyperparameters (only the loss differs: cross-entropy
vs KD). Everything is seeded. It ends with the report's findings in words; the
full report (report.md, figures, CSVs) is written under OUT/report. All options
are checked before anything is created. The size options exist for quick
tests; the report is whatever comes out.
"""


def _default(field: str):
    """The DemoConfig default of ``field`` (the CLI shows and uses the API's)."""
    from kdmetrics.demo import DemoConfig

    return DemoConfig.__dataclass_fields__[field].default


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder; when not given, ./kdmetrics-demo-YYYYmmdd-HHMMSS",
    )
    p.add_argument(
        "--seed", type=int, default=_default("seed"), help="seed of data, training and report"
    )
    p.add_argument("--n-train", type=int, default=_default("n_train"), help="training examples")
    p.add_argument("--n-val", type=int, default=_default("n_val"), help="validation examples")
    p.add_argument("--n-features", type=int, default=_default("n_features"), help="input dimension")
    p.add_argument("--epochs", type=int, default=_default("epochs"), help="student epochs")
    p.add_argument(
        "--teacher-epochs", type=int, default=_default("teacher_epochs"), help="teacher epochs"
    )
    p.add_argument(
        "--teacher-hidden",
        type=int,
        nargs="+",
        default=_default("teacher_hidden"),
        metavar="H",
        help="teacher hidden layer widths",
    )
    p.add_argument(
        "--student-hidden",
        type=int,
        nargs="+",
        default=_default("student_hidden"),
        metavar="H",
        help="student hidden layer widths",
    )
    p.add_argument("--T", type=float, default=_default("T"), help="distillation temperature")
    p.add_argument("--alpha", type=float, default=_default("alpha"), help="weight of the KD term")
    p.add_argument("--lr", type=float, default=_default("lr"), help="learning rate")
    p.add_argument(
        "--n-resamples", type=int, default=_default("n_resamples"), help="bootstrap resamples"
    )
    p.add_argument(
        "--threads", type=int, default=_default("threads"), help="PyTorch threads while training"
    )
    p.add_argument(
        "--no-compress",
        dest="compress",
        action="store_false",
        default=_default("compress"),
        help="skip quantizing/pruning the students and the compare step",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no training progress (a bar on a terminal, plain lines otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    from kdmetrics.demo import DemoConfig, check_out, run_demo

    overrides = {
        k: v
        for k, v in vars(args).items()
        if k in DemoConfig.__dataclass_fields__ and v is not None
    }
    for k in ("teacher_hidden", "student_hidden"):
        if k in overrides:
            overrides[k] = tuple(overrides[k])
    config = DemoConfig(**overrides)
    try:
        config.validate()
        check_out(args.out)
    except ValueError as e:
        raise UsageError(str(e)) from None
    run_demo(config, out=args.out, progress=not args.quiet)
    return 0
