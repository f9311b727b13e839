"""What `distill list` and `distill --help` show, kept in `catalog.json` so that they start
without importing torch, the methods or the apps (seconds on a small machine).

The file is a copy of the live registries (methods with their settings, datasets,
architectures, modalities) and of the apps' command names; `tests/test_cli_first_hour.py`
fails when it differs from them, and `python -m datadistill.catalog` writes it again. When an
installed plugin is not in the file (a third-party app), `current()` reads the live registries
instead, so nothing is ever missing, only slower.
"""

from __future__ import annotations

import argparse
import json
from importlib.metadata import entry_points
from pathlib import Path

from datadistill import atomic

FILE = Path(__file__).with_name("catalog.json")
GROUP = "datadistill.plugins"  # the entry-point group of datadistill.plugins


def installed_plugins() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def stored() -> dict | None:
    """The committed catalogue, or None when it is absent or does not cover every plugin."""
    if not FILE.is_file():
        return None
    data = json.loads(FILE.read_text())
    return data if set(installed_plugins()) <= set(data.get("plugins", [])) else None


def current() -> dict:
    """The committed catalogue when it covers the installed plugins, else the live one."""
    return stored() or live()


def live() -> dict:
    """The catalogue from the registries themselves (imports torch, methods and plugins)."""
    from datadistill import data as datasets
    from datadistill import methods, modality, nets, plugins

    plugins.load()
    rows = []
    for name in methods.available():
        m = methods.get(name)
        settings = ", ".join(f"{k}={v}" for k, v in vars(m.config_cls()).items())
        rows.append(dict(name=name, modality=m.modality, family=m.family, paper=m.paper,
                         settings=settings))  # fmt: skip
    sets = []
    for name in datasets.available():
        s = datasets.get_spec(name)
        sets.append(dict(name=name, classes=s.num_classes, shape=list(s.shape)))
    return {
        "methods": rows,
        "modalities": modality.available(),
        "datasets": sets,
        "architectures": nets.available(),
        "plugins": installed_plugins(),
        "commands": plugin_commands(),
    }


def plugin_commands() -> dict[str, str]:
    """{command: help} of the commands the installed plugins add to `distill`."""
    from datadistill import plugins

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    for module in plugins.load().values():
        if hasattr(module, "add_commands"):
            module.add_commands(sub)
    return {a.dest: a.help or "" for a in sub._choices_actions}


def write() -> None:
    atomic.write_bytes(FILE, (json.dumps(live(), indent=1) + "\n").encode())


if __name__ == "__main__":
    write()
    print(f"wrote {FILE}")
