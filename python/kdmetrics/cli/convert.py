"""``kdmetrics convert IN OUT``: another tool's prediction file -> the canonical ``.npz``.

The input layout is mapped explicitly with the options of
:func:`kdmetrics.io.add_mapping_arguments` (``--logits-key``, ``--labels-key``,
``--ids-key``, ``--probs``, ``--input-format``). Probabilities are written under
``probs`` (never as ``logits``). Prints the SHA-256 of the ids written.
"""

from __future__ import annotations

import argparse
import os

from kdmetrics.errors import InvalidArgumentError
from kdmetrics.io.args import add_mapping_arguments, load_from_args
from kdmetrics.io.predictions import ids_sha256, save_predictions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input", help="prediction file in any supported layout (npz, npy, pt, csv, parquet)"
    )
    p.add_argument("output", help="canonical prediction file to write (.npz)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    add_mapping_arguments(p)


def run(args: argparse.Namespace) -> int:
    if not args.output.endswith(".npz"):
        raise InvalidArgumentError(f"OUT must end with .npz, got {args.output!r}")
    if os.path.exists(args.output):
        if os.path.exists(args.input) and os.path.samefile(args.input, args.output):
            raise InvalidArgumentError(f"OUT {args.output!r} is the input file")
        if not args.overwrite:
            raise InvalidArgumentError(f"{args.output} exists; pass --overwrite to replace it")
    if getattr(args, "align_by_id", False):
        raise InvalidArgumentError("--align-by-id needs two files; convert reads one")
    pred = load_from_args(args.input, args)
    meta = {k: v for k, v in pred.metadata.items()}
    save_predictions(
        args.output,
        pred.logits,
        pred.labels,
        ids=pred.ids,
        class_names=pred.class_names,
        tier_of_class=pred.tier_of_class,
        train_counts=pred.train_counts,
        probs=pred.probs,
        **meta,
    )
    what = "probabilities (stored as probs)" if pred.probs else "logits"
    sha = ids_sha256(pred.ids if pred.ids is not None else range(pred.n_examples))
    print(f"wrote {args.output}: {pred.n_examples} examples x {pred.n_classes} classes, {what}")
    print(f"ids sha256: {sha}" + ("" if pred.ids is not None else " (no ids: row positions)"))
    return 0
