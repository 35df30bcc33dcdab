"""``kdmetrics summary FILE``: the metric table of one prediction file."""

from __future__ import annotations

import argparse

import pandas as pd

from kdmetrics.io.args import add_mapping_arguments, load_files_from_args
from kdmetrics.metrics.summary import summary
from kdmetrics.tiers import tiers_from_counts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file", help="prediction file (.npz with logits and labels, or another layout: see below)"
    )
    p.add_argument("--reference", help="prediction file of a reference model (the teacher)")
    p.add_argument(
        "--temperature", type=float, default=1.0, help="softmax temperature of every model"
    )
    p.add_argument(
        "--tier-sizes",
        type=int,
        nargs=2,
        default=(20, 40),
        metavar=("HEAD", "MID"),
        help="number of head and mid classes when tiers come from the file's train_counts",
    )
    p.add_argument("--csv", help="also write the table to this CSV file at full precision")
    add_mapping_arguments(p)


def run(args: argparse.Namespace) -> int:
    paths = [args.file] + ([args.reference] if args.reference else [])
    files, sha = load_files_from_args(paths, args)
    pred = files[0]
    tiers = pred.tier_of_class
    if tiers is None and pred.train_counts is not None:
        tiers = tiers_from_counts(pred.train_counts, sizes=tuple(args.tier_sizes))
    ref = files[1] if args.reference else None
    table = summary(
        pred.labels,
        pred.logits,
        tier_of_class=tiers,
        reference_logits=None if ref is None else ref.logits,
        temperature=args.temperature,
        probs=pred.probs,
        reference_probs=None if ref is None else ref.probs,
    )
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(table)
    if args.csv:
        table.to_csv(args.csv, float_format="%.17g")
    print(f"ids sha256: {sha}" + ("" if pred.ids is not None else " (no ids: row positions)"))
    return 0
