"""Flags that several commands share, and `--set KEY=VALUE` parsing.

Public so that apps' command modules (their `plugin.py` or `cli.py`) add the same flags with
the same help as the core commands; nothing below the CLI imports this.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datadistill.errors import DistillError


def run_options(p: argparse.ArgumentParser) -> None:
    """`distill run`'s options but --method: apps' run commands (`distill privacy run`) reuse
    them and hand the parsed arguments to `datadistill.cli.run.run_method`."""
    p.add_argument(
        "--dataset",
        default="digits",
        help="a name (`distill list`), a folder of class folders of images, or an .npz with x, "
        "y (and x_test, y_test; else 20%% of each class, seed 0, is the test split)",
    )
    p.add_argument("--ipc", type=int, default=10, help="images per class")
    p.add_argument(
        "--bytes",
        type=int,
        help="storage budget in bytes, instead of --ipc (default: IPC real images' bytes)",
    )
    p.add_argument("--iterations", type=int, help="outer iterations (default: the paper's)")
    p.add_argument("--out", type=Path, help="run folder (default runs/METHOD-DATASET-ipcN-sS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--force", action="store_true", help="overwrite another run in --out")
    p.add_argument("--time-limit", type=float, help="stop cleanly after this many seconds")
    p.add_argument(
        "--checkpoint-every", type=int, default=100, help="iterations between checkpoints"
    )
    p.add_argument("--eval-every", type=int, default=0, help="quick 1-model eval every N iters")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of the method's settings (see `distill list`)",
    )
    common_options(p)


def common_options(p: argparse.ArgumentParser, dataset: bool = False) -> None:
    """--device, --data-root, --download, --quiet (and --dataset): apps' commands reuse them."""
    if dataset:
        p.add_argument("--dataset", help="test data (default: the summary's own dataset)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:0 ...")
    p.add_argument("--data-root", type=Path, help="folder with the dataset's files")
    p.add_argument("--download", action="store_true", help="let torchvision fetch missing data")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="a sweep file, e.g. experiments/sweeps/quick.yaml")
    p.add_argument(
        "--workers", type=int, help="parallel cells here (default: CPU count; 0: serial, no Ray)"
    )
    p.add_argument("--address", help="a running Ray cluster's address instead of a local one")
    p.add_argument("--threads", type=int, help="torch threads per cell (default: CPUs/workers)")
    p.add_argument("--gpus-per-task", type=float, help="GPUs per cell (default: 1/workers)")
    p.add_argument("--dry-run", action="store_true", help="list the cells to run, run none")


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` flags -> {key: value}; the method's config types the values."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise DistillError(f"--set expects KEY=VALUE, got '{pair}'")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out
