"""Pieces shared by the networks: the embed/classify split and the norm-layer factory."""

from __future__ import annotations

from torch import Tensor, nn

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")


class Net(nn.Module):
    """Base class: ``forward(x) = classifier(embed(x))``.

    Distribution-matching methods (DM, Zhao & Bilen, WACV 2023) compare the features right
    before the last linear layer, so every network exposes them as ``embed``.
    """

    feature_dim: int
    classifier: nn.Linear

    def embed(self, x: Tensor) -> Tensor:
        """Features ``[B, feature_dim]`` fed to the final linear classifier."""
        raise NotImplementedError

    def layer_features(self, x: Tensor) -> list[Tensor]:
        """Every intermediate feature map a layer-wise objective compares, ending with
        ``embed(x)``. CAFE (Wang et al., CVPR 2022) aligns them all; a network that does
        not split itself into layers offers only its embedding."""
        return [self.embed(x)]

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


def make_norm(kind: str, channels: int, size: int) -> nn.Module:
    """Norm layer for ``[B, channels, size, size]`` maps, as in the DC/DSA/DM code.

    ``instancenorm`` is ``GroupNorm(C, C)`` (per-sample, per-channel statistics with an
    affine map) rather than ``InstanceNorm2d``, matching Zhao et al. (ICLR 2021); unlike
    batchnorm it keeps each example independent, which ``torch.func.vmap`` needs.
    """
    if kind == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "layernorm":
        return nn.LayerNorm([channels, size, size], elementwise_affine=True)
    if kind == "groupnorm":
        return nn.GroupNorm(4, channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; choose one of: {', '.join(NORMS)}")


def can_pool(size: int, convs_follow: bool) -> bool:
    """Whether a 2x2 downsampling step should run on ``size`` x ``size`` maps.

    Small inputs (8 px) cannot take every pool of a 32 px design. A step is skipped when it
    would leave no pixels, or leave 1x1 maps for later convolutions: instance norm over a
    single pixel outputs a constant, which would cut the network off from its input.
    """
    return size // 2 >= (2 if convs_follow else 1)


def conv_out(size: int, kernel: int, padding: int, stride: int = 1) -> int:
    """Spatial size after a square convolution."""
    return (size + 2 * padding - kernel) // stride + 1
