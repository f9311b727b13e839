"""The argparse pieces every `distill` command shares, apps' commands included.

Apps build their parsers with `subparsers.add_parser(...)`; argparse makes every such parser
(and every nested one) of the class the top parser names, so `Parser` is how core gives each
command, its own and the apps', defaults in `--help`, `--config FILE.yaml` and `--threads`
without the apps doing anything.
"""

from __future__ import annotations

import argparse

NO_CONFIG = frozenset({"list", "sweep"})  # nothing to configure; sweep's file is its own schema


def uninformative(default) -> bool:
    """None, False, [] and SUPPRESS say nothing in `--help` (0 does)."""
    return default is None or default is False or default == [] or default == argparse.SUPPRESS


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each option's default, except the uninformative None and False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if uninformative(action.default) or "%(default)" in text:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows defaults (subcommands inherit the class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["formatter_class"] = DefaultsFormatter
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        """An option without help still shows its default: its name becomes its help."""
        if args and str(args[0]).startswith("-") and not kwargs.get("help"):
            if not uninformative(kwargs.get("default")):
                kwargs["help"] = kwargs.get("dest") or args[-1].lstrip("-").replace("-", " ")
        return super().add_argument(*args, **kwargs)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{name: parser} of `parser`'s subcommands ({} for a leaf command)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every command that takes options, e.g. (("nas", "rank"), p)."""
    children = subcommands(parser)
    if not children:
        yield path, parser
    for name, child in children.items():
        yield from leaves(child, (*path, name))


def command_path(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[tuple, object]:
    """The command `argv` names, e.g. ("privacy", "run"), and its parser (None: none named)."""
    path, node = (), parser
    for token in argv:
        children = subcommands(node)
        if not children:
            break
        if token in children:
            path, node = (*path, token), children[token]
    return path, (node if path else None)


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def add_shared(parser: argparse.ArgumentParser) -> None:
    """--config and --threads on every leaf command that lacks its own."""
    for path, leaf in leaves(parser):
        if not path:
            continue
        have = option_strings(leaf)
        if "--threads" not in have:
            leaf.add_argument(
                "--threads",
                type=int,
                default=argparse.SUPPRESS,
                help="torch threads, intra- and inter-op (default: all cores)",
            )
        if path[0] not in NO_CONFIG and "--config" not in have:
            leaf.add_argument(
                "--config",
                dest="config_file",
                metavar="FILE.yaml",
                help="options from YAML (keys: the long option names); flags given win",
            )
