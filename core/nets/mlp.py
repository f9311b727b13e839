"""MLP baseline of the DC paper (Zhao et al., ICLR 2021): two hidden ReLU layers of 128."""

from __future__ import annotations

from torch import Tensor, nn

from ..spec import DataSpec
from ._common import Net
from ._registry import register


@register("mlp")
class MLP(Net):
    """Flatten -> ``width`` -> ``width`` -> classes."""

    def __init__(self, spec: DataSpec, *, width: int = 128) -> None:
        super().__init__()
        c, h, w = spec.shape
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
        )
        self.feature_dim = width
        self.classifier = nn.Linear(width, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.body(x)
