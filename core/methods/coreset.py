"""Coreset baselines (selection, no learning): random, herding, k-center."""

from __future__ import annotations

from dataclasses import dataclass

from datadistill import coreset
from datadistill.methods.registry import Method, register


@dataclass(frozen=True)
class CoresetConfig:
    """Settings of the selection baselines (the feature network of herding / k-center)."""

    arch: str = "convnet"
    feature_epochs: int = 1


@dataclass(frozen=True)
class RandomConfig:
    """Uniform random selection has no settings."""


def _select_random(cfg, data, ipc, generator, seed, device):
    return coreset.random_select(data, ipc, generator)


def _feature_rule(rule):
    def select(cfg, data, ipc, generator, seed, device):
        return coreset.feature_select(
            data, ipc, rule, arch=cfg.arch, epochs=cfg.feature_epochs, seed=seed, device=device
        )

    return select


_SMALL = {"digits": {"feature_epochs": 30}}  # 1,437 images: one epoch is 6 steps
register(
    Method(
        "random", "coreset", "uniform random subset per class", RandomConfig, select=_select_random
    )
)
register(
    Method(
        "herding",
        "coreset",
        "Welling, ICML 2009 (as in DC, ICLR 2021)",
        CoresetConfig,
        select=_feature_rule(coreset.herding),
        per_dataset=_SMALL,
    )
)
register(
    Method(
        "kcenter",
        "coreset",
        "Sener & Savarese, ICLR 2018 (as in DC, ICLR 2021)",
        CoresetConfig,
        select=_feature_rule(coreset.kcenter),
        per_dataset=_SMALL,
    )
)
