"""The registry of named methods: each is a parameterisation + an objective + paper defaults.

`distill list` reads this registry and the tests are parametrised over it, so a method is
listed and tested the day it is registered. Configs are frozen dataclasses holding the
paper's defaults; per-dataset overrides and the user's `--set key=value` are applied at
the edge (`Method.config`), never inside a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from core import coreset
from core.data import Dataset
from core.errors import DistillError
from core.objectives.distribution import MeanEmbedding
from core.params.images import FreeImages


@dataclass(frozen=True)
class MethodConfig:
    """Settings every learnt summary shares: how the outer loop optimises it."""

    iterations: int = 1000
    lr_img: float = 1.0
    momentum: float = 0.5
    init: str = "real"


@dataclass(frozen=True)
class CoresetConfig:
    """Settings of the selection baselines (the feature network of herding / k-center)."""

    arch: str = "convnet"
    feature_epochs: int = 1


@dataclass(frozen=True)
class RandomConfig:
    """Uniform random selection has no settings."""


@dataclass(frozen=True)
class DMConfig(MethodConfig):
    """DM (Zhao & Bilen, WACV 2023): 20k iterations, lr_img 1, momentum 0.5, batch_real 256."""

    iterations: int = 20000
    batch_real: int = 256
    arch: str = "convnet"
    dsa: bool = True


@dataclass(frozen=True)
class Method:
    """A named preset.

    Exactly one of `build` (learnt summaries) or `select` (coresets) is set.
    """

    name: str
    family: str
    paper: str
    config_cls: type
    build: Callable | None = None  # (config, data, ipc, generator) -> (param, objective)
    select: Callable | None = None  # (config, data, ipc, generator, seed, device) -> indices
    per_dataset: Mapping[str, Mapping] = field(default_factory=dict)

    @property
    def learnt(self) -> bool:
        return self.build is not None

    def config(self, dataset: str, overrides: Mapping[str, object] | None = None):
        """The paper's defaults, then the dataset's, then the user's overrides (typed)."""
        values = {**self.per_dataset.get(dataset, {}), **(overrides or {})}
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise DistillError(
                f"method '{self.name}' has no setting {', '.join(unknown)}; "
                f"its settings are: {', '.join(fields)}"
            )
        typed = {k: _coerce(v, type(getattr(self.config_cls(), k))) for k, v in values.items()}
        return dataclasses.replace(self.config_cls(), **typed)


def _coerce(value, kind):
    if not isinstance(value, str) or kind is str:
        return value
    if kind is bool:
        return value.lower() in ("1", "true", "yes", "on")
    return kind(value)


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in _REGISTRY:
        raise ValueError(f"method '{method.name}' is registered twice")
    _REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    if name not in _REGISTRY:
        raise DistillError(
            f"unknown method '{name}'; choose one of: {', '.join(available())} (see `distill list`)"
        )
    return _REGISTRY[name]


def available() -> list[str]:
    return sorted(_REGISTRY)


# --- coreset baselines ---------------------------------------------------------------------


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


# --- distribution matching -----------------------------------------------------------------


def _build_dm(cfg: DMConfig, data: Dataset, ipc: int, generator: torch.Generator):
    param = FreeImages(data, ipc, init=cfg.init, generator=generator)
    strategy = data.spec.dsa_strategy if cfg.dsa else None
    objective = MeanEmbedding(arch=cfg.arch, batch_real=cfg.batch_real, dsa_strategy=strategy)
    return param, objective


# digits has ~143 images a class: 256 per class would draw each one about twice
register(
    Method(
        "dm",
        "distribution matching",
        "Zhao & Bilen, WACV 2023",
        DMConfig,
        build=_build_dm,
        per_dataset={"digits": {"batch_real": 128}},
    )
)
