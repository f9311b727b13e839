"""Applications plug into the engine through entry points, so core never imports apps/.

An app declares, in pyproject.toml,
``[project.entry-points."datadistill.plugins"] NAME = "datadistill_apps.NAME.plugin"``.
Importing that module registers its methods (objectives such as DP gradient matching are
methods like any other); if it defines
``add_commands(subparsers) -> {command: handler}``, the `distill` CLI gains those commands.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType

from datadistill.errors import DistillError

GROUP = "datadistill.plugins"
_LOADED: dict[str, ModuleType] = {}


def load() -> dict[str, ModuleType]:
    """Import every installed plugin once; return {name: module}."""
    for ep in entry_points(group=GROUP):
        if ep.name in _LOADED:
            continue
        try:
            _LOADED[ep.name] = importlib.import_module(ep.value)
        except ImportError as e:
            raise DistillError(
                f"plugin '{ep.name}' ({ep.value}) failed to import: {e}; reinstall the project "
                "(`pip install -e .`, or delete .venv/.installed and run `make test`)"
            ) from e
    return dict(_LOADED)
