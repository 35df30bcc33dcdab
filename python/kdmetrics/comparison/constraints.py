"""Deployment constraints such as ``macro_f1>=0.20``, ``ece_scaled<=0.05`` or
``latency_ms<=10``: which model meets them, which constraint binds, and which
single relaxation would admit which model.

A constraint is ``NAME OP NUMBER`` with ``OP`` one of ``>=``, ``<=``, ``>``,
``<``; ``NAME`` is a metric (its value on all examples), ``METRIC@TIER`` for a
tier (``head``, ``mid``, ``tail``), ``METRIC_scaled`` for the metric after
temperature scaling (on the evaluation half of the split), or a cost column.
Feasibility is judged on point estimates; the deltas table carries the
uncertainty.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdmetrics.errors import InvalidArgumentError

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_PATTERN = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:@[A-Za-z_]+)?)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Constraint:
    """One parsed constraint ``name op threshold``."""

    name: str
    op: str
    threshold: float

    @property
    def text(self) -> str:
        return f"{self.name}{self.op}{self.threshold:g}"

    @property
    def upper(self) -> bool:
        """True for an upper bound (``<=``, ``<``)."""
        return self.op in ("<=", "<")

    def holds(self, value: float) -> bool:
        return bool(np.isfinite(value)) and _OPS[self.op](value, self.threshold)

    def slack(self, value: float) -> float:
        """How far ``value`` is inside the bound (negative: outside)."""
        return self.threshold - value if self.upper else value - self.threshold


def parse_constraint(text: str | Constraint, valid_names: Sequence[str]) -> Constraint:
    """Parses ``NAME OP NUMBER`` (or checks a :class:`Constraint`); an unknown
    name fails listing ``valid_names``."""
    func = "parse_constraint"
    if isinstance(text, Constraint):
        c = text
    else:
        if not isinstance(text, str):
            raise InvalidArgumentError(
                f"{func}: a constraint must be a string, got {type(text).__name__}"
            )
        m = _PATTERN.match(text)
        if m is None:
            raise InvalidArgumentError(
                f"{func}: cannot read constraint {text!r}; write NAME OP NUMBER with OP one of "
                ">=, <=, >, < (e.g. 'macro_f1>=0.20', 'latency_ms<=10')"
            )
        c = Constraint(m["name"], m["op"], float(m["value"]))
    if c.name not in valid_names:
        raise InvalidArgumentError(
            f"{func}: unknown metric or cost {c.name!r} in constraint {c.text!r}; valid names: "
            f"{', '.join(valid_names)}"
        )
    return c


def constraint_tables(
    values: pd.DataFrame, constraints: Iterable[Constraint]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per model and constraint, per model, relaxations) from ``values``
    (one row per model, one column per constraint name).

    - ``constraints``: ``model, constraint, value, threshold, satisfied, slack``
      (slack > 0 inside the bound, < 0 outside; a NaN value never satisfies).
    - ``feasibility``: ``model, meets_all, n_failed, failed, binding``. For a
      model that fails, ``binding`` lists the constraints it fails; for one that
      meets all, the tightest constraint (smallest slack relative to
      ``max(|threshold|, 1e-12)``), the first to bind if the envelope shrinks.
    - ``relaxations``: for each model failing exactly one constraint, that
      constraint and the threshold that would admit it (``needed_threshold`` =
      the model's value), sorted by constraint (in the order given), then by the relaxation needed.
    """
    cons = list(constraints)
    rows, feas, relax = [], [], []
    for model, vals in values.iterrows():
        failed, slacks = [], []
        for c in cons:
            v = float(vals[c.name])
            ok = c.holds(v)
            s = c.slack(v) if np.isfinite(v) else np.nan
            rows.append((model, c.text, v, c.threshold, ok, s))
            slacks.append(s / max(abs(c.threshold), 1e-12))
            if not ok:
                failed.append(c)
        if failed:
            binding = ", ".join(c.text for c in failed)
        elif cons:
            binding = cons[int(np.nanargmin(slacks))].text if np.isfinite(slacks).any() else ""
        else:
            binding = ""
        feas.append((model, not failed, len(failed), ", ".join(c.text for c in failed), binding))
        if len(failed) == 1 and np.isfinite(float(vals[failed[0].name])):
            c = failed[0]
            v = float(vals[c.name])
            relax.append((cons.index(c), c.text, model, c.threshold, v, abs(v - c.threshold)))
    table = pd.DataFrame(
        rows, columns=["model", "constraint", "value", "threshold", "satisfied", "slack"]
    )
    feasibility = pd.DataFrame(
        feas, columns=["model", "meets_all", "n_failed", "failed", "binding"]
    )
    relaxations = (
        pd.DataFrame(
            relax,
            columns=["order", "constraint", "model", "threshold", "needed_threshold", "relax_by"],
        )
        .sort_values(["order", "relax_by"], kind="stable", ignore_index=True)
        .drop(columns="order")
    )
    return table, feasibility, relaxations
