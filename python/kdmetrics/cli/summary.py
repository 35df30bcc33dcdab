"""``kdmetrics summary FILE``: the metric table of one prediction file."""

from __future__ import annotations

import argparse

import pandas as pd

from kdmetrics.io.predictions import load_predictions
from kdmetrics.metrics.summary import summary
from kdmetrics.tiers import tiers_from_counts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="prediction file (.npz with logits and labels)")
    p.add_argument("--reference", help="prediction file of a reference model (the teacher)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument(
        "--tier-sizes",
        default="20,40",
        help="head,mid class counts when tiers come from the file's train_counts (default 20,40)",
    )


def parse_tier_sizes(text: str) -> tuple[int, int]:
    try:
        head, mid = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--tier-sizes must be two integers like 20,40, got {text!r}") from None
    return head, mid


def run(args: argparse.Namespace) -> int:
    pred = load_predictions(args.file)
    tiers = pred.tier_of_class
    if tiers is None and pred.train_counts is not None:
        tiers = tiers_from_counts(pred.train_counts, sizes=parse_tier_sizes(args.tier_sizes))
    ref = None
    if args.reference:
        from kdmetrics.io.predictions import check_aligned

        ref_pred = load_predictions(args.reference)
        check_aligned([ref_pred, pred])
        ref = ref_pred.logits
    table = summary(
        pred.labels,
        pred.logits,
        tier_of_class=tiers,
        reference_logits=ref,
        temperature=args.temperature,
    )
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(table)
    return 0
