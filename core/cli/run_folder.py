"""A run folder (`--out`) belongs to one run: another run is refused rather than overwritten.

`distill run` writes its effective options to `run_config.yaml` in the folder before it
starts (in `--config`'s schema, so `distill run --config OUT/run_config.yaml` runs it again).
That file says whose folder it is; a folder written before it existed is identified by its
summary's metadata. What identifies a run: method, dataset, size (ipc or bytes) and seed; a
longer or shorter run of the same is the same run (that is what `--resume` continues).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from datadistill.cli import config_file
from datadistill.errors import DistillError

RUN_CONFIG = "run_config.yaml"
IDENTITY = ("method", "dataset", "ipc", "bytes", "seed")
SUMMARY_FILE = "summary.safetensors"  # datadistill.loop's names, without importing torch
CHECKPOINT_FILE = "checkpoint.safetensors"


def recorded(out: Path) -> dict | None:
    """The identity of the run already in `out` (None: no run there); {} if unrecorded."""
    path = out / RUN_CONFIG
    if path.is_file():
        values = yaml.safe_load(path.read_text()) or {}
        return {k: values.get(k) for k in IDENTITY}
    if (out / SUMMARY_FILE).is_file():
        from datadistill.summary_header import read_metadata

        meta = read_metadata(out / SUMMARY_FILE)
        return {"method": meta.get("method"), "seed": meta.get("seed", 0)}
    if (out / CHECKPOINT_FILE).is_file():
        return {}
    return None


def check(out: Path, args: argparse.Namespace, method: str) -> None:
    """Refuse a folder holding another run (unless --force) and --resume with no checkpoint."""
    force, resume = getattr(args, "force", False), getattr(args, "resume", False)
    if resume and not (out / CHECKPOINT_FILE).is_file():
        raise DistillError(
            f"--resume: {out} holds no {CHECKPOINT_FILE} to continue from; drop --resume to "
            "start afresh, or pass the --out of the run to continue"
        )
    theirs = recorded(out)
    if force or theirs is None:
        return
    ours = identity(args, method)
    if theirs == {}:
        if not resume:
            raise DistillError(
                f"--out {out} holds a checkpoint of an unrecorded run; pass --resume to continue "
                "it, --force to overwrite it, or another --out"
            )
        return
    differ = [f"{k} {theirs[k]} (now {ours[k]})" for k in theirs if theirs[k] != ours[k]]
    if differ:
        raise DistillError(
            f"--out {out} holds another run ({', '.join(differ)}); pass another --out, or "
            "--force to overwrite it"
        )


def identity(args: argparse.Namespace, method: str) -> dict:
    return {
        "method": method,
        "dataset": dataset_name(str(args.dataset)),
        "ipc": args.ipc,
        "bytes": getattr(args, "bytes", None),
        "seed": args.seed,
    }


def dataset_name(dataset: str) -> str:
    """A registered name as given; your own data by absolute path (as its spec names it)."""
    from datadistill import own_data

    return str(Path(dataset).resolve()) if own_data.is_own(dataset) else dataset


def record(out: Path, args: argparse.Namespace, method: str) -> None:
    """Write `run_config.yaml`: the effective options (`--config`'s schema) and the method."""
    values = dict(getattr(args, "effective_options", None) or {})
    values.update(identity(args, method))
    out.mkdir(parents=True, exist_ok=True)
    config_file.write(out / RUN_CONFIG, values)
