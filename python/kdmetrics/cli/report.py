"""``kdmetrics report``: teacher vs vanilla vs distilled, written to a folder."""

from __future__ import annotations

import argparse
import math

from kdmetrics.cli import UsageError, add_study_arguments
from kdmetrics.io.args import add_mapping_arguments, loader_from_args

EPILOG = """\
Files are prediction files (.npz with logits, labels, optional ids,
tier_of_class/train_counts and metadata model/seed/T/alpha), all of the same
validation examples in the same order; the report checks that and prints the
SHA-256 of the ids.

Seeds: repeat --vanilla and --distilled (one file per training seed). The first
of each is the primary model of the per-model tables and the paired bootstrap;
with >= 2 of each, compare_seeds compares the recipes' per-seed macro F1,
accuracy, ECE and NLL.

Grid: --grid FILE... lists further distilled configurations (e.g. a T x alpha
grid; T/alpha read from the files' metadata). Each gets its overall metrics, its
paired interval against the primary vanilla (adjusted across the grid) and a
verdict; the old noise floor rule (|difference| < width of the distilled -
vanilla interval) is kept as the column noise_floor_rule_* for comparison.

Tiers: --train-counts (.npy, .npz or text, K counts), else the files'
tier_of_class/train_counts; without either only the group "all" is reported.

Findings: the summary, report.md and report.json start with the findings in
words: per property (capacity per tier, top-1 calibration, the full
distribution, fidelity to the teacher) the interval of distilled - vanilla,
P(distilled better), the flipped predictions and a verdict: real (the interval
excludes 0), directional (it does, but fewer than 10 predictions changed, or
the exact McNemar test on the accuracy flips is not significant: the verdicts
of kdmetrics compare) or inside the noise (it does not); then the teacher's ceiling, the temperature
test and caveats (small groups, a checkpoint chosen on the analysed split when
the files' metadata selected_on equals split, how many intervals are printed,
saturated teacher targets).

DIR receives summary.txt, report.md, report.json, one CSV per table and PNG
figures. It is written to a temporary folder and renamed at the end: on any
error nothing is left behind. Bad input exits with status 2.

example:
  kdmetrics report --teacher teacher.npz --vanilla v.npz --distilled d.npz --out rep
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("--teacher", required=True, metavar="FILE", help="teacher prediction file")
    p.add_argument(
        "--vanilla",
        required=True,
        action="append",
        metavar="FILE",
        help="vanilla student (hard labels); repeat for several seeds",
    )
    p.add_argument(
        "--distilled",
        required=True,
        action="append",
        metavar="FILE",
        help="distilled student; repeat for several seeds",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="another model to score alongside (repeatable)",
    )
    p.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="FILE",
        help="distilled grid configurations compared against vanilla",
    )
    add_study_arguments(p)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the bootstrap and of the temperature split-half",
    )
    p.add_argument(
        "--teacher-logits",
        metavar="FILE",
        help="the teacher's logits on the training set (the distilled student's soft targets; "
        ".npz with 'logits' or .npy), for the soft-target diagnostics",
    )
    p.add_argument(
        "--distill-T",
        type=float,
        default=None,
        metavar="T",
        help="distillation temperature (None: the metadata T of the distilled file)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing (no summary, no progress)")
    add_mapping_arguments(p)


def _models(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--model wants NAME=FILE, got {spec!r}")
        if name in ("teacher", "vanilla", "distilled") or name in out:
            raise UsageError(f"--model {spec}: the name {name!r} is already taken")
        out[name] = path
    return out


def run(args: argparse.Namespace) -> int:
    from kdmetrics.report.build import build_report, load_inputs
    from kdmetrics.report.render import terminal_summary, write_report

    if args.n_resamples < 1:
        raise UsageError(f"--n-resamples must be >= 1, got {args.n_resamples}")
    if not 0 < args.ci < 1:
        raise UsageError(f"--ci must be in (0, 1), got {args.ci}")
    from kdmetrics.report.render import check_target

    paths = [args.teacher, *args.vanilla, *args.distilled, *args.grid]
    paths += list(_models(args.model).values())
    if args.train_counts:
        paths.append(args.train_counts)
    if args.teacher_logits:
        paths.append(args.teacher_logits)
    if args.distill_T is not None and not (math.isfinite(args.distill_T) and args.distill_T > 0):
        raise UsageError(f"--distill-T must be a finite number > 0, got {args.distill_T}")
    check_target(args.out, args.overwrite, paths)  # before any work
    inputs = load_inputs(
        args.teacher,
        args.vanilla,
        args.distilled,
        models=_models(args.model),
        grid=args.grid,
        train_counts=args.train_counts,
        tier_sizes=tuple(args.tier_sizes),
        teacher_logits=args.teacher_logits,
        distill_T=args.distill_T,
        loader=loader_from_args(args),
        align="id" if args.align_by_id else None,
    )
    report = build_report(inputs, n_resamples=args.n_resamples, seed=args.seed, ci=args.ci)
    files = write_report(report, args.out, overwrite=args.overwrite)
    if not args.quiet:
        print(terminal_summary(report))
        print(f"\nwrote {len(files)} files to {args.out}")
    return 0
