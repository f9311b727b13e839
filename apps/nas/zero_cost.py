"""Zero-cost proxies: score a cell at initialisation, from one batch or none, in seconds.

The baselines a NAS user compares a summary proxy with first; each scores an untrained
network and a higher score should mean a better cell once trained.

- `naswot` (Mellor et al., "Neural Architecture Search without Training", ICML 2021, eq. 2):
  each input of a batch gets a binary code, which of the units entering a ReLU are positive;
  the kernel K[i, j] = N_A - Hamming(c_i, c_j) counts the units where inputs i and j agree,
  and the score is log|det K|. Inputs the network tells apart score high.
- `synflow` (Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020, eq. 2; as a NAS proxy: Abdelfattah et al.,
  "Zero-Cost Proxies for Lightweight NAS", ICLR 2021): every parameter replaced by its
  absolute value, BatchNorm removed (Abdelfattah et al.'s synflow runs the network without
  it), a single all-ones input in float64, R = sum of the outputs; the score is the sum over
  conv and linear weights of |theta * dR/dtheta|. Data-free.
- `grad_norm` (Abdelfattah et al., ICLR 2021, section 3): the sum over conv and linear
  layers of the L2 norm of the cross-entropy loss's gradient on one batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datadistill.errors import DistillError

WEIGHTED = (nn.Conv2d, nn.Linear)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def naswot(net: nn.Module, x: Tensor) -> float:
    """log|det K| of the binary-code kernel over the inputs of every `nn.ReLU` (BatchNorm
    in training mode, as the network starts training)."""
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)

    def hook(_module, inputs, _output) -> None:
        code = (inputs[0].detach().flatten(1) > 0).to(torch.float64)
        kernel.add_(code @ code.T + (1 - code) @ (1 - code).T)

    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise DistillError("naswot needs a network with nn.ReLU units; this one has none")
    handles = [m.register_forward_hook(hook) for m in relus]
    was_training = net.training
    try:
        net.train()
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return float(torch.linalg.slogdet(kernel).logabsdet)


def without_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of `net` whose BatchNorm layers are identities."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, BATCHNORM):
                setattr(module, name, nn.Identity())
    return net


def synflow(net: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Sum of |theta * dR/dtheta| over conv and linear weights of |net| without BatchNorm,
    R the summed output for one all-ones input of `input_shape` ([C, H, W]). `net` itself
    is left untouched (the score works on a copy)."""
    flow = without_batchnorm(net).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.abs_()
    flow.zero_grad(set_to_none=True)
    device = next(flow.parameters()).device
    flow(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum().backward()
    total = 0.0
    for m in flow.modules():
        if isinstance(m, WEIGHTED) and m.weight.grad is not None:
            total += float((m.weight.detach() * m.weight.grad).abs().sum())
    return total


def grad_norm(net: nn.Module, x: Tensor, y: Tensor) -> float:
    """Sum over conv and linear layers of ||d CE / d weight||_2 on the batch (x, y)."""
    net.zero_grad(set_to_none=True)
    was_training = net.training
    net.train()
    try:
        F.cross_entropy(net(x), y).backward()
    finally:
        net.train(was_training)
    total = sum(
        float(m.weight.grad.norm())
        for m in net.modules()
        if isinstance(m, WEIGHTED) and m.weight.grad is not None
    )
    net.zero_grad(set_to_none=True)
    return total


ZeroCost = Callable[[nn.Module, Tensor, Tensor], float]

PROXIES: dict[str, ZeroCost] = {
    "naswot": lambda net, x, y: naswot(net, x),
    "synflow": lambda net, x, y: synflow(net, tuple(x.shape[1:])),
    "grad-norm": grad_norm,
}
# what each proxy reads of the batch, for its rows
READS = {"naswot": "images", "synflow": "shape only", "grad-norm": "images and labels"}


def zero_cost(name: str) -> ZeroCost:
    """The proxy called `name`; DistillError naming the valid ones otherwise."""
    if name not in PROXIES:
        raise DistillError(f"unknown zero-cost proxy '{name}'; choose from {', '.join(PROXIES)}")
    return PROXIES[name]
