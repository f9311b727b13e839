"""The Gaussian mechanism on a real batch's gradient: per-example clip, sum, noise, scale.

This is DP-SGD's gradient sanitiser (Abadi et al., CCS 2016), used by DP gradient matching
(Dong et al., ICML 2022; Chen et al., PSG, NeurIPS 2022) on the *real* side of the match:
each example's gradient g_i is clipped to norm at most C, the clipped gradients are summed,
Gaussian noise N(0, sigma^2 C^2 I) is added, and the result is divided by a constant (the
expected batch size, never the drawn one, which would leak the batch size). Adding or
removing one example changes the sum by at most C in L2 norm, so the release is the
Gaussian mechanism with noise multiplier sigma, the quantity Opacus's accountants take.

Per-example gradients come from one of two backends, which agree to float precision:
``func`` (torch.func: ``vmap(grad(loss))`` over ``functional_call``) and ``opacus``
(Opacus's GradSampleModule, backward hooks on a copy of the network). Which is faster
depends on the machine; `experiments/privacy_speed.py` measures it.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

BACKENDS = ("func", "opacus")


def per_example_grads(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, backend: str = "func"
) -> list[torch.Tensor]:
    """Gradients of each example's cross-entropy loss: one [B, *p.shape] tensor per parameter.

    The network must treat examples independently (instance or group norm, no batch norm).
    """
    if backend == "func":
        return _func_grads(net, x, y)
    if backend == "opacus":
        return _opacus_grads(net, x, y)
    raise ValueError(f"unknown per-example gradient backend '{backend}'; use one of {BACKENDS}")


def _func_grads(net, x, y):
    from torch.func import functional_call, grad, vmap

    names = [n for n, _ in net.named_parameters()]
    params = {n: p.detach() for n, p in net.named_parameters()}
    buffers = dict(net.named_buffers())

    def loss(p, xi, yi):
        out = functional_call(net, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return [grads[n] for n in names]


def _opacus_grads(net, x, y):
    from opacus import GradSampleModule

    # a copy: the hooks must not fire on the synthetic side's double backward
    shadow = GradSampleModule(copy.deepcopy(net), loss_reduction="sum")
    with quiet_opacus():
        F.cross_entropy(shadow(x), y, reduction="sum").backward()
    grads = [p.grad_sample for p in shadow.parameters()]
    shadow._close()
    return grads


@contextlib.contextmanager
def quiet_opacus():
    """Silence Opacus's warnings that do not apply here: its non-secure RNG (the noise comes
    from `noise.generator`, secretly seeded; that module says what it does not defend), its
    RDP orders, and PyTorch's note that the backward hooks fire on inputs that need no
    gradient (images are data, not parameters)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="opacus")
        warnings.filterwarnings("ignore", message="Full backward hook", category=UserWarning)
        yield


def clip_and_sum(per_example: Sequence[torch.Tensor], clip: float) -> list[torch.Tensor]:
    """Sum over examples of g_i * min(1, C / ||g_i||), the norm taken over all parameters.

    Each example's term has norm at most C, so one example moves the sum by at most C.
    """
    norms = torch.cat([g.flatten(1) for g in per_example], dim=1).norm(dim=1)
    scale = (clip / (norms + 1e-6)).clamp(max=1.0)
    return [torch.einsum("b,b...->...", scale, g) for g in per_example]


def clipped_sum(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    clip: float,
    backend: str = "func",
    chunk: int = 256,
) -> list[torch.Tensor]:
    """`clip_and_sum` of the batch's per-example gradients, `chunk` examples at a time.

    Chunks bound the memory of per-example gradients (B x parameters floats); the result
    is the same sum. An empty batch gives zeros.
    """
    total = [torch.zeros_like(p) for p in net.parameters()]
    for xs, ys in zip(x.split(chunk), y.split(chunk), strict=True):
        part = clip_and_sum(per_example_grads(net, xs, ys, backend=backend), clip)
        for acc, g in zip(total, part, strict=True):
            acc += g
    return total


def add_noise(
    summed: Sequence[torch.Tensor],
    *,
    clip: float,
    noise_multiplier: float,
    normaliser: float,
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """(sum + N(0, (sigma C)^2 I)) / normaliser; the noise is drawn on the CPU from `generator`.

    `generator` is the mechanism's own (`noise.generator`: a secret seed unless the run asked
    for reproducible noise), never the run's, whose seed the summary records.
    """
    out = []
    for s in summed:
        noise = torch.randn(s.shape, generator=generator) * (noise_multiplier * clip)
        out.append((s + noise.to(s.device, s.dtype)) / normaliser)
    return out
