"""A wrapper that adds a learnt training step size and learnt soft labels to any summary.

Trajectory matching (MTT, Cazenavette et al., CVPR 2022; TESLA, Cui et al., ICML 2023)
learns the learning rate a student should train the summary with; evaluation must use it,
so it travels in the summary's metadata (`summary_extra`).
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill.params.base import Parameterisation


class WithLearntLR(Parameterisation):
    """Any parameterisation plus the learnt student step size and, optionally, soft labels.

    Trajectory matching learns the learning rate a model should train on the summary with
    (MTT's `syn_lr`) together with the summary itself, so it is stored with it. Soft labels
    are learnt logits whose softmax is the label distribution `sample()` returns (and the
    file stores), so evaluation's cross-entropy uses exactly what was distilled.

    Each learnt tensor has its own learning rate (MTT: SGD on syn_lr with lr_lr, momentum
    0.5): `param_groups()` gives the outer loop one optimiser group per kind.
    """

    def __init__(
        self,
        inner: Parameterisation,
        *,
        syn_lr: float,
        lr_lr: float,
        label_logits: torch.Tensor | None = None,
        lr_label: float = 0.0,
        momentum_label: float = 0.9,
    ):
        super().__init__(inner.spec, inner.images_per_class)
        self.inner = inner
        self.name = inner.name
        self.syn_lr = nn.Parameter(torch.tensor(float(syn_lr)))
        self.lr_lr = lr_lr
        self.lr_label = lr_label
        self.momentum_label = momentum_label
        if label_logits is None:
            self.register_parameter("label_logits", None)
        else:
            self.label_logits = nn.Parameter(label_logits.detach().float().clone())

    def sample(self, class_ids=None):
        x, y = self.inner.sample(class_ids)
        if self.label_logits is None:
            return x, y
        logits = self.label_logits
        if class_ids is not None:
            m = self.images_per_class
            rows = (torch.as_tensor(class_ids).view(-1, 1) * m + torch.arange(m)).flatten()
            logits = logits[rows.to(logits.device)]
        return x, logits.softmax(1)

    def param_groups(self) -> list[dict]:
        """Optimiser groups: the summary's own, syn_lr (lr_lr), labels (lr_label)."""
        groups = list(self.inner.param_groups())  # the summary's own groups (HaBa: two)
        groups.append({"params": [self.syn_lr], "lr": self.lr_lr})
        if self.label_logits is not None:
            groups.append(
                {
                    "params": [self.label_logits],
                    "lr": self.lr_label,
                    "momentum": self.momentum_label,
                }
            )
        return groups

    def summary_extra(self) -> dict:
        """What evaluation must use: train at the learnt step size (and the inner one's)."""
        return {**self.inner.summary_extra(), "syn_lr": float(self.syn_lr.detach())}

    def stored_bytes(self) -> int:
        n = self.inner.stored_bytes() + self.syn_lr.numel() * self.syn_lr.element_size()
        if self.label_logits is not None:  # soft labels replace the hard ones
            hard = getattr(self.inner, "labels", None)
            n -= hard.numel() * hard.element_size() if isinstance(hard, torch.Tensor) else 0
            n += self.label_logits.numel() * self.label_logits.element_size()
        return n

    def tensors(self) -> dict[str, torch.Tensor]:
        return self.inner.tensors()
