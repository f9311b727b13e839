"""The parameterisation interface (DESIGN.md: "the two interfaces").

A parameterisation is an `nn.Module` whose parameters are the summary. Objectives only
see `sample()`; the outer loop only sees `parameters()`, `materialize()` and
`stored_bytes()`. That is what lets any parameterisation be optimised by any objective
(survey section 2.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from datadistill.spec import DataSpec

if TYPE_CHECKING:
    from datadistill.data import Dataset


class Parameterisation(nn.Module):
    """Base class. Subclasses produce `images_per_class` examples of every class.

    Examples are always ordered by class: rows [c * m, (c + 1) * m) belong to class c,
    with m = `images_per_class`, so objectives can reshape to [K, m, ...] and treat all
    classes in one batched pass.
    """

    name = "base"
    init_rows: list[int] | None = None  # the training rows a real initialisation drew

    def __init__(
        self, spec: DataSpec | None, images_per_class: int, *, num_classes: int | None = None
    ):
        """`spec` describes image-like examples; modalities without one (graphs) pass None
        and their `num_classes`."""
        super().__init__()
        self.spec = spec
        self.num_classes = spec.num_classes if spec is not None else num_classes
        self.images_per_class = images_per_class

    def sample(self, class_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A differentiable batch (x, y) of every example of `class_ids` (all classes if None)."""
        raise NotImplementedError

    @torch.no_grad()
    def materialize(self) -> tuple[torch.Tensor, ...]:
        """Every example, detached: what the summary file stores under `images`/`labels`
        (a graph's parameterisation returns features, adjacency and labels)."""
        x, y = self.sample()
        return x.detach().clone(), y.detach().clone()

    def stored_bytes(self) -> int:
        """Bytes the summary really needs: every learnt tensor, labels included."""
        return sum(p.numel() * p.element_size() for p in self.state_dict().values())

    def param_groups(self) -> list[dict]:
        """Optimiser groups; a group without "lr" uses the method's lr_img (e.g. a learnt
        step size or labels can carry their own learning rate)."""
        return [{"params": list(self.parameters())}]

    def real_init(self, data: Dataset, per_class: int, generator: torch.Generator) -> torch.Tensor:
        """`per_class` real images of every class (`data.sample_per_class`'s draws), their
        training rows kept as `init_rows` for the summary's metadata."""
        rows = data.rows_per_class(per_class, generator)
        self.init_rows = rows.tolist()
        return data.x_train[rows].float()

    def summary_extra(self) -> dict:
        """Values the summary's metadata must carry: for faithful evaluation (MTT's syn_lr,
        added by wrappers), and the training rows a real initialisation started from, the
        examples most likely to leak, so a membership audit can target them (Carlini et al.,
        "No free lunch in 'privacy for free'", 2022)."""
        return {"init_rows": self.init_rows} if self.init_rows is not None else {}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Tensors to save under `param.*`; free images need none beyond `images`."""
        return {}

    def hard_labels(self) -> torch.Tensor:
        m = self.images_per_class
        return torch.arange(self.num_classes).repeat_interleave(m)
