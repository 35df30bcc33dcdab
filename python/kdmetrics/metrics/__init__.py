"""Metrics of one model on one set of examples: capacity, calibration,
divergence, temperature scaling and selective prediction. ``registry`` holds
one declaration per metric; every list of metric names is derived from it."""
