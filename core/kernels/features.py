"""Kernels of finite networks given by their features: RFAD's random ConvNets, FRePO's pool.

RFAD: Loo, Hasani, Amini & Rus, "Efficient Dataset Distillation using Random Feature
Approximation", NeurIPS 2022. The NNGP of a ConvNet is the expected inner product of the
features its readout layer sees; RFAD estimates it by random features: the conv stacks of
M randomly initialised ConvNets (no normalisation, ReLU, 2x2 average pooling after every
convolution, weights N(0, w_var / fan_in), biases N(0, b_var)), concatenated and scaled by
1 / sqrt(M * D) (D features per model), and the readout layer's variances on top:
k(x, x') = w_var <phi(x), phi(x')> + b_var. RFAD's code uses M = 8 models of width 256
(its `ConvNet_wide`, k = 2 times 128 channels), depth 3, w_var 2, b_var 0.01 (bias std
0.1), and draws new models at every iteration. Cost is linear in the number of examples,
where KIP's exact kernels are quadratic.

FRePO: Zhou, Nezhadarya & Ba, "Dataset Distillation using Neural Feature Regression",
NeurIPS 2022; survey eq. (6): K = phi phi^T with phi a pool network's features (the
input of its last linear layer, `embed` here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from datadistill.kernels.base import FeatureKernel


class ConvRandomFeatures(FeatureKernel):
    """RFAD's empirical NNGP of random ConvNets (module docstring).

    Weights are drawn once, at construction, from `generator` (on the CPU, so a seed gives
    the same kernel on every device); draw a new kernel to resample the networks.

    Args:
        channels, size: input images [C, size, size].
        n_models: number of random networks M whose features are concatenated.
        width: channels of every convolution.
        depth: convolutions per network, each followed by ReLU and (while the maps are at
            least 2 pixels wide) 2x2 average pooling.
        w_var, b_var: weight variance (times 1 / fan_in) and bias variance, for the
            convolutions and for the readout layer alike.
        chunk: examples per forward pass (bounds memory on large real batches).
    """

    name = "conv_rf"

    def __init__(
        self,
        channels: int,
        size: int,
        *,
        n_models: int = 8,
        width: int = 256,
        depth: int = 3,
        w_var: float = 2.0,
        b_var: float = 0.01,
        generator: torch.Generator,
        chunk: int = 512,
    ):
        super().__init__(w_var=w_var, b_var=b_var)
        if n_models < 1 or width < 1 or depth < 1:
            raise ValueError(
                f"need n_models, width and depth >= 1, got {n_models}, {width}, {depth}"
            )
        self.n_models, self.width, self.depth, self.chunk = n_models, width, depth, chunk
        self.weights: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        for _ in range(n_models):
            layers, c_in = [], channels
            for _ in range(depth):
                std = (w_var / (c_in * 9)) ** 0.5
                w = torch.randn(width, c_in, 3, 3, generator=generator) * std
                b = torch.randn(width, generator=generator) * b_var**0.5
                layers.append((w, b))
                c_in = width
            self.weights.append(layers)
        out = size
        for _ in range(depth):
            out = out // 2 if out >= 2 else out
        self.dim = width * out * out  # features per model

    def to(self, device):
        self.weights = [[(w.to(device), b.to(device)) for w, b in m] for m in self.weights]
        return self

    def _one(self, layers, x):
        for w, b in layers:
            x = F.relu(F.conv2d(x, w.to(x.dtype), b.to(x.dtype), padding=1))
            if x.shape[-1] >= 2:
                x = F.avg_pool2d(x, 2)
        return x.flatten(1)

    def features(self, x):
        scale = (self.n_models * self.dim) ** -0.5
        parts = [
            torch.cat([self._one(layers, c) for c in x.split(self.chunk)])
            for layers in self.weights
        ]
        return torch.cat(parts, 1) * scale

    def __repr__(self) -> str:
        return (
            f"ConvRandomFeatures(n_models={self.n_models}, width={self.width}, "
            f"depth={self.depth}, w_var={self.w_var}, b_var={self.b_var})"
        )


class NetworkFeatures(FeatureKernel):
    """K = phi phi^T with phi = `net.embed` (FRePO's kernel, survey eq. 6).

    The network's own parameters are whatever requires_grad says; FRePO differentiates the
    kernel only with respect to the inputs, so its pool networks have theirs switched off.
    """

    name = "network_features"

    def __init__(self, net: torch.nn.Module):
        super().__init__(w_var=1.0, b_var=0.0)
        self.net = net

    def features(self, x):
        return self.net.embed(x)
