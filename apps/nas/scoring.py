"""Score cells by training them: the ground truth on the full data and every proxy alike.

Ground truth, way (b) of the issue: each sampled cell is trained on the full training set
under a stated budget (`CellSetting`) and tested on the real test set. A proxy trains the
same cells, from the same initialisation, on something cheaper (a summary, a random
subset, a few steps on real data) and is tested on the same test set. Everything goes
through `datadistill.train`, the project's one training loop. Each finished cell is appended to
a results file at once, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from datadistill.data import Dataset
from datadistill.evaluate import device_name, train_config_for
from datadistill.profile import measure
from datadistill.results import append_rows, command_line, key_of, load_rows
from datadistill.summary import Summary, count_bytes
from datadistill.train import TrainConfig, test, train
from datadistill_apps.nas.network import NASBench201Net
from datadistill_apps.nas.space import SIZE, Arch

# Ground-truth schedule, after NAS-Bench-201's short one (12 epochs, SGD from lr 0.1, batch
# 256, weight decay 5e-4): the project's loop uses plain momentum and a 10x step at half
# time instead of Nesterov and a cosine decay, and no augmentation.
TRUTH_TRAIN = TrainConfig(epochs=12, lr=0.1, batch_size=256, dsa=False)
# Proxy schedule on a summary: the summary evaluation protocol (lr 0.01, DSA), unless the
# summary carries its own settings (MTT's learnt lr), for a fixed number of SGD steps.
PROXY_TRAIN = TrainConfig(lr=0.01, batch_size=256, dsa=True)


@dataclass(frozen=True)
class CellSetting:
    """The macro network every cell is trained in, and how it is trained."""

    width: int = 8
    cells: int = 1
    train: TrainConfig = field(default_factory=lambda: TRUTH_TRAIN)

    def label(self) -> str:
        t = self.train
        aug = "dsa" if t.dsa else "noaug"
        return f"C{self.width}-N{self.cells}-e{t.epochs}-lr{t.lr:g}-b{t.batch_size}-{aug}"


@dataclass(frozen=True)
class TrainingSet:
    """What cells are trained on, and the identity its result rows carry."""

    x: torch.Tensor
    y: torch.Tensor
    method: str
    ipc: int
    kind: str  # "truth", "summary", "random-subset", "cheap-train"
    iterations: int = 0
    stored_bytes: int = 0
    source: str = ""

    @property
    def n(self) -> int:
        return len(self.x)


def full_data(data: Dataset) -> TrainingSet:
    k = data.spec.num_classes
    return TrainingSet(
        data.x_train, data.y_train, "full-data", len(data.x_train) // k, "truth",
        stored_bytes=count_bytes(data.x_train, data.y_train),
    )  # fmt: skip


def from_summary(summary: Summary, source: str = "") -> TrainingSet:
    run = summary.extra.get("run", {})
    return TrainingSet(
        summary.images, summary.labels, summary.method, summary.ipc, "summary",
        iterations=int(run.get("iterations", 0)), stored_bytes=int(summary.stored_bytes),
        source=source,
    )  # fmt: skip


def random_subset(data: Dataset, *, ipc: int, seed: int) -> TrainingSet:
    """`ipc` real images per class, the baseline every summary must beat."""
    x = data.sample_per_class(ipc, torch.Generator().manual_seed(seed))
    y = torch.arange(data.spec.num_classes).repeat_interleave(ipc).to(data.y_train.device)
    return TrainingSet(x, y, "random", ipc, "random-subset", stored_bytes=count_bytes(x, y))


def cheap_subset(data: Dataset, *, steps: int, batch_size: int, seed: int) -> TrainingSet:
    """The real images that `steps` SGD steps of one pass see: equal compute, no summary."""
    n = min(len(data.x_train), steps * batch_size)
    rows = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(seed))[:n]
    rows = rows.to(data.x_train.device)
    x, y = data.x_train[rows], data.y_train[rows]
    ipc = n // data.spec.num_classes
    return TrainingSet(x, y, "cheap-train", ipc, "cheap-train", stored_bytes=count_bytes(x, y))


def epochs_for_steps(steps: int, n: int, batch_size: int) -> int:
    """Epochs over `n` examples that make about `steps` optimiser steps (at least one)."""
    return max(1, round(steps / math.ceil(n / batch_size)))


def proxy_setting(
    train_set: TrainingSet,
    *,
    width: int,
    cells: int,
    steps: int,
    summary: Summary | None = None,
    lr: float | None = None,
    dsa: bool = True,
) -> CellSetting:
    """Train on `train_set` for about `steps` SGD steps (one pass for cheap training).

    `lr` replaces the summary protocol's learning rate (0.01, made for 300 epochs): 200
    steps at 0.01 leave the cells far from trained, so the proxy may rank how fast a cell
    starts rather than where it ends. `dsa=False` trains without augmentation, as the
    ground truth does.
    """
    base = PROXY_TRAIN if summary is None else train_config_for(summary, PROXY_TRAIN)
    if train_set.kind == "cheap-train":  # real data, one pass, the ground truth's optimiser
        base = TRUTH_TRAIN.with_(epochs=1)
    else:
        base = base.with_(epochs=epochs_for_steps(steps, train_set.n, base.batch_size))
        if lr is not None:
            base = base.with_(lr=lr)
        if not dsa:
            base = base.with_(dsa=False)
    return CellSetting(width=width, cells=cells, train=base)


def cell_seed(arch: Arch, seed: int) -> int:
    """One initialisation per (cell, seed), shared by ground truth and every proxy."""
    return seed * SIZE + arch.ordinal


def score_cells(
    archs: list[Arch],
    train_set: TrainingSet,
    data: Dataset,
    *,
    setting: CellSetting,
    seed: int,
    device: torch.device,
    cache: Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train each cell on `train_set`, test it on `data`'s test set; one row per cell.

    Rows already in `cache` (same cell, training set, setting and seed) are reused; new
    ones are appended to it as each cell finishes.
    """
    cached = {key_of(r): r for r in load_rows(cache)} if cache else {}
    x, y = train_set.x.to(device), train_set.y.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    variant = f"{train_set.kind}|{setting.label()}"
    rows = []
    bar = tqdm(archs, desc=f"{train_set.kind} {train_set.method}", disable=not progress)
    for arch in bar:
        row = {
            "method": train_set.method,
            "dataset": data.spec.name,
            "ipc": train_set.ipc,
            "iterations": train_set.iterations,
            "arch": str(arch),
            "eval_epochs": setting.train.epochs,
            "seed": seed,
            "variant": variant,
        }
        if key_of(row) in cached:
            rows.append(cached[key_of(row)])
            continue
        s = cell_seed(arch, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            net = NASBench201Net(data.spec, arch=arch, width=setting.width, cells=setting.cells)
        net = net.to(device)
        with measure(device) as m:
            train(
                net, x, y, config=setting.train, dsa_strategy=data.spec.dsa_strategy,
                generator=torch.Generator().manual_seed(s),
            )  # fmt: skip
        acc = test(net, x_test, y_test)
        row.update({
            "runs": 1, "acc_mean": acc, "acc_std": 0.0, "images": train_set.n,
            "stored_bytes": train_set.stored_bytes, "sec_per_iter": None,
            "peak_mem_mb": m.peak_mem_mb, "command": command_line(), "seconds": m.seconds,
            "kind": train_set.kind, "setting": setting.label(), "source": train_set.source,
            "device": device_name(device), "params": sum(p.numel() for p in net.parameters()),
        })  # fmt: skip
        if cache:
            append_rows(cache, [row])
        rows.append(row)
        bar.set_postfix(acc=f"{100 * acc:.1f}", s=f"{m.seconds:.1f}")
    return rows
