"""The ``kdmetrics`` command line.

Each subcommand lives in its own module and registers itself in
``SUBCOMMANDS``: a module path whose ``add_arguments(parser)`` declares its
options and ``run(args) -> int`` does the work. Modules are imported only when
their subcommand runs, so ``kdmetrics --help`` stays fast and torch-free.
Errors a user can fix (bad files, bad arguments) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "summary": ("kdmetrics.cli.summary", "metrics of one prediction file, overall and per tier"),
    "report": ("kdmetrics.cli.report", "teacher vs vanilla vs distilled: tables, figures"),
    "train": ("kdmetrics.cli.train", "train a student MLP on feature vectors (needs torch)"),
    "demo": ("kdmetrics.cli.demo", "synthetic task: train teacher and students, report"),
    "convert": ("kdmetrics.cli.convert", "another tool's prediction file -> canonical .npz"),
}


class UsageError(Exception):
    """A problem with the user's input: reported on one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdmetrics", description="What did the distillation actually transfer?"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
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
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"kdmetrics {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
