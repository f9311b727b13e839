"""Applications plug into the engine through entry points, so core never imports apps/.

An app declares, in pyproject.toml,
``[project.entry-points."datadistill.plugins"] NAME = "datadistill_apps.NAME.plugin"``.
Importing that module registers its methods (objectives such as DP gradient matching are
methods like any other), datasets (`datadistill.data.register`) or networks
(`datadistill.nets.register`); if it defines
``add_commands(subparsers) -> {command: handler}``, the `distill` CLI gains those commands.

Without packaging anything, `distill --plugin my_nets.py run ...` imports one file (or an
importable module) first, for the same registrations (`import_user`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
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


def import_user(name: str) -> ModuleType:
    """Import `name`: a .py file (by path) or a module on sys.path (`--plugin`)."""
    path = Path(name)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise DistillError(f"--plugin {name}: no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(name)
    except ImportError as e:
        raise DistillError(
            f"--plugin {name} failed to import: {e}; pass a .py file or an importable module"
        ) from e
