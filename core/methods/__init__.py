"""The registry of named methods: each is a parameterisation + an objective + paper defaults.

`distill list` reads this registry and the tests are parametrised over it, so a method is
listed and tested the day it is registered. Configs are frozen dataclasses holding the
paper's defaults; per-dataset overrides and the user's `--set key=value` are applied at
the edge (`Method.config`), never inside a run. Presets live in one module per family
(`core/methods/<family>.py`), imported at the bottom of this file to fill the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from datadistill.errors import DistillError


@dataclass(frozen=True)
class MethodConfig:
    """Settings every learnt summary shares: how the outer loop optimises it."""

    iterations: int = 1000
    lr_img: float = 1.0
    momentum: float = 0.5  # SGD's; Adam ignores it
    init: str = "real"
    optimizer: str = "sgd"  # "sgd" or "adam": what steps the summary (lr_img is its rate)


@dataclass(frozen=True)
class Method:
    """A named preset.

    Exactly one of `build` (learnt summaries), `select` (coresets) or `runner` is set.
    `runner` is for modalities other than images (graphs, recommender data, text): their
    data, summary tensors and evaluation differ, so the preset owns the whole `distill run`
    and gets the parsed arguments: runner(method, args) -> its result. A runner may also
    set `build`, to optimise its summary in the one outer loop (`datadistill.distill.run` with
    its `summarise` hook), as Distill-CF and text BPTT do.
    """

    name: str
    family: str
    paper: str
    config_cls: type
    build: Callable | None = None  # (config, data, ipc, generator) -> (param, objective)
    select: Callable | None = None  # (config, data, ipc, generator, seed, device) -> indices
    runner: Callable | None = None  # (method, args) -> result, for non-image modalities
    modality: str = "image"
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
        _load_plugins()
    if name not in _REGISTRY:
        raise DistillError(
            f"unknown method '{name}'; choose one of: {', '.join(available())} (see `distill list`)"
        )
    return _REGISTRY[name]


def available() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def _load_plugins() -> None:
    """Methods registered by apps/ (through `datadistill.plugins`), imported on first need."""
    from datadistill import plugins

    plugins.load()


# Fill the registry: one module per family (imported for their side effect).
from datadistill.methods import (  # noqa: E402, F401
    coreset,
    distribution,
    factorised,
    gradient,
    graph,
    meta,
    recsys,
    text,
    trajectory,
)
