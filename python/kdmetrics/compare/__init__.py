"""Compressed or alternative variants against a reference model: paired deltas
with flips, churn and verdicts, calibration before and after temperature
scaling, Pareto fronts over costs and deployment constraints.

``kdmetrics.compare`` (the function) is :func:`kdmetrics.compare.engine.compare`;
import the parts from their modules (``from kdmetrics.compare.engine import
Comparison``).
"""
