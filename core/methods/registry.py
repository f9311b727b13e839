"""The registry of named methods, in a module of its own so that preset modules import it
without importing the package that imports them (no import cycle).

A `Method` is a parameterisation + an objective + paper defaults: `build` (or `select` for
coresets) makes them; for modalities whose data, optimiser or summary differ from images the
preset also names a `stepper` and a `summarise` hook, so every modality runs through the one
front door (`datadistill.distill.run`). A preset never parses flags or runs a command.
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

    Exactly one of `build` (learnt summaries) or `select` (coresets) is set. Modalities
    other than images (graphs, recommender data, text) add hooks, each None for images:
    `stepper` when the summary's parameters step otherwise than by one optimiser (graphs:
    Adam per group), `summarise` to build their own summary from the run's `RunState`, and
    `examples` when the data handed to `run` wraps what the objective reads (text: the
    embedded sentences inside `TextData`).
    """

    name: str
    family: str
    paper: str
    config_cls: type
    build: Callable | None = None  # (config, data, ipc, generator) -> (param, objective)
    select: Callable | None = None  # (config, data, ipc, generator, seed, device) -> indices
    stepper: Callable | None = None  # (param, objective, config) -> datadistill.loop.Stepper
    summarise: Callable | None = None  # (datadistill.distill.RunState) -> a summary
    examples: Callable | None = None  # (data) -> what the objective and the ipc check read
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
        typed = {k: coerce(v, type(getattr(self.config_cls(), k))) for k, v in values.items()}
        return dataclasses.replace(self.config_cls(), **typed)


def coerce(value, kind):
    """A `--set` string as the config field's type (bool accepts 1/true/yes/on)."""
    if not isinstance(value, str) or kind is str:
        return value
    if kind is bool:
        return value.lower() in ("1", "true", "yes", "on")
    return kind(value)


REGISTRY: dict[str, Method] = {}  # filled by the preset modules (`datadistill.methods`)


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method '{method.name}' is registered twice")
    REGISTRY[method.name] = method
    return method


def net_config(*, depth: int = 0, width: int = 0) -> dict:
    """A preset's network size as `datadistill.nets.build` keywords; 0 keeps the arch's own."""
    return {k: v for k, v in (("depth", depth), ("width", width)) if v}
