"""Compressed or alternative variants against a reference model: paired deltas
with flips, churn and verdicts, calibration before and after temperature
scaling, Pareto fronts over costs and deployment constraints.

This package is callable: ``kdmetrics.compare(labels, reference, variants,
...)`` calls :func:`kdmetrics.compare.engine.compare`, and its submodules
(``engine``, ``costs``, ``constraints``, ``pareto``, ``render``) import as
usual.

"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from kdmetrics.compare.engine import Comparison
from kdmetrics.compare.engine import compare as compare

__all__ = ["Comparison", "compare"]


class _CallableModule(types.ModuleType):
    """The package module, callable as :func:`kdmetrics.compare.engine.compare`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Comparison:
        return compare(*args, **kwargs)


__doc__ = (__doc__ or "") + (compare.__doc__ or "")
__signature__ = inspect.signature(compare)
sys.modules[__name__].__class__ = _CallableModule
