"""Small student models."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """``in_features → [Linear, ReLU, Dropout] × len(hidden) → Linear(n_classes)``."""

    def __init__(
        self, in_features: int, n_classes: int, hidden: Sequence[int] = (256,), dropout: float = 0.0
    ):
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_classes))
        super().__init__(*layers)
