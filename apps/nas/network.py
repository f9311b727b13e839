"""The NAS-Bench-201 macro network that every cell is trained in.

Stem (3x3 conv + BN) -> N cells at width C -> residual reduction block (stride 2, width
2C) -> N cells -> residual reduction (4C) -> N cells -> BN, ReLU, global average pool,
linear (Dong & Yang, ICLR 2020, figure 1; the benchmark uses C=16, N=5). The reduction
block is a ResNet basic block whose shortcut is a 2x2 average pool and a 1x1 conv. Any
1- or 3-channel input of 8 px or more works: 32 -> 16 -> 8, 28 -> 14 -> 7, 8 -> 4 -> 2.

Registered with `datadistill.nets` as ``nas201``: ``nets.build("nas201", spec, arch=..., width=8,
cells=1)``, so `distill eval --arch nas201` trains the ResNet-like cell by default.
"""

from __future__ import annotations

from torch import Tensor, nn

from datadistill.errors import DistillError
from datadistill.nets import Net, register
from datadistill.spec import DataSpec
from datadistill_apps.nas.cell import Cell, ReLUConvBN
from datadistill_apps.nas.space import RESNET_CELL, Arch


class ResidualReduction(nn.Module):
    """Halve the maps and double the channels, with a pooled 1x1-conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        # ceil_mode keeps odd maps (7 px) the size the stride-2 conv gives them
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NASBench201Net(Net):
    """Stem, three stages of `cells` copies of `arch` at widths C, 2C, 4C, classifier."""

    def __init__(
        self, spec: DataSpec, *, arch: Arch | str = RESNET_CELL, width: int = 16, cells: int = 5
    ) -> None:
        super().__init__()
        if width < 1 or cells < 0:
            raise DistillError(f"width must be >= 1 and cells >= 0, got {width} and {cells}")
        if spec.size < 4:
            raise DistillError(f"images of {spec.size} px are too small for two reductions")
        self.arch = arch if isinstance(arch, Arch) else Arch.parse(arch)
        layers: list[nn.Module] = [
            nn.Conv2d(spec.channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        ]
        c = width
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(self.arch, c) for _ in range(cells))
        layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.feature_dim = c
        self.classifier = nn.Linear(c, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x)


@register("nas201")
def nas201(spec: DataSpec, **config) -> NASBench201Net:
    return NASBench201Net(spec, **config)
