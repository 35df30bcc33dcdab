"""``kdmetrics summary FILE``: the metric table of one prediction file."""

from __future__ import annotations

import argparse

import pandas as pd

from kdmetrics.predictions import load_predictions
from kdmetrics.summary import summary
from kdmetrics.tiers import tiers_from_counts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="prediction file (.npz with logits and labels)")
    p.add_argument("--reference", help="prediction file of a reference model (the teacher)")
    p.add_argument("--temperature", type=float, default=1.0)


def run(args: argparse.Namespace) -> int:
    pred = load_predictions(args.file)
    tiers = pred.tier_of_class
    if tiers is None and pred.train_counts is not None:
        tiers = tiers_from_counts(pred.train_counts)
    ref = None
    if args.reference:
        from kdmetrics.predictions import check_aligned

        ref_pred = load_predictions(args.reference)
        check_aligned([ref_pred, pred])
        ref = ref_pred.logits
    table = summary(
        pred.labels, pred.logits, tier_of_class=tiers, reference_logits=ref,
        temperature=args.temperature,
    )
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(table)
    return 0
