"""The cell's operations and the cell itself, as NAS-Bench-201 defines them.

Convolutions are ReLU -> conv -> BatchNorm; pooling is a 3x3 average with stride 1 that
does not count padding; `skip_connect` is the identity; `none` multiplies by zero, so an
edge marked `none` passes neither signal forward nor gradient backward (Dong & Yang,
ICLR 2020, section 3). All operations keep the channel count and the spatial size.
"""

from __future__ import annotations

from torch import Tensor, nn

from datadistill_apps.nas.space import NODES, Arch


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The `none` operation: zeros shaped like the input, with zero gradient to it."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown operation '{name}'")


class Cell(nn.Module):
    """Node j = sum_{i<j} op_(i->j)(node i); returns node 3. Keeps [B, C, H, W]."""

    def __init__(self, arch: Arch, channels: int) -> None:
        super().__init__()
        self.arch = arch
        self.edges = nn.ModuleList(make_op(op, channels) for op in arch.ops)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        k = 0
        for j in range(1, NODES):
            total = self.edges[k](nodes[0])
            for i in range(1, j):
                total = total + self.edges[k + i](nodes[i])
            k += j
            nodes.append(total)
        return nodes[-1]
