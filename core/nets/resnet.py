"""CIFAR-style ResNet-18 (He et al., CVPR 2016) as used for cross-architecture tests in DC/DSA."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ..spec import DataSpec
from ._common import Net, can_pool, make_norm
from ._registry import register


class BasicBlock(nn.Module):
    """Two conv3x3 with a residual connection; a 1x1 conv shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, size_out: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, c_out, size_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = make_norm(norm, c_out, size_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                make_norm(norm, c_out, size_out),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(Net):
    """3x3 stem (no max pool), four stages of BasicBlocks, global average pool, linear.

    Stages 2-4 halve the maps with stride 2, except where that would shrink them below
    2x2 (8 px inputs), since instance norm over one pixel outputs a constant.
    """

    def __init__(
        self,
        spec: DataSpec,
        *,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        norm: str = "instancenorm",
    ) -> None:
        super().__init__()
        widths = [64 * 2**i for i in range(len(blocks))]
        size = spec.size
        self.stem = nn.Sequential(
            nn.Conv2d(spec.channels, 64, 3, padding=1, bias=False),
            make_norm(norm, 64, size),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        c_in = 64
        for i, (n, c_out) in enumerate(zip(blocks, widths, strict=True)):
            stride = 2 if i > 0 and can_pool(size, convs_follow=True) else 1
            size = (size - 1) // stride + 1
            for j in range(n):
                stages.append(BasicBlock(c_in, c_out, stride if j == 0 else 1, size, norm))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.feature_dim = c_in
        self.classifier = nn.Linear(c_in, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


register("resnet18")(ResNet)
register("resnet18_bn")(partial(ResNet, norm="batchnorm"))
