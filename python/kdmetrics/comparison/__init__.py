"""Compressed or alternative variants against a reference model: paired deltas
with flips, churn and verdicts, calibration before and after temperature
scaling, Pareto fronts over costs and deployment constraints.

The entry point is :func:`kdmetrics.compare` (``engine.compare``); the parts
live in ``engine``, ``costs``, ``constraints``, ``pareto`` and ``render``.
"""

from kdmetrics.comparison.engine import Comparison, compare

__all__ = ["Comparison", "compare"]
