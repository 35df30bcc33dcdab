"""Deployment costs of the compared models: from a table or from metadata.

A cost table has one row per model (column ``variant`` or ``model``) and any
of the numeric cost columns :data:`COST_COLUMNS` (all lower-is-better), plus
the optional text columns ``precision`` and ``note``. It can be a CSV or JSON
file, a DataFrame, or a mapping ``name -> {column: value}``. Prediction files
carry the same keys in their metadata (``latency_ms``, ``size_mb``,
``peak_mem_mb``, ``params``, ``precision``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdmetrics.errors import InvalidArgumentError

# name -> what it measures; every cost is lower-is-better.
COST_COLUMNS: dict[str, str] = {
    "latency_ms": "latency per example, milliseconds",
    "size_mb": "serialized size, megabytes (1e6 bytes)",
    "peak_mem_mb": "peak memory of a forward pass, megabytes",
    "params": "number of parameters",
}
TEXT_COLUMNS: tuple[str, ...] = ("precision", "note")
NAME_COLUMNS: tuple[str, ...] = ("variant", "model")


def _read_file(func: str, path: str) -> pd.DataFrame:
    if not os.path.exists(path):
        raise InvalidArgumentError(f"{func}: {path}: no such file")
    try:
        if path.lower().endswith(".json"):
            with open(path) as f:
                data = json.load(f)
            if isinstance(data, dict):
                # {"name": {...}, ...} or {"costs": [...]} or column-oriented
                if "costs" in data and isinstance(data["costs"], list):
                    return pd.DataFrame(data["costs"])
                if all(isinstance(v, dict) for v in data.values()):
                    return _from_mapping(data)
            return pd.DataFrame(data)
        return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise InvalidArgumentError(f"{func}: {path}: cannot read the cost table ({e})") from None


def _from_mapping(data: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for name, values in data.items():
        if not isinstance(values, Mapping):
            raise InvalidArgumentError(
                f"load_costs: costs[{name!r}] must be a mapping of cost columns, got "
                f"{type(values).__name__}"
            )
        rows.append({"variant": name, **values})
    return pd.DataFrame(rows)


def load_costs(source: Any, models: Sequence[str]) -> pd.DataFrame:
    """The cost table of ``models``, indexed by model name, in ``models`` order.

    ``source``: a path (``.csv``, or ``.json`` holding records, ``{"costs":
    [records]}`` or ``{name: {column: value}}``), a DataFrame or a mapping
    ``name -> {column: value}``. Columns: ``variant`` (or ``model``), any of
    :data:`COST_COLUMNS`, optionally ``precision`` and ``note``. Unknown
    columns are an error listing the valid ones; a model of ``models`` missing
    from the table is an error naming it; rows of other models are ignored.
    Cost values must be finite and >= 0; an empty cell is NaN (unknown), and
    that model is left out of the Pareto front of that cost.
    """
    func = "load_costs"
    if isinstance(source, (str, os.PathLike)):
        table = _read_file(func, os.fspath(source))
        where = os.fspath(source)
    elif isinstance(source, pd.DataFrame):
        table = source.copy()
        where = "costs"
        if not any(c in table.columns for c in NAME_COLUMNS) and table.index.name is not None:
            table = table.reset_index()
        elif not any(c in table.columns for c in NAME_COLUMNS):
            table = table.rename_axis("variant").reset_index()
    elif isinstance(source, Mapping):
        table = _from_mapping(source)
        where = "costs"
    else:
        raise InvalidArgumentError(
            f"{func}: costs must be a file path, a DataFrame or a mapping name -> costs, got "
            f"{type(source).__name__}"
        )
    name_col = next((c for c in NAME_COLUMNS if c in table.columns), None)
    if name_col is None:
        raise InvalidArgumentError(
            f"{func}: {where}: needs a 'variant' (or 'model') column naming each model; "
            f"found {list(table.columns)}"
        )
    valid = [*NAME_COLUMNS, *COST_COLUMNS, *TEXT_COLUMNS]
    unknown = [c for c in table.columns if c not in valid]
    if unknown:
        raise InvalidArgumentError(
            f"{func}: {where}: unknown column(s) {unknown}; valid columns: {', '.join(valid)}"
        )
    table = table.rename(columns={name_col: "variant"})
    table["variant"] = table["variant"].astype(str)
    dup = table["variant"][table["variant"].duplicated()].tolist()
    if dup:
        raise InvalidArgumentError(f"{func}: {where}: model {dup[0]!r} appears more than once")
    missing = [m for m in models if m not in set(table["variant"])]
    if missing:
        raise InvalidArgumentError(
            f"{func}: {where}: no costs for {', '.join(repr(m) for m in missing)} "
            f"(the table lists {', '.join(table['variant'])})"
        )
    costs = [c for c in COST_COLUMNS if c in table.columns]
    if not costs:
        raise InvalidArgumentError(
            f"{func}: {where}: no cost column; give at least one of {', '.join(COST_COLUMNS)}"
        )
    out = table.set_index("variant").loc[list(models)]
    for c in costs:
        try:
            values = pd.to_numeric(out[c], errors="raise").astype(np.float64)
        except (ValueError, TypeError):
            raise InvalidArgumentError(f"{func}: {where}: column {c!r} must be numeric") from None
        bad = values[(values < 0) | np.isinf(values)]
        if len(bad):
            raise InvalidArgumentError(
                f"{func}: {where}: {c} of {bad.index[0]!r} is {bad.iloc[0]}; costs must be "
                "finite and >= 0"
            )
        out[c] = values
    for c in TEXT_COLUMNS:
        if c in out.columns:
            out[c] = out[c].where(out[c].notna(), None)
    out.index.name = "variant"
    return out[[*costs, *[c for c in TEXT_COLUMNS if c in out.columns]]]


def costs_from_metadata(metadata: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame | None:
    """A cost table from prediction-file metadata (``name -> metadata``), or None
    when no model carries a cost key. A model without any cost key while others
    have them is an error naming it."""
    func = "costs_from_metadata"
    rows: dict[str, dict[str, Any]] = {}
    for name, meta in metadata.items():
        row: dict[str, Any] = {}
        for key in (*COST_COLUMNS, *TEXT_COLUMNS):
            value = meta.get(key)
            if value is None or isinstance(value, np.ndarray) and value.ndim > 0:
                continue
            if isinstance(value, np.generic):
                value = value.item()
            if key in COST_COLUMNS and isinstance(value, float) and math.isnan(value):
                continue
            row[key] = value
        if any(k in COST_COLUMNS for k in row):
            rows[name] = row
    if not rows:
        return None
    missing = [n for n in metadata if n not in rows]
    if missing:
        raise InvalidArgumentError(
            f"{func}: the prediction metadata of {', '.join(repr(m) for m in missing)} has no "
            f"cost ({', '.join(COST_COLUMNS)}) while {', '.join(repr(r) for r in rows)} do; "
            "give a cost table instead"
        )
    return load_costs(rows, list(metadata))
