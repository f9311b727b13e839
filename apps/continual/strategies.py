"""Strategies at one memory budget: Avalanche's baselines and the two distilled modes.

A registry (name -> builder), so the CLI, the experiment and the tests loop over names.
Every buffer holds `memory` images per class seen, fixed, never more (Avalanche's
class-balanced buffers with `adaptive_size=False`), so memory is equal across strategies
at every experience, not only at the end:

- naive: fine-tuning, no memory (lower bound).
- replay: `ReplayPlugin` + `ClassBalancedBuffer` (random exemplars per class).
- herding: `ReplayPlugin` + `ParametricBuffer` grouped by class with iCaRL's
  `HerdingSelectionStrategy` on the model's embedding (stopped at the class's share of
  the buffer: `ShareHerding`).
- gdumb: `GDumbPlugin` (Prabhu et al., ECCV 2020): a fresh model trained on the buffer.
- distill-replay: `ReplayPlugin` + `DistilledBuffer` (new data + all summaries).
- distill-recall: `GDumbPlugin` + `DistilledBuffer`, i.e. compress-then-recall (Deng &
  Russakovsky, NeurIPS 2022): a fresh model trained on the summaries alone.

The two "recall" strategies train on a tiny buffer from scratch, so they get their own
epochs, a step learning-rate schedule and DSA augmentation (the evaluation protocol of
distilled data); the stream strategies see the full experience for `epochs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from avalanche.training.plugins import (
    GDumbPlugin,
    LRSchedulerPlugin,
    ReplayPlugin,
    SupervisedPlugin,
)
from avalanche.training.storage_policy import (
    ClassBalancedBuffer,
    ExemplarsBuffer,
    HerdingSelectionStrategy,
    ParametricBuffer,
)
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from datadistill import nets
from datadistill.augment import DSA
from datadistill.coreset import herding
from datadistill.errors import DistillError
from datadistill.spec import DataSpec
from datadistill_apps.continual.memory import DistilledBuffer, DistillMemoryConfig


@dataclass(frozen=True)
class StrategyConfig:
    """Training settings shared by every strategy (the memory is the only difference)."""

    arch: str = "convnet"
    epochs: int = 5  # per experience, for strategies trained on the stream
    recall_epochs: int = 300  # from scratch on the memory (gdumb, distill-recall)
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    recall_dsa: bool = True


class EmbedHead(nn.Module):
    """A core net as `embedding` -> `head`, so Avalanche's herding can hook the features."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.embedding = _Embedding(net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding.net.classifier(self.embedding(x))


class _Embedding(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


class DSAPlugin(SupervisedPlugin):
    """Differentiable siamese augmentation (core's DSA) on each training mini-batch."""

    def __init__(self, strategy: str, *, seed: int) -> None:
        super().__init__()
        self.dsa = DSA(strategy)
        self.generator = torch.Generator().manual_seed(seed)

    def before_forward(self, strategy, **kwargs) -> None:
        strategy.mbatch[0] = self.dsa(strategy.mbatch[0], self.generator)


class ShareHerding(HerdingSelectionStrategy):
    """Avalanche's herding order, computed only as far as the buffer keeps it.

    Avalanche orders *every* example of a class by herding: on Fashion-MNIST that is
    6,000 greedy steps over 6,000 x 2,048 features per class, about half an hour of a
    five-experience stream on this CPU, while a fixed per-class buffer keeps the first
    `share`. A greedy pick never depends on later ones, so stopping after `share` steps
    keeps the same exemplars (tested against Avalanche's order); the rest follow in
    index order, never used.
    """

    def __init__(self, model: nn.Module, layer_name: str, share: int) -> None:
        super().__init__(model, layer_name)
        self.share = share

    def make_sorted_indices_from_features(self, features: torch.Tensor) -> list[int]:
        picked = herding(features, min(self.share, len(features))).tolist()
        taken = set(picked)
        return picked + [i for i in range(len(features)) if i not in taken]


@dataclass
class Built:
    """A ready strategy and the buffer whose size is accounted (None for naive)."""

    strategy: SupervisedTemplate
    buffer: ExemplarsBuffer | None


Builder = Callable[..., tuple[list, ExemplarsBuffer | None]]
_REGISTRY: dict[str, Builder] = {}
DISTILLED = ("distill-replay", "distill-recall")
RECALL: set[str] = set()  # a fresh model on the memory after each experience (register's flag)


def register(name: str, *, recall: bool = False):
    def wrap(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"strategy '{name}' is registered twice")
        _REGISTRY[name] = fn
        if recall:
            RECALL.add(name)
        return fn

    return wrap


def available() -> list[str]:
    return list(_REGISTRY)


def _fixed_class_buffer(memory: int, k: int) -> ClassBalancedBuffer:
    return ClassBalancedBuffer(max_size=memory * k, adaptive_size=False, total_num_classes=k)


def _gdumb(buffer: ExemplarsBuffer) -> GDumbPlugin:
    plugin = GDumbPlugin(mem_size=buffer.max_size)
    plugin.storage_policy = buffer  # GDumb's retraining, our storage policy
    return plugin


@register("naive")
def _naive(*, memory, spec, model, distill, device):
    return [], None


@register("replay")
def _replay(*, memory, spec, model, distill, device):
    buf = _fixed_class_buffer(memory, spec.num_classes)
    return [ReplayPlugin(mem_size=buf.max_size, storage_policy=buf)], buf


@register("herding")
def _herding(*, memory, spec, model, distill, device):
    k = spec.num_classes
    buf = ParametricBuffer(
        max_size=memory * k,
        groupby="class",
        selection_strategy=ShareHerding(model, "embedding", share=memory),
    )
    buf.adaptive_size, buf.total_num_groups = False, k  # fixed per-class share, as above
    return [ReplayPlugin(mem_size=buf.max_size, storage_policy=buf)], buf


@register("gdumb", recall=True)
def _gdumb_raw(*, memory, spec, model, distill, device):
    buf = _fixed_class_buffer(memory, spec.num_classes)
    return [_gdumb(buf)], buf


@register("distill-replay")
def _distill_replay(*, memory, spec, model, distill, device):
    buf = DistilledBuffer(spec=spec, config=distill, device=device)
    return [ReplayPlugin(mem_size=buf.max_size, storage_policy=buf)], buf


@register("distill-recall", recall=True)
def _distill_recall(*, memory, spec, model, distill, device):
    buf = DistilledBuffer(spec=spec, config=distill, device=device)
    return [_gdumb(buf)], buf


def build(
    name: str,
    *,
    spec: DataSpec,
    memory: int,
    config: StrategyConfig,
    distill: DistillMemoryConfig,
    evaluator,
    seed: int,
    device: torch.device | str = "cpu",
) -> Built:
    """Strategy `name` with `memory` images per class, in Avalanche's SupervisedTemplate."""
    if name not in _REGISTRY:
        raise DistillError(f"unknown strategy '{name}'; choose from: {', '.join(available())}")
    if memory < 1:
        raise DistillError(f"--memory must be at least 1 image per class, got {memory}")
    if config.arch not in nets.available():
        raise DistillError(
            f"unknown architecture '{config.arch}'; choose from: {', '.join(nets.available())}"
        )
    torch.manual_seed(seed)
    model = EmbedHead(nets.build(config.arch, spec))
    distill = dataclasses.replace(distill, memory=memory, seed=seed)
    recall = name in RECALL
    plugins, buffer = _REGISTRY[name](
        memory=memory, spec=spec, model=model, distill=distill, device=device
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    epochs = config.recall_epochs if recall else config.epochs
    if recall:
        half = torch.optim.lr_scheduler.MultiStepLR(optimizer, [max(1, epochs // 2)], 0.1)
        plugins.append(LRSchedulerPlugin(half, reset_scheduler=True, reset_lr=True))
        if config.recall_dsa:
            plugins.append(DSAPlugin(spec.dsa_strategy, seed=seed))
    strategy = SupervisedTemplate(
        model=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=epochs,
        eval_mb_size=512,
        device=device,
        plugins=plugins,
        evaluator=evaluator,
    )
    return Built(strategy, buffer)
