"""Closed-form NNGP and NTK of infinitely wide fully connected ReLU networks.

Lee et al., "Deep Neural Networks as Gaussian Processes", ICLR 2018 (the NNGP recursion);
Jacot, Gabriel & Hongler, "Neural Tangent Kernel", NeurIPS 2018 (the NTK recursion); the
ReLU expectations are the arc-cosine kernels of Cho & Saul (NeurIPS 2009). KIP (Nguyen,
Chen & Lee, ICLR 2021; survey eq. 5) regresses with this NTK.

A network of `depth` hidden ReLU layers in the NTK parameterisation (neural-tangents'
default, `stax.Dense(..., parameterization="ntk")`): h^1 = (s_w / sqrt(d)) W^1 x + s_b b^1,
h^{l+1} = (s_w / sqrt(n)) W^{l+1} relu(h^l) + s_b b^{l+1}, all W, b ~ N(0, 1), readout
h^{depth+1}; w_var = s_w^2, b_var = s_b^2 (KIP: s_w = sqrt(2), s_b = 0.1). Its kernels:

    K^0 = w_var x.x' / d + b_var,            Theta^0 = K^0,
    K^l = w_var E[relu(u) relu(v)] + b_var,  Theta^l = K^l + w_var E[relu'(u) relu'(v)] Theta^(l-1),

with (u, v) ~ N(0, K^{l-1}) restricted to the pair, and for rho = K12 / sqrt(K11 K22),
theta = arccos(rho):

    E[relu(u) relu(v)]   = sqrt(K11 K22) (sin theta + (pi - theta) cos theta) / (2 pi),
    E[relu'(u) relu'(v)] = (pi - theta) / (2 pi).

The NNGP is K^depth and the NTK Theta^depth (the readout's kernels). The NNGP does not
depend on the parameterisation; the NTK of the standard parameterisation differs (it
weighs layers by their widths) and is not implemented.
"""

from __future__ import annotations

import math

import torch

from datadistill.kernels.base import Kernel

# rho is clamped into [-1 + eps, 1 - eps]: arccos has an infinite slope at +-1 (every
# diagonal entry of K(x, x)), and the clamp's zero gradient there is the exact one, since
# rho(x, x) = 1 whatever x. The diagonal's E[relu' relu'] is then off by ~sqrt(2 eps) / pi.
_EPS = 1e-12


def _relu_expectations(k12, k11, k22):
    """(E[relu(u) relu(v)], E[relu'(u) relu'(v)]), (u, v) of covariance [[k11, k12], [., k22]]."""
    norm = (k11 * k22).clamp_min(1e-300).sqrt()
    rho = (k12 / norm).clamp(-1 + _EPS, 1 - _EPS)
    theta = torch.arccos(rho)
    e_relu = norm * (torch.sin(theta) + (math.pi - theta) * rho) / (2 * math.pi)
    e_step = (math.pi - theta) / (2 * math.pi)
    return e_relu, e_step


def relu_fc_kernels(
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    depth: int = 1,
    w_var: float = 2.0,
    b_var: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(NNGP, NTK), each [n1, n2] float64, of a fully connected ReLU network (module docstring).

    Args:
        x1, x2: inputs [n, ...], flattened to vectors; x2 None means x1.
        depth: number of hidden layers (KIP's "FC1" is depth 1).
        w_var, b_var: weight and bias variances s_w^2 and s_b^2.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    a = x1.reshape(len(x1), -1).double()
    b = a if x2 is None else x2.reshape(len(x2), -1).double()
    d = a.shape[1]
    k12 = w_var * (a @ b.T) / d + b_var
    k11 = (w_var * (a * a).sum(1) / d + b_var).unsqueeze(1)
    k22 = k11.T if x2 is None else (w_var * (b * b).sum(1) / d + b_var).unsqueeze(0)
    ntk = k12
    for _ in range(depth):
        e_relu, e_step = _relu_expectations(k12, k11, k22)
        k12 = w_var * e_relu + b_var
        ntk = k12 + w_var * e_step * ntk
        k11 = w_var * k11 / 2 + b_var  # E[relu(u)^2] = K11 / 2
        k22 = w_var * k22 / 2 + b_var
    return k12, ntk


def relu_fc_diag(
    x: torch.Tensor, *, depth: int = 1, w_var: float = 2.0, b_var: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagonals (NNGP, NTK) of `relu_fc_kernels(x)`, [n] each, exactly (rho = 1)."""
    a = x.reshape(len(x), -1).double()
    k = w_var * (a * a).sum(1) / a.shape[1] + b_var
    ntk = k
    for _ in range(depth):
        k = w_var * k / 2 + b_var
        ntk = k + w_var * ntk / 2  # E[relu'(u)^2] = 1 / 2
    return k, ntk


class _FullyConnected(Kernel):
    _index = 0

    def __init__(self, *, depth: int = 1, w_var: float = 2.0, b_var: float = 0.01):
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self.depth = depth
        self.w_var = w_var
        self.b_var = b_var

    def _args(self) -> dict:
        return {"depth": self.depth, "w_var": self.w_var, "b_var": self.b_var}

    def __call__(self, x1, x2=None):
        return relu_fc_kernels(x1, x2, **self._args())[self._index]

    def diag(self, x):
        return relu_fc_diag(x, **self._args())[self._index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(depth={self.depth}, w_var={self.w_var}, b_var={self.b_var})"


class FCNNGP(_FullyConnected):
    """NNGP kernel of a fully connected ReLU network (Lee et al., ICLR 2018)."""

    name = "fc_nngp"
    _index = 0


class FCNTK(_FullyConnected):
    """NTK of a fully connected ReLU network, NTK parameterisation (Jacot et al., 2018)."""

    name = "fc_ntk"
    _index = 1
