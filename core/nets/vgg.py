"""VGG-11 (Simonyan & Zisserman, ICLR 2015) as used for cross-architecture tests in DC/DSA."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ..spec import DataSpec
from ._common import Net, can_pool, make_norm
from ._registry import register

VGG11: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG(Net):
    """conv3x3 -> norm -> ReLU stacks with max pools ("M"), then one linear layer.

    Designed for 32 px (five pools to 1x1); on smaller inputs a pool is skipped when it
    would leave nothing, or 1x1 maps for later convs (see ``can_pool``).
    """

    def __init__(
        self, spec: DataSpec, *, cfg: list[int | str] | None = None, norm: str = "instancenorm"
    ) -> None:
        super().__init__()
        cfg = VGG11 if cfg is None else cfg
        layers: list[nn.Module] = []
        channels, size = spec.channels, spec.size
        for i, v in enumerate(cfg):
            if v == "M":
                convs_follow = any(u != "M" for u in cfg[i + 1 :])
                if can_pool(size, convs_follow):
                    layers.append(nn.MaxPool2d(2, 2))
                    size //= 2
                continue
            assert isinstance(v, int)
            layers += [
                nn.Conv2d(channels, v, kernel_size=3, padding=1),
                make_norm(norm, v, size),
                nn.ReLU(),
            ]
            channels = v
        self.features = nn.Sequential(*layers)
        self.feature_dim = channels * size * size
        self.classifier = nn.Linear(self.feature_dim, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)


register("vgg11")(VGG)
register("vgg11_bn")(partial(VGG, norm="batchnorm"))
