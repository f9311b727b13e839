"""`--config FILE.yaml`: a command's options from a file, one file per experiment.

The keys are the command's long option names (`time-limit` or `time_limit`); `set:` may be a
mapping (`set: {lr_img: 0.5}`) or a list of KEY=VALUE. The values become the parser's
defaults before it parses, so the file goes through the same types and checks as the flags
and any flag given on the command line wins. `write` saves the effective options in the same
schema, so a run's `run_config.yaml` is itself a valid `--config`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from datadistill import atomic
from datadistill.errors import DistillError

SKIP = frozenset({"help", "config_file", "threads"})  # not a run's settings


def find(argv: list[str]) -> Path | None:
    """The FILE of `--config FILE` (or `--config=FILE`) in `argv`, if any."""
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if token.startswith("--config="):
            return Path(token.split("=", 1)[1])
    return None


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """{long option name without dashes: action} of a command's options."""
    out = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest not in SKIP:
            out[longs[0][2:]] = action
    return out


def read(path: Path) -> dict:
    if not path.is_file():
        raise DistillError(f"--config {path}: no such file; pass a YAML file of options")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise DistillError(f"--config {path} is not valid YAML{where}; fix the file") from None
    if not isinstance(values, dict):
        raise DistillError(f"--config {path} must hold a mapping of option: value")
    return values


def apply(parser: argparse.ArgumentParser, path: Path) -> None:
    """Make the file's values `parser`'s defaults (flags on the command line still win)."""
    known = options(parser)
    values = {str(k).replace("_", "-"): v for k, v in read(path).items()}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DistillError(
            f"--config {path}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(known)}"
        )
    for name, value in values.items():
        action = known[name]
        parser.set_defaults(**{action.dest: typed(name, action, value, path)})
        action.required = False  # given by the file


def typed(name: str, action: argparse.Action, value, path: Path):
    """`value` as the flag `--name` would have made it."""
    if isinstance(action, argparse._StoreConstAction):  # store_true / store_false
        if not isinstance(value, bool):
            raise DistillError(f"--config {path}: {name} must be true or false, got {value!r}")
        return value if action.const is True else not value
    if isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*"):
        if isinstance(value, dict):
            value = [f"{k}={scalar(v)}" for k, v in value.items()]
        items = value if isinstance(value, list) else [value]
        return [one(name, action, v, path) for v in items]
    return None if value is None else one(name, action, value, path)


def scalar(value) -> str:
    """A YAML value as its `--set` text (YAML's true is `--set k=true`)."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def one(name: str, action: argparse.Action, value, path: Path):
    if isinstance(value, bool) and action.type in (None, str):
        value = str(value).lower()
    if action.type is not None:
        try:
            exact = isinstance(action.type, type) and isinstance(value, action.type)
            value = value if exact else action.type(str(value))
        except (TypeError, ValueError):
            raise DistillError(
                f"--config {path}: {name}={value!r} is not a valid "
                f"{getattr(action.type, '__name__', 'value')}"
            ) from None
    elif not isinstance(value, str):
        value = str(value)
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise DistillError(f"--config {path}: {name}={value!r}; choose from {choices}")
    return value


def effective(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The parsed options of `parser`'s command in `--config`'s schema (`set` as a mapping)."""
    out = {}
    for name, action in options(parser).items():
        value = getattr(args, action.dest, None)
        if isinstance(value, Path):
            value = str(value)
        if name == "set" and all("=" in pair for pair in value or []):
            value = dict(pair.split("=", 1) for pair in value or [])
        out[name] = value
    return out


def write(path: Path, values: dict) -> None:
    atomic.write_bytes(path, yaml.safe_dump(values, sort_keys=False).encode())
