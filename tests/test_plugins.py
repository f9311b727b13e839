"""Apps reach the engine through entry points: methods and CLI commands, no import of apps/."""

import sys
import types
from dataclasses import dataclass

import pytest

from datadistill import methods, plugins
from datadistill.cli import main as cli
from datadistill.errors import DistillError


@dataclass
class FakeEntryPoint:
    name: str
    value: str


@pytest.fixture
def fake_plugin(monkeypatch):
    module = types.ModuleType("fake_app_plugin")
    calls = []

    def add_commands(sub):
        sub.add_parser("fake", help="a command from a plugin")
        return {"fake": lambda args: calls.append(args.command)}

    module.add_commands = add_commands
    monkeypatch.setitem(sys.modules, "fake_app_plugin", module)
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [FakeEntryPoint("fake", "fake_app_plugin")]
    )
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))
    return calls


def test_plugin_commands_join_the_cli(fake_plugin):
    assert cli.main(["fake"]) == 0
    assert fake_plugin == ["fake"]


def test_plugins_load_once(fake_plugin):
    assert plugins.load().keys() == {"fake"}
    assert plugins.load()["fake"] is sys.modules["fake_app_plugin"]


def test_broken_plugin_names_itself(monkeypatch):
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [FakeEntryPoint("gone", "no_such_module_x")]
    )
    monkeypatch.setattr(plugins, "_LOADED", {})
    with pytest.raises(DistillError, match="plugin 'gone'.*reinstall"):
        methods.available()
