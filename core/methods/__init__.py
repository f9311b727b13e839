"""Named methods: each is a parameterisation + an objective + paper defaults.

`distill list` reads the registry (`datadistill.methods.registry`) and the tests are
parametrised over it, so a method is listed and tested the day it is registered. Configs are
frozen dataclasses holding the paper's defaults; per-dataset overrides and the user's
`--set key=value` are applied at the edge (`Method.config`), never inside a run. Presets live
in one module per family (`core/methods/<family>.py`); importing this package fills the
registry with them, and `get`/`available` add the methods apps register through plugins.
"""

from __future__ import annotations

from datadistill.errors import DistillError
from datadistill.methods import (  # noqa: F401  (imported to register their presets)
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
from datadistill.methods.registry import REGISTRY, Method


def get(name: str) -> Method:
    if name not in REGISTRY:
        _load_plugins()
    if name not in REGISTRY:
        raise DistillError(
            f"unknown method '{name}'; choose one of: {', '.join(available())} (see `distill list`)"
        )
    return REGISTRY[name]


def available() -> list[str]:
    _load_plugins()
    return sorted(REGISTRY)


def _load_plugins() -> None:
    """Methods registered by apps/ (through `datadistill.plugins`), imported on first need."""
    from datadistill import plugins

    plugins.load()
