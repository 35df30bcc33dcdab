"""``kdmetrics compare``: variants (quantized, pruned, distilled, ...) against a
reference, written to a folder."""

from __future__ import annotations

import argparse
import os

from kdmetrics.cli import UsageError, add_study_arguments
from kdmetrics.io.align import align_files
from kdmetrics.io.args import add_mapping_arguments, loader_from_args

EPILOG = """\
Files are prediction files (.npz with logits, labels, optional ids,
tier_of_class/train_counts and metadata) of the same validation examples in
the same order; compare checks that (ids, labels, N, K), names the file and the
first differing position, and prints the SHA-256 of the ids.

Every variant is compared with the reference on one shared set of resample
draws: per-metric deltas with intervals, flips, churn and a verdict (real /
directional / inside the noise); calibration raw and after temperature scaling
(each model's T fitted on a seeded half, everything measured on the other
half); with costs, the Pareto front of each quality metric against each cost;
with constraints, which model meets them, which constraint binds and which
single relaxation would admit which model.

Costs: --costs FILE (CSV or JSON; columns variant, latency_ms, size_mb,
peak_mem_mb, params, precision, note), else the cost keys of the files'
metadata, if any.

Constraints: NAME OP NUMBER with OP in >=, <=, >, <; NAME is a metric (on all
examples), METRIC@TIER (head, mid, tail), METRIC_scaled (after temperature
scaling) or a cost. Examples: 'macro_f1>=0.20' 'ece_scaled<=0.05'
'latency_ms<=10'.

Tiers: --train-counts (.npy, .npz or text, K counts) or the files'
tier_of_class/train_counts, with --tier-sizes HEAD MID (20 40).

DIR receives summary.txt, report.md, report.json, one CSV per table and PNG
figures, written to a temporary folder and renamed at the end. Bad input exits
with status 2.

example:
  kdmetrics compare --reference fp32=fp32.npz --variant int8=int8.npz \\
      --variant int4=int4.npz --costs costs.csv --constraint 'macro_f1>=0.2' --out cmp
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("--reference", required=True, metavar="NAME=FILE", help="the baseline model")
    p.add_argument(
        "--variant",
        required=True,
        action="append",
        metavar="NAME=FILE",
        help="a model compared with the reference (repeatable)",
    )
    p.add_argument("--teacher", metavar="FILE", help="teacher predictions: adds KL/JS metrics")
    p.add_argument("--costs", metavar="FILE", help="cost table (CSV or JSON)")
    p.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="EXPR",
        help="deployment constraint such as 'macro_f1>=0.20' (repeatable)",
    )
    add_study_arguments(p)
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the resamples and the temperature split"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing (no summary, no progress)")
    add_mapping_arguments(p)


def _named(flag: str, spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise UsageError(f"{flag} wants NAME=FILE, got {spec!r}")
    return name, path


def run(args: argparse.Namespace) -> int:
    from kdmetrics.comparison.engine import compare
    from kdmetrics.comparison.render import terminal_summary, write_comparison
    from kdmetrics.io.output import check_output_folder
    from kdmetrics.io.predictions import check_aligned
    from kdmetrics.report.build import resolve_tiers

    if args.n_resamples < 1:
        raise UsageError(f"--n-resamples must be >= 1, got {args.n_resamples}")
    if not 0 < args.ci < 1:
        raise UsageError(f"--ci must be in (0, 1), got {args.ci}")
    ref_name, ref_path = _named("--reference", args.reference)
    variants = [_named("--variant", v) for v in args.variant]
    names = [ref_name, *(n for n, _ in variants)]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise UsageError(f"the name {dup!r} is used twice")
    inputs = [ref_path, *(p for _, p in variants)]
    inputs += [p for p in (args.teacher, args.costs, args.train_counts) if p]
    check_output_folder("compare", args.out, overwrite=args.overwrite, inputs=inputs)
    for path in [ref_path, *(p for _, p in variants)]:
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
    paths = {ref_name: ref_path, **dict(variants)}
    load = loader_from_args(args)
    names_in_order = list(paths)
    loaded = [load(path) for path in paths.values()]
    loaded += [load(args.teacher)] if args.teacher else []
    if args.align_by_id:  # every file to the reference's id order
        loaded, _, _ = align_files(loaded, "id")
    files = dict(zip(names_in_order, loaded[: len(names_in_order)], strict=True))
    teacher = loaded[-1] if args.teacher else None
    everything = [*files.values(), *([teacher] if teacher is not None else [])]
    sha = check_aligned(everything)
    k = files[ref_name].n_classes
    tiers, source = resolve_tiers(everything, args.train_counts, k, tuple(args.tier_sizes))
    result = compare(
        files[ref_name].labels,
        (ref_name, files[ref_name]),
        {n: files[n] for n, _ in variants},
        tier_of_class=tiers,
        costs=args.costs,
        constraints=args.constraint,
        teacher=teacher,
        n_resamples=args.n_resamples,
        seed=args.seed,
        ci=args.ci,
    )
    result.scalars["ids_sha256"] = sha
    result.scalars["tier_source"] = source
    result.scalars["files"] = paths
    written = write_comparison(result, args.out, overwrite=args.overwrite)
    if not args.quiet:
        print(terminal_summary(result))
        print(f"\nwrote {len(written)} files to {args.out}")
    return 0
