"""Text classifiers over embedded sentences [batch, seq_len, dim] (never over token ids).

Both take the continuous embeddings, so they train on synthetic sentences exactly as on
real ones. Neither has dropout or batch norm: the unrolled inner loop (BPTT) needs a
deterministic, per-example forward pass.

- `textcnn`: Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014,
  the TextConvNet that Sucholutsky & Schonlau (2021) distil with: parallel 1-D
  convolutions of widths 3, 4, 5 over the sequence, ReLU, max over time, a linear readout.
- `embbag`: the summed embeddings of the sequence (an embedding bag in `sum` mode; fastText,
  Joulin et al., EACL 2017, averages instead) and a linear readout: a model the summary was
  not distilled for. Summing keeps a short sentence's signal at the scale of its words
  where a mean over padded positions would shrink it, and SGD at the protocol's rate
  trains it in the protocol's epochs.
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill.errors import DistillError


class TextCNN(nn.Module):
    def __init__(self, dim: int, num_classes: int, *, filters: int = 32, widths=(3, 4, 5)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w, padding=w // 2) for w in widths)
        self.readout = nn.Linear(filters * len(widths), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # [B, dim, L]
        pooled = [torch.relu(conv(h)).amax(dim=2) for conv in self.convs]
        return self.readout(torch.cat(pooled, dim=1))


class EmbeddingBag(nn.Module):
    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.readout = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(x.sum(dim=1))


ARCHS = {"textcnn": TextCNN, "embbag": EmbeddingBag}


def build(arch: str, spec) -> nn.Module:
    """A fresh classifier for `spec` (a `TextSpec`: dim, num_classes)."""
    if arch not in ARCHS:
        raise DistillError(f"unknown text model '{arch}'; choose one of: {', '.join(ARCHS)}")
    return ARCHS[arch](spec.dim, spec.num_classes)


def fresh(arch: str, spec, generator: torch.Generator, device) -> nn.Module:
    """A classifier whose initialisation depends only on `generator` (as
    `datadistill.objectives.distribution.fresh_network` for images)."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(arch, spec)
    return net.to(device)
