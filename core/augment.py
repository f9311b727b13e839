"""Differentiable siamese augmentation (DSA).

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021.
Matching real and synthetic batches under augmentation only works if both see the *same*
transformation (the "siamese" part) and gradients flow through it to the synthetic pixels
(the "differentiable" part). Every operation here is a differentiable function of the
input built from torch ops; its random parameters are drawn once (`draw`) and applied to
any number of batches (`apply`).

A siamese draw pairs a real and a synthetic batch. The reference code (DC/DSA's, reused by
DM and CAFE) seeds both calls alike and then gives every example of a batch the *first*
example's parameters ("batch mode"): one transformation per class batch, the same on both
sides. `SIAMESE` names that "batch" (the default of every matching objective here) and the
alternative "example", a draw per example with synthetic image i sharing real image i's
(this library's behaviour before 2026-11-28, kept so the two can be compared).

As in the paper's default mode, one operation of the strategy string is chosen per draw;
`color` bundles brightness, saturation and contrast. Magnitudes are the paper's:
scale 1.2, rotate 15 degrees, crop 1/8 of the side, cutout half the side, brightness 1.0,
saturation 2.0, contrast 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from datadistill.errors import DistillError

OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
SIAMESE = ("batch", "example")
SCALE, ROTATE_DEG, CROP, CUTOUT = 1.2, 15.0, 0.125, 0.5
BRIGHTNESS, SATURATION, CONTRAST = 1.0, 2.0, 0.5


@dataclass
class AugParams:
    """One draw: the chosen operation and per-example random numbers (rows = examples)."""

    op: str
    values: torch.Tensor  # [n, k], op-specific

    def select(self, index: torch.Tensor | None, n: int) -> torch.Tensor:
        v = self.values if index is None else self.values[index.to(self.values.device)]
        if len(v) < n:
            raise ValueError(f"augmentation drawn for {len(v)} examples, applied to {n}")
        return v[:n]


class DSA:
    """A DSA strategy such as ``color_crop_cutout_flip_scale_rotate``."""

    def __init__(self, strategy: str):
        ops = [o for o in strategy.split("_") if o]
        bad = [o for o in ops if o not in OPS]
        if bad or not ops:
            raise DistillError(
                f"unknown augmentation '{'_'.join(bad) or strategy}' in DSA strategy "
                f"'{strategy}'; use '_'-joined names from: {', '.join(OPS)}"
            )
        self.strategy = strategy
        self.ops = ops

    def draw(self, n: int, generator: torch.Generator, shared: bool = False) -> AugParams:
        """Choose an operation and draw its parameters for `n` examples (`shared`: one set
        of parameters for all `n`, the reference code's batch mode)."""
        op = self.ops[int(torch.randint(len(self.ops), (1,), generator=generator))]
        # uniform numbers, enough for any op
        u = (
            torch.rand(1, 4, generator=generator).expand(n, 4)
            if shared
            else torch.rand(n, 4, generator=generator)
        )
        return AugParams(op, u)

    def apply(self, x: torch.Tensor, params: AugParams, index: torch.Tensor | None = None):
        """Apply a draw to `x`; example i uses row `index[i]` of the draw (row i by default)."""
        u = params.select(index, len(x)).to(x.device, x.dtype)
        return _APPLY[params.op](x, u)

    def apply_groups(
        self, x: torch.Tensor, draws: list[AugParams], index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Apply draw c to group c of `x` (equal consecutive groups, e.g. one per class).

        Groups that drew the same operation run as one batch, so per-class operations (as
        DM's code draws them) cost little more than one operation for everything. Within a
        group, example i uses row `index[i]` of its draw (row i by default).
        """
        k = len(draws)
        if len(x) % k:
            raise ValueError(f"{len(x)} examples do not split into {k} equal groups")
        g = len(x) // k
        groups = x.view(k, g, *x.shape[1:])
        pieces, order = [], []
        for op in dict.fromkeys(d.op for d in draws):  # first-seen order: deterministic
            members = [c for c, d in enumerate(draws) if d.op == op]
            u = torch.cat([draws[c].select(index, g) for c in members]).to(x.device, x.dtype)
            pieces.append(_APPLY[op](groups[members].flatten(0, 1), u))
            order += members
        inverse = torch.empty(k, dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(k)
        out = torch.cat(pieces).view(k, g, *x.shape[1:])
        return out[inverse.to(x.device)].flatten(0, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.draw(len(x), generator))


def check_siamese(siamese: str) -> str:
    if siamese not in SIAMESE:
        raise DistillError(f"unknown siamese mode '{siamese}'; use one of: {', '.join(SIAMESE)}")
    return siamese


def _color(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    b = (u[:, 0] - 0.5) * BRIGHTNESS
    x = x + b.view(-1, 1, 1, 1)
    s = u[:, 1] * SATURATION
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * s.view(-1, 1, 1, 1) + m
    c = u[:, 2] + CONTRAST
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * c.view(-1, 1, 1, 1) + m


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _scale(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    sx = u[:, 0] * (SCALE - 1 / SCALE) + 1 / SCALE
    sy = u[:, 1] * (SCALE - 1 / SCALE) + 1 / SCALE
    z = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, z, z], 1), torch.stack([z, sy, z], 1)], 1)
    return _affine(x, theta)


def _rotate(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    a = (u[:, 0] - 0.5) * 2 * ROTATE_DEG / 180 * math.pi
    cos, sin, z = torch.cos(a), torch.sin(a), torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, sin, z], 1), torch.stack([-sin, cos, z], 1)], 1)
    return _affine(x, theta)


def _flip(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    keep = (u[:, 0] >= 0.5).view(-1, 1, 1, 1)
    return torch.where(keep, x, x.flip(3))


def _grid(x: torch.Tensor):
    h, w = x.shape[2], x.shape[3]
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    return h, w, gy, gx


def _crop(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Translate by up to 1/8 of the side, filling with zeros (a random crop of a padded image)."""
    h, w, gy, gx = _grid(x)
    my, mx = int(h * CROP + 0.5), int(w * CROP + 0.5)
    dy = (u[:, 0] * (2 * my + 1)).long().clamp(max=2 * my) - my
    dx = (u[:, 1] * (2 * mx + 1)).long().clamp(max=2 * mx) - mx
    pad = F.pad(x, (mx, mx, my, my))
    iy = (gy + dy.view(-1, 1, 1) + my).unsqueeze(1).expand(-1, x.shape[1], h, w)
    ix = (gx + dx.view(-1, 1, 1) + mx).unsqueeze(1).expand(-1, x.shape[1], h, w)
    flat = pad.flatten(2)
    idx = (iy * pad.shape[3] + ix).flatten(2)
    return torch.gather(flat, 2, idx).view_as(x)


def _cutout(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Zero a square of half the side at a random centre (partly outside the image allowed)."""
    h, w, gy, gx = _grid(x)
    sy, sx = int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5)
    cy = (u[:, 0] * (h + 1 - sy % 2)).long().view(-1, 1, 1)
    cx = (u[:, 1] * (w + 1 - sx % 2)).long().view(-1, 1, 1)
    inside = ((gy - cy).abs() < (sy + 1) // 2) & ((gx - cx).abs() < (sx + 1) // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_APPLY = {
    "color": _color,
    "crop": _crop,
    "cutout": _cutout,
    "flip": _flip,
    "scale": _scale,
    "rotate": _rotate,
}
