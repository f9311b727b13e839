"""LinBa: shared bases and per-class linear addressing (survey section 2.5, eq. 13).

Deng & Russakovsky, "Remember the Past: Distilling Datasets into Addressable Memories for
Neural Networks", NeurIPS 2022. A memory of r bases B = [b_1 ... b_r] is shared by every
class; example i is addressed by a linear map A_i of the label, x_i^T = y^T A_i B (eq. 13).
With one-hot y, y^T A_i is one row of coefficients per (class, example), so the summary is
B plus a [K, m, r] coefficient tensor, and example (c, i) is the linear combination
sum_j A_i[c, j] b_j. Bases live at 1/`downsample` resolution and are upsampled bilinearly
(LinBa's `downsample_scale`, 2 in its CIFAR-10 command).

Budget (LinBa's `cal_ncoef`): the bases are paid once, the rest buys coefficient rows, so
examples per class m = floor((budget - bases) / (K * (r floats + one label))).
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill import budget as budgets
from datadistill.params.factorised import Factorised, low_resolution, to_image_size
from datadistill.spec import DataSpec


class LinearBases(Factorised):
    """`n_bases` shared bases and `per_class` coefficient rows per class (one per example).

    Args:
        n_bases: r, the memory size (LinBa: 16 on CIFAR-10 at IPC 1).
        per_class: m, examples per class, each its own row of r coefficients.
        downsample: bases are stored at ceil(size / downsample) pixels a side.
        coeff_decay: L2 penalty on the coefficients, applied as SGD weight decay in
            `param_groups` (LinBa's command: `coeff_reg l2`, alpha 1e-4).
        generator: the random initialisation (Xavier-uniform bases and coefficients, as
            LinBa's code; LinBa does not initialise from real images).
    """

    name = "linba"

    def __init__(
        self,
        spec: DataSpec,
        *,
        n_bases: int,
        per_class: int,
        downsample: int = 2,
        coeff_decay: float = 1e-4,
        generator: torch.Generator,
    ):
        if n_bases < 1 or per_class < 1:
            raise ValueError(f"need n_bases and per_class >= 1, got {n_bases}, {per_class}")
        super().__init__(spec, per_class, per_class)
        self.side = low_resolution(spec.size, downsample)
        self.coeff_decay = coeff_decay
        dim = spec.channels * self.side**2
        k = spec.num_classes
        self.bases = nn.Parameter(_xavier_uniform(n_bases, dim, generator))
        coeff = _xavier_uniform(k * per_class, n_bases, generator)
        self.coefficients = nn.Parameter(coeff.view(k, per_class, n_bases))

    @classmethod
    def for_budget(
        cls,
        spec: DataSpec,
        budget: int,
        *,
        n_bases: int = 16,
        downsample: int = 2,
        coeff_decay: float = 1e-4,
        reserve: int = 0,
        generator: torch.Generator,
    ) -> LinearBases:
        """The most examples per class whose coefficients fit beside the bases in `budget`
        bytes (`reserve`: bytes kept for tensors stored outside, e.g. a learnt step size)."""
        side = low_resolution(spec.size, downsample)
        per_class = budgets.items_within(
            budget - reserve,
            fixed=n_bases * spec.channels * side**2 * budgets.FLOAT_BYTES,
            per_item=n_bases * budgets.FLOAT_BYTES + budgets.LABEL_BYTES,
            num_classes=spec.num_classes,
            what="coefficient row",
            fix="--set n_bases=N with fewer bases, or a larger downsample",
        )
        return cls(
            spec,
            n_bases=n_bases,
            per_class=per_class,
            downsample=downsample,
            coeff_decay=coeff_decay,
            generator=generator,
        )

    def sample(self, class_ids=None):
        classes = self.classes(class_ids)
        coeff = self.coefficients[classes.to(self.coefficients.device)]  # [k, m, r]
        x = coeff.flatten(0, 1) @ self.bases  # eq. 13 for every (class, example)
        x = x.view(-1, self.spec.channels, self.side, self.side)
        return to_image_size(x, self.spec.size), self.example_labels(classes)

    def param_groups(self) -> list[dict]:
        return [
            {"params": [self.bases]},
            {"params": [self.coefficients], "weight_decay": self.coeff_decay},
        ]


def _xavier_uniform(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    bound = (6.0 / (rows + cols)) ** 0.5
    return (torch.rand(rows, cols, generator=generator) * 2 - 1) * bound
