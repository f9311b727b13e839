"""The modality registry: what `distill eval | show | export` do with each kind of summary.

Images, graphs, recommender data and text share one file format (`datadistill.summary_file`)
but not their tensors, networks or evaluation. Each modality's package
registers one `Modality` (loader, evaluator, shower, exporter, and which command options
apply to it); the CLI reads a file's modality from its header (`datadistill.summary_header`) and
dispatches here, so no command branches on the kind of data.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from datadistill.errors import DistillError, SummaryFormatError
from datadistill.results import fmt_bytes, table
from datadistill.summary_header import modality_of, read_metadata

# each module registers its modality on import (images live in core itself)
PROVIDERS = (
    "datadistill.image_modality",
    "datadistill.graph.modality",
    "datadistill.recsys.modality",
    "datadistill.text.modality",
)

# request field -> the command-line flag that sets it, for messages
EVAL_FLAGS = {
    "archs": "--arch",
    "runs": "--runs",
    "epochs": "--epochs",
    "no_dsa": "--no-dsa",
    "seed": "--eval-seed",
    "dataset": "--dataset",
    "download": "--download",
}
SHOW_FLAGS = {"output": "-o/--output", "max_per_class": "--max-per-class"}


def _given(value) -> bool:
    """An option counts as given unless it is None or an unset flag (0 is a given value)."""
    return value is not None and value is not False


@dataclass(frozen=True)
class EvalRequest:
    """`distill eval`'s options, typed at the edge; None (False for flags) means "not given",
    so each modality applies its own protocol's default."""

    archs: tuple[str, ...] | None = None
    runs: int | None = None
    epochs: int | None = None
    no_dsa: bool = False
    seed: int | None = None
    dataset: str | None = None
    download: bool = False
    data_root: Path | None = None
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.archs is not None and not self.archs:
            raise DistillError("--arch names no architecture; pass e.g. --arch convnet")
        for name in ("runs", "epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise DistillError(f"--{name} must be at least 1, got {value}")

    def given(self) -> list[str]:
        return [k for k in EVAL_FLAGS if _given(getattr(self, k))]


@dataclass(frozen=True)
class ShowRequest:
    """`distill show`'s options; None means "not given"."""

    output: Path | None = None
    max_per_class: int | None = None

    def __post_init__(self) -> None:
        if self.max_per_class is not None and self.max_per_class < 1:
            raise DistillError(f"--max-per-class must be at least 1, got {self.max_per_class}")

    def given(self) -> list[str]:
        return [k for k in SHOW_FLAGS if _given(getattr(self, k))]


@dataclass(frozen=True)
class Modality:
    """One kind of summary and what the commands do with it.

    load(path) -> summary; evaluate(summary, EvalRequest) -> result rows (`datadistill.results`
    schema); show(summary, path, ShowRequest) -> lines to print (and any file it drew);
    export(summary, path, fmt) -> the path written. `eval_options` / `show_options` name the
    request fields that apply (others are refused with the valid ones named); `table` prints
    rows as `distill run` does for this modality.
    """

    name: str
    load: Callable[[Path], object]
    evaluate: Callable[[object, EvalRequest], list[dict]]
    show: Callable[[object, Path, ShowRequest], list[str]]
    export: Callable[[object, Path, str], Path]
    eval_options: frozenset[str]
    show_options: frozenset[str] = frozenset()
    export_formats: tuple[str, ...] = ("npz", "pt")
    table: Callable[[list[dict]], str] = table

    def check_eval(self, request: EvalRequest) -> None:
        _refuse(self.name, "eval", request.given(), self.eval_options, EVAL_FLAGS)

    def check_show(self, request: ShowRequest) -> None:
        _refuse(self.name, "show", request.given(), self.show_options, SHOW_FLAGS)

    def check_export(self, fmt: str) -> None:
        if fmt not in self.export_formats:
            raise DistillError(
                f"a {self.name} summary cannot be exported as {fmt}; its formats are: "
                f"{', '.join(self.export_formats)} (pass --format {self.export_formats[0]})"
            )


def _refuse(name: str, command: str, given: Iterable[str], valid: frozenset[str], flags) -> None:
    bad = [flags[k] for k in given if k not in valid]
    if bad:
        accepted = [flags[k] for k in flags if k in valid]
        verb = "does" if len(bad) == 1 else "do"
        takes = f"takes {', '.join(accepted)}" if accepted else "takes no options"
        raise DistillError(
            f"{', '.join(bad)} {verb} not apply to a {name} summary; `distill {command}` "
            f"{takes} for it"
        )


_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
    if modality.name in _REGISTRY:
        raise ValueError(f"modality '{modality.name}' is registered twice")
    _REGISTRY[modality.name] = modality
    return modality


def _load_providers() -> None:
    for module in PROVIDERS:
        importlib.import_module(module)


def available() -> list[str]:
    _load_providers()
    return sorted(_REGISTRY)


def get(name: str) -> Modality:
    _load_providers()
    if name not in _REGISTRY:
        raise SummaryFormatError(
            f"summaries of modality '{name}' are not supported by this datadistill (it reads "
            f"{', '.join(available())}); upgrade datadistill"
        )
    return _REGISTRY[name]


def for_file(path: str | os.PathLike) -> Modality:
    """The modality of the summary file at `path`, from its header alone (tensors unread)."""
    return get(modality_of(path, read_metadata(path)))


def open_summary(path: str | os.PathLike) -> tuple[Modality, object]:
    """(its modality, the loaded summary) for the file at `path`, refused clearly if corrupt."""
    kind = for_file(path)
    return kind, kind.load(Path(path))


def describe(summary) -> list[str]:
    """What every summary's metadata says, one fact a line: the start of every `show`."""
    meta = summary.metadata()
    run = (meta.get("extra") or {}).get("run") or {}
    made = [f"seed {meta.get('seed', 0)}"]
    if run:
        made.insert(0, f"{run.get('iterations', 0)} iterations in {run.get('seconds', 0):.1f} s")
    if meta.get("created"):
        made.append(f"created {meta['created']}")
    made.append(f"datadistill {meta.get('library_version', '?')}")
    return [
        f"method:        {meta['method']} (objective {meta.get('objective') or '-'}, "
        f"parameterisation {meta.get('parameterisation') or '-'})",
        f"dataset:       {meta['dataset']}",
        f"modality:      {meta.get('modality', 'image')}",
        f"n:             {meta['n']} (ipc {meta['ipc']})",
        f"stored bytes:  {meta['stored_bytes']} ({fmt_bytes(meta['stored_bytes'])})",
        f"made:          {', '.join(made)}",
        *_privacy_line((meta.get("extra") or {}).get("privacy")),
    ]


def _privacy_line(privacy) -> list[str]:
    """A DP release's budget and where its noise came from (apps/privacy records both);
    releases written before the noise had a secret seed drew it from the recorded one."""
    if not isinstance(privacy, dict):
        return []
    eps = privacy.get("epsilon")
    spent = f"{eps:.4g}" if isinstance(eps, int | float) else "inf"
    noise = privacy.get("noise") or (
        "none (no noise: not a private release)"
        if privacy.get("private") is False
        else "drawn from the recorded seed: reproducible, not a private release"
    )
    return [f"privacy:       epsilon {spent} at delta {privacy.get('delta')}; noise: {noise}"]


def shapes(tensors: dict) -> str:
    """`name [d0, d1] dtype` for each tensor, for `show`."""
    return ", ".join(
        f"{k} {list(v.shape)} {str(v.dtype).removeprefix('torch.')}" for k, v in tensors.items()
    )


def export_tensors(tensors: dict, metadata: dict, path: str | os.PathLike, *, fmt: str) -> Path:
    """Write a non-image summary's tensors as .npz (metadata as a JSON string under
    `metadata`) or .pt (a dict of tensors plus `metadata`), for tools without safetensors."""
    import json

    import numpy as np
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu() for k, v in tensors.items()}
    if fmt == "npz":
        arrays = {k: v.numpy() for k, v in tensors.items()}
        path = path.with_name(path.name.removesuffix(".npz") + ".npz")  # what np.savez writes
        np.savez(path, metadata=np.array(json.dumps(metadata)), **arrays)
    elif fmt == "pt":
        torch.save({**tensors, "metadata": metadata}, path)
    else:  # `Modality.check_export` refuses it first; this guards direct callers
        raise DistillError(f"unknown export format '{fmt}'; use npz or pt")
    return path


def tensor_export(tensors: Callable[[object], dict]) -> Callable[[object, Path, str], Path]:
    """`Modality.export` for a summary whose file is its `tensors(summary)` + `metadata()`."""

    def export(summary, path: Path, fmt: str) -> Path:
        return export_tensors(tensors(summary), summary.metadata(), path, fmt=fmt)

    return export
