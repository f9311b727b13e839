"""The small AlexNet (Krizhevsky et al., NeurIPS 2012) that DC (ICLR 2021) uses on 32 px data."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ..spec import DataSpec
from ._common import Net, can_pool, conv_out, make_norm
from ._registry import register

# (out_channels, kernel, padding, pool after); padding None = 4 for 1-channel input, else 2.
_CFG: list[tuple[int, int, int | None, bool]] = [
    (128, 5, None, True),
    (192, 5, 2, True),
    (256, 3, 1, False),
    (192, 3, 1, False),
    (192, 3, 1, True),
]


class AlexNet(Net):
    """Five convs (128, 192, 256, 192, 192) with three max pools, then one linear layer.

    Like DC's code, the first conv pads 1-channel inputs by 4 (28 px -> 32 px maps) and
    others by 2, so both end at 4x4. Pools are skipped on small inputs (see ``can_pool``).
    """

    def __init__(self, spec: DataSpec, *, norm: str = "none") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = spec.channels, spec.size
        for i, (c_out, k, pad, pool) in enumerate(_CFG):
            if pad is None:
                pad = 4 if spec.channels == 1 else 2
            size = conv_out(size, k, pad)
            layers += [
                nn.Conv2d(channels, c_out, kernel_size=k, padding=pad),
                make_norm(norm, c_out, size),
                nn.ReLU(),
            ]
            channels = c_out
            if pool and can_pool(size, convs_follow=i < len(_CFG) - 1):
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.feature_dim = channels * size * size
        self.classifier = nn.Linear(self.feature_dim, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)


register("alexnet")(AlexNet)
register("alexnet_bn")(partial(AlexNet, norm="batchnorm"))
