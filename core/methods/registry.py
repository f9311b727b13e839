"""The registry of named methods, in a module of its own so that preset modules import it
without importing the package that imports them (no import cycle).

A `Method` is a parameterisation + an objective + paper defaults: `build` (or `select` for
coresets) makes them; for modalities whose data, optimiser or summary differ from images the
preset also names a `stepper` and a `summarise` hook, so every modality runs through the one
front door (`datadistill.distill.run`). A preset never parses flags or runs a command.
"""

from __future__ import annotations

import dataclasses
import typing
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
    lr_schedule: str = "constant"  # or "cosine": lr_img annealed to 0 over the iterations


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
        hints = typing.get_type_hints(self.config_cls)
        typed = {k: coerce(k, v, hints[k]) for k, v in values.items()}
        if typed.get("iterations", 0) < 0:  # what --iterations refuses, refused here too
            raise DistillError(
                f"--set iterations must be >= 0 (0 saves the initial summary), got "
                f"{typed['iterations']}; pass e.g. --set iterations=100"
            )
        return dataclasses.replace(self.config_cls(), **typed)


TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def coerce(key: str, value, kind):
    """A `--set` string as its config field's declared type (`kind`, a dataclass annotation).

    A typo is refused rather than guessed: `dsa=Ture` silently becoming False would run a
    different method than the one asked for."""
    if not isinstance(value, str):
        return value
    options = [t for t in typing.get_args(kind)] or [kind]
    if type(None) in options and value.lower() in ("none", "null"):
        return None
    for t in options:
        if t is str:
            return value
        if t is bool:
            if value.lower() in TRUE + FALSE:
                return value.lower() in TRUE
            continue
        if t in (int, float):
            try:
                return t(value)
            except ValueError:
                continue
    names = " or ".join(
        {
            bool: "a boolean (true/false, yes/no, 1/0)",
            int: "an integer",
            float: "a number",
            type(None): "none",
        }.get(t, t.__name__)
        for t in options
    )
    raise DistillError(f"--set {key}={value}: expected {names}; e.g. --set {key}={example(kind)}")


def example(kind) -> str:
    """A valid value of `kind`, for error messages."""
    first = ([t for t in typing.get_args(kind) if t is not type(None)] or [kind])[0]
    return {bool: "true", int: "10", float: "0.01"}.get(first, "none")


REGISTRY: dict[str, Method] = {}  # filled by the preset modules (`datadistill.methods`)


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method '{method.name}' is registered twice")
    REGISTRY[method.name] = method
    return method


def net_config(*, depth: int = 0, width: int = 0) -> dict:
    """A preset's network size as `datadistill.nets.build` keywords; 0 keeps the arch's own."""
    return {k: v for k, v in (("depth", depth), ("width", width)) if v}
