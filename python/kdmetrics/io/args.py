"""Command-line options that say how to read prediction files, for any subcommand.

A subcommand adopts them with two lines::

    add_mapping_arguments(parser)                    # in add_arguments
    files, sha = load_files_from_args(paths, args)   # in run; aligned, checked

and passes ``probs=files[i].probs`` to the metrics. The options apply to every
prediction file of the command (they share one layout).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from kdmetrics.errors import InvalidArgumentError
from kdmetrics.io.align import align_files
from kdmetrics.io.predictions import Predictions, load_predictions


def add_mapping_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds --logits-key, --labels-key, --ids-key, --probs, --input-format, --align-by-id."""
    g = parser.add_argument_group(
        "input layout",
        "how to read prediction files written by other tools; nothing is guessed",
    )
    g.add_argument(
        "--logits-key",
        help="key, .npy file or column(s) holding the scores (default: logits). For a "
        "table: a list column, comma-separated per-class columns, or a glob like 'prob_*'",
    )
    g.add_argument("--labels-key", help="key, .npy file or column of the labels (default: labels)")
    g.add_argument("--ids-key", help="key, .npy file or column of the example ids (default: ids)")
    g.add_argument(
        "--probs",
        action="store_true",
        help="the scores are probabilities, not logits (validated: rows sum to 1)",
    )
    g.add_argument(
        "--input-format",
        dest="input_format",
        choices=("npz", "npy", "pt", "csv", "parquet"),
        help="layout of the input files (default: from the extension)",
    )
    g.add_argument(
        "--align-by-id",
        action="store_true",
        help="reorder rows of the other files to the first file's id order (files must hold "
        "the same ids); without it a different order is an error",
    )


def mapping_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``load_predictions`` keyword arguments from the parsed options."""
    return {
        "logits_key": getattr(args, "logits_key", None),
        "labels_key": getattr(args, "labels_key", None),
        "ids_key": getattr(args, "ids_key", None),
        "probs": True if getattr(args, "probs", False) else None,
        "fmt": getattr(args, "input_format", None),
    }


def load_from_args(path: str, args: argparse.Namespace) -> Predictions:
    """One prediction file read as the options say."""
    return load_predictions(path, **mapping_kwargs(args))


def load_files_from_args(
    paths: Sequence[str], args: argparse.Namespace, log: TextIO | None = None
) -> tuple[list[Predictions], str]:
    """Reads every file, aligns the others to the first by id when
    ``--align-by-id`` (reporting the rows moved on ``log``, stderr by default),
    and checks alignment; returns the files and the SHA-256 of their ids."""
    files = [load_from_args(p, args) for p in paths]
    align = "id" if getattr(args, "align_by_id", False) else None
    files, moved, sha = align_files(files, align)
    out = sys.stderr if log is None else log
    for f, m in zip(files[1:], moved[1:], strict=True):
        if align:
            print(
                f"aligned by id: {m} of {f.n_examples} rows of {f.path} reordered to the order "
                f"of {files[0].path}",
                file=out,
            )
    return files, sha


def as_log_probabilities(pred: Predictions) -> Predictions:
    """A probabilities file made usable where logits are read: ``log p`` is a
    logit vector of ``p`` (``softmax(log p) = p``), so every metric, the
    temperature fit included, is unchanged. A zero probability has no finite
    logit and is refused (``kdmetrics summary --probs`` reads such files)."""
    if not pred.probs:
        return pred
    p = np.asarray(pred.logits)
    if (p <= 0).any():
        r, c = (int(v) for v in np.argwhere(p <= 0)[0])
        raise InvalidArgumentError(
            f"{pred.path}: probability 0 at row {r}, column {c} has no finite logit; "
            "report and compare read probabilities as log-probabilities, which needs p > 0 "
            "(kdmetrics summary --probs handles zeros)"
        )
    with np.errstate(divide="raise"):
        logits = np.log(p, dtype=np.float64)
    return dataclasses.replace(pred, logits=logits, probs=False)


def loader_from_args(args: argparse.Namespace):
    """A ``path -> Predictions`` loader for commands that read logits (report,
    compare): the mapping options, probabilities turned into log-probabilities."""

    def load(path: str) -> Predictions:
        return as_log_probabilities(load_from_args(path, args))

    return load
