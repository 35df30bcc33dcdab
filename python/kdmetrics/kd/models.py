"""Small student models."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from torch import nn

from kdmetrics.errors import InvalidArgumentError


class MLP(nn.Sequential):
    """``in_features → [Linear, ReLU, Dropout] × len(hidden) → Linear(n_classes)``."""

    def __init__(
        self, in_features: int, n_classes: int, hidden: Sequence[int] = (256,), dropout: float = 0.0
    ):
        for name, value in (("in_features", in_features), ("n_classes", n_classes)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise InvalidArgumentError(f"MLP: {name} must be an integer >= 1, got {value!r}")
        bad = [h for h in hidden if isinstance(h, bool) or not isinstance(h, Integral) or h < 1]
        if bad:
            raise InvalidArgumentError(
                f"MLP: hidden widths must be integers >= 1, got {tuple(hidden)}"
            )
        if not 0 <= dropout < 1:
            raise InvalidArgumentError(f"MLP: dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_classes))
        super().__init__(*layers)
