"""Free synthetic images: one learnable tensor per example (DC, DSA, DM, MTT ...)."""

from __future__ import annotations

import torch
from torch import nn

from datadistill.data import Dataset
from datadistill.params.base import Parameterisation


class FreeImages(Parameterisation):
    """`ipc` learnable images per class, initialised from real images or Gaussian noise.

    Labels are fixed one per class unless `learn_labels`, in which case they are learnable
    logits initialised to a scaled one-hot (as KIP and FRePO do) and saved as soft labels.
    """

    name = "images"

    def __init__(
        self,
        data: Dataset,
        ipc: int,
        *,
        init: str = "real",
        generator: torch.Generator,
        learn_labels: bool = False,
    ):
        super().__init__(data.spec, ipc)
        k = data.spec.num_classes
        if init == "real":
            x = self.real_init(data, ipc, generator)
        elif init == "noise":
            x = torch.randn(k * ipc, *data.spec.shape, generator=generator)
        else:
            raise ValueError(f"unknown init '{init}'; use 'real' or 'noise'")
        self.images = nn.Parameter(x.float())
        self.register_buffer("labels", torch.arange(k).repeat_interleave(ipc), persistent=False)
        self.learn_labels = learn_labels
        if learn_labels:
            self.label_logits = nn.Parameter(nn.functional.one_hot(self.labels, k).float())

    def sample(self, class_ids=None):
        y = self.label_logits if self.learn_labels else self.labels
        if class_ids is None:
            return self.images, y
        m = self.images_per_class
        rows = (torch.as_tensor(class_ids).view(-1, 1) * m + torch.arange(m)).flatten()
        rows = rows.to(self.images.device)
        return self.images[rows], y[rows]

    def stored_bytes(self) -> int:
        n = self.images.numel() * self.images.element_size()
        y = self.label_logits if self.learn_labels else self.labels
        return n + y.numel() * y.element_size()
