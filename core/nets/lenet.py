"""LeNet-5 (LeCun et al., 1998) in the form used as an unseen architecture by DC (ICLR 2021)."""

from __future__ import annotations

from torch import Tensor, nn

from ..spec import DataSpec
from ._common import Net, can_pool, conv_out
from ._registry import register


@register("lenet")
class LeNet(Net):
    """conv5x5(6) -> pool -> conv5x5(16) -> pool -> 120 -> 84 -> classes, with ReLUs.

    As in DC's code, 1-channel inputs get padding 2 on the first conv (28 px behaves like
    LeNet's 32 px). Inputs under 16 px get padding 2 on both convs so 8 px images still work.
    """

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        small = spec.size < 16
        pad1 = 2 if spec.channels == 1 or small else 0
        pad2 = 2 if small else 0
        layers: list[nn.Module] = []
        size = spec.size
        for i, (c_in, c_out, pad) in enumerate([(spec.channels, 6, pad1), (6, 16, pad2)]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=5, padding=pad), nn.ReLU()]
            size = conv_out(size, 5, pad)
            if can_pool(size, convs_follow=i == 0):
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
        layers += [
            nn.Flatten(),
            nn.Linear(16 * size * size, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
        ]
        self.body = nn.Sequential(*layers)
        self.feature_dim = 84
        self.classifier = nn.Linear(84, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.body(x)
