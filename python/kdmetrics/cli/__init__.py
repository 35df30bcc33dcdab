"""The ``kdmetrics`` command line.

Each subcommand lives in its own module and registers itself in
``SUBCOMMANDS``: a module path whose ``add_arguments(parser)`` declares its
options and ``run(args) -> int`` does the work. Modules are imported only when
their subcommand runs, so ``kdmetrics --help`` stays fast and torch-free.
Errors a user can fix (a :class:`~kdmetrics.errors.KdMetricsError`, which
includes :class:`UsageError`, or an ``OSError`` such as a missing file) print
one line and exit 2; anything else is a bug: the traceback, exit 1. Every
subcommand's ``--help`` shows the defaults, which equal the Python API's.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kdmetrics.errors import KdMetricsError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "summary": ("kdmetrics.cli.summary", "metrics of one prediction file, overall and per tier"),
    "report": ("kdmetrics.cli.report", "teacher vs vanilla vs distilled: tables, figures"),
    "train": ("kdmetrics.cli.train", "train a student MLP on feature vectors (needs torch)"),
    "demo": ("kdmetrics.cli.demo", "synthetic task: train teacher and students, report"),
    "convert": ("kdmetrics.cli.convert", "another tool's prediction file -> canonical .npz"),
    "compare": ("kdmetrics.cli.compare", "variants (int8, int4, pruned, ...) against a reference"),
}


class UsageError(KdMetricsError):
    """A problem with the user's input: reported on one line, exit status 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help; epilogs kept as written."""


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``report`` and ``compare`` share, spelled and defaulted once:
    tiers, the output folder and the bootstrap's size and level (the seed is
    each command's own, with its own help text)."""
    p.add_argument("--train-counts", metavar="FILE", help="K training counts defining the tiers")
    p.add_argument(
        "--tier-sizes",
        type=int,
        nargs=2,
        default=(20, 40),
        metavar=("HEAD", "MID"),
        help="number of head and mid classes when tiers come from counts",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it is not empty")
    p.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--ci", type=float, default=0.95, help="interval level")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdmetrics", description="What did the distillation actually transfer?"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=HelpFormatter
        )
        p.set_defaults(_module=module)
        _module(module).add_arguments(p)
    return parser


def _module(path: str):
    return importlib.import_module(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_module(args._module).run(args) or 0)
    except (KdMetricsError, OSError) as e:
        # Bad input (arguments, files): one line. Anything else propagates
        # with its traceback (exit 1): it is a bug to report, not to hide.
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"kdmetrics {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
