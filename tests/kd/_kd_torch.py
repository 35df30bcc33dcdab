"""torch for the kdmetrics.kd tests: skipped locally when missing, required on CI."""

import os

import pytest

if os.environ.get("CI") == "true":
    import torch  # CI installs the torch extra: a missing torch must fail, not skip
else:
    torch = pytest.importorskip("torch")

__all__ = ["torch"]
