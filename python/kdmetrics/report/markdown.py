"""Number formatting and tables for the report's text and Markdown.

Numbers are shown to significant digits, not to a fixed number of decimals,
so a real but small difference (``+0.000012``) is not printed as
``+0.0000``. An interval and its estimate share one precision, chosen from
the interval's width (two significant digits of the width).

Markdown tables are GitHub-flavoured pipe tables; :func:`markdown_block`
surrounds every table and paragraph with blank lines, which Python-Markdown
and MkDocs need (a table glued to the line above it is not a table there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

SIGNIFICANT = 4


def _is_float(value: Any) -> bool:
    return isinstance(value, (float, np.floating))


def fmt_value(value: Any, significant: int = SIGNIFICANT) -> str:
    """A cell: ints as they are, floats to ``significant`` digits
    (positional: ``0.00001234``, ``0.9123``, ``6430``), NaN as ``nan``."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if _is_float(value):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0.0:
            return "0"
        if abs(v) >= 10**significant:
            return f"{v:.0f}"
        text = np.format_float_positional(
            v, precision=significant, unique=False, fractional=False, trim="-"
        )
        return text.rstrip(".")
    return str(value)


def decimals_for(width: float, low: int = 2, high: int = 12) -> int:
    """Decimals that show two significant digits of ``width`` (an interval's)."""
    if not math.isfinite(width) or width <= 0:
        return 4
    return int(min(high, max(low, 1 - math.floor(math.log10(width)))))


def fmt_signed(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "nan"
    text = f"{value:+.{decimals}f}"
    return "+" + text[1:] if float(text) == 0.0 else text  # no "-0.00"


def fmt_ci(delta: float, low: float, high: float) -> str:
    """``+0.031 [+0.004, +0.060]``: one precision for all three numbers."""
    d = decimals_for(abs(high - low))
    # An estimate far smaller than the interval still gets a visible digit.
    if delta != 0 and math.isfinite(delta) and abs(delta) < 10 ** (-d):
        d = decimals_for(abs(delta) * 10)
    return f"{fmt_signed(delta, d)} [{fmt_signed(low, d)}, {fmt_signed(high, d)}]"


def fmt_point(value: float, reference_width: float | None = None) -> str:
    """A point value, with as many decimals as an interval of width
    ``reference_width`` would get (else significant digits)."""
    if reference_width is None or not math.isfinite(value):
        return fmt_value(float(value))
    return f"{value:.{decimals_for(reference_width)}f}"


def _cells(df: pd.DataFrame, columns: Sequence[str]) -> list[list[str]]:
    return [[fmt_value(v) for v in row] for row in df[list(columns)].itertuples(index=False)]


def text_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A fixed-width plain-text table."""
    cols = list(columns or df.columns)
    cells = _cells(df, cols)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    body = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, *body])


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A pipe table (header, separator, one line per row); numbers right-aligned."""
    cols = list(columns or df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in cols]
    head = "| " + " | ".join(_escape(str(c)) for c in cols) + " |"
    sep = "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"
    rows = ["| " + " | ".join(_escape(v) for v in r) + " |" for r in _cells(df, cols)]
    return "\n".join([head, sep, *rows])


def markdown_block(*parts: str) -> str:
    """Paragraphs, lists and tables separated by blank lines."""
    return "\n\n".join(p.strip("\n") for p in parts if p and p.strip())


def bullet_list(items: Sequence[str]) -> str:
    return "\n".join("- " + i.replace("\n", " ") for i in items)
