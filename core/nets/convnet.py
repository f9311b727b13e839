"""ConvNet: the default network of dataset condensation.

Blocks of conv3x3 -> norm -> ReLU -> 2x2 pool (Gidaris & Komodakis, CVPR 2018), as used by
DC (Zhao et al., ICLR 2021), DSA (Zhao & Bilen, ICML 2021) and DM (Zhao & Bilen, WACV 2023).
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ..spec import DataSpec
from ._common import Net, can_pool, make_norm
from ._registry import register

POOLINGS = ("avgpool", "maxpool", "none")


def _pool(kind: str) -> nn.Module:
    if kind == "avgpool":
        return nn.AvgPool2d(2, 2)
    if kind == "maxpool":
        return nn.MaxPool2d(2, 2)
    raise ValueError(f"unknown pooling '{kind}'; choose one of: {', '.join(POOLINGS)}")


class ConvNet(Net):
    """``depth`` conv blocks of ``width`` channels, then one linear layer.

    With depth 3 the maps shrink 32 -> 4, 28 -> 3 and 8 -> 1 pixels. A pool that would
    leave nothing, or 1x1 maps for a later block, is skipped (see ``can_pool``).
    """

    def __init__(
        self,
        spec: DataSpec,
        *,
        width: int = 128,
        depth: int = 3,
        norm: str = "instancenorm",
        pooling: str = "avgpool",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{pooling}'; choose one of: {', '.join(POOLINGS)}")
        layers: list[nn.Module] = []
        channels, size = spec.channels, spec.size
        for d in range(depth):
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1),
                make_norm(norm, width, size),
                nn.ReLU(),
            ]
            channels = width
            if pooling != "none" and can_pool(size, convs_follow=d < depth - 1):
                layers.append(_pool(pooling))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.feature_dim = width * size * size
        self.classifier = nn.Linear(self.feature_dim, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)

    def layer_features(self, x: Tensor) -> list[Tensor]:
        """Each block's activation (after its ReLU, before its pool), then the embedding:
        ``depth + 1`` tensors, the layers CAFE's reference code aligns."""
        out = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                out.append(x)
        return [*out, x.flatten(1)]


register("convnet")(ConvNet)
register("convnet_bn")(partial(ConvNet, norm="batchnorm"))
register("convnet_nonorm")(partial(ConvNet, norm="none"))
