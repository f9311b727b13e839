"""Name -> constructor table, so configs and CLIs can pick a network by string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..spec import DataSpec

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[F], F]:
    """Decorator adding a factory ``(spec, **config) -> nn.Module`` under ``name``."""

    def deco(factory: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"architecture '{name}' is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def build(name: str, spec: DataSpec, **config: Any) -> nn.Module:
    """Construct architecture ``name`` for images of ``spec``; ``config`` goes to the factory."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown architecture '{name}'; choose one of: {', '.join(available())}")
    return factory(spec, **config)
