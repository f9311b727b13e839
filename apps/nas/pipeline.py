"""One ranking study: ground truth for a sample of cells, then each proxy scored against it.

Shared by `distill nas rank` and `experiments/nas_fmnist.py`. A proxy's row reports rho,
tau and top-5 overlap against the ground truth, the mean seconds per cell it cost, and
that cost as a fraction of the ground truth's (the acceptance bar is 1/10), and bootstrap
intervals of the three figures. Zero-cost proxies score the same cells at initialisation;
stored rows are rescored from their per-cell scores without training again.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.evaluate import device_name
from datadistill.profile import measure
from datadistill.results import command_line
from datadistill.summary import Summary
from datadistill_apps.nas.agreement import agreement, bootstrap
from datadistill_apps.nas.network import NASBench201Net
from datadistill_apps.nas.scoring import (
    CellSetting,
    TrainingSet,
    cell_seed,
    cheap_subset,
    from_summary,
    full_data,
    proxy_setting,
    random_subset,
    score_cells,
)
from datadistill_apps.nas.space import Arch
from datadistill_apps.nas.zero_cost import READS, zero_cost


@dataclass(frozen=True)
class Truth:
    """Ground-truth accuracy per cell and what one cell cost (None: from the benchmark):
    seconds on `device`, and training images seen (epochs x set size), the measure of
    compute that holds across machines."""

    acc: dict[str, float]
    seconds: float | None
    label: str
    device: str | None = None
    images_seen: int | None = None


@dataclass(frozen=True)
class ProxyPlan:
    """How proxies are trained: the macro network and a budget of SGD steps per cell."""

    width: int = 8
    cells: int = 1
    steps: int = 200
    top_k: int = 5
    lr: float | None = None  # None: the summary protocol's (or the summary's own learnt) lr
    dsa: bool = True  # False: no augmentation, as the ground truth trains

    def tag(self) -> str:
        """What a proxy changed from the protocol, for its rows' variant ('' if nothing)."""
        return (f"-lr{self.lr:g}" if self.lr else "") + ("" if self.dsa else "-noaug")


def trained_truth(
    archs: list[Arch],
    data: Dataset,
    *,
    setting: CellSetting,
    seed: int,
    device,
    cache: Path | None,
    progress: bool = True,
) -> Truth:
    rows = score_cells(
        archs, full_data(data), data, setting=setting, seed=seed, device=device, cache=cache,
        progress=progress,
    )  # fmt: skip
    devices = {r["device"] for r in rows}
    return Truth(
        {r["arch"]: r["acc_mean"] for r in rows},
        statistics.fmean(r["seconds"] for r in rows),
        f"full data, {setting.label()}",
        device=devices.pop() if len(devices) == 1 else None,
        images_seen=setting.train.epochs_for(len(data.x_train)) * len(data.x_train),
    )


def proxy_sets(
    data: Dataset,
    *,
    summaries: list[tuple[Summary, str]],
    baselines: list[str],
    ipcs: list[int],
    plan: ProxyPlan,
    seed: int,
) -> list[tuple[TrainingSet, CellSetting]]:
    """Summaries as given, plus `random` (per IPC) and `cheap` baselines (equal steps)."""

    def setting(ts: TrainingSet, summary: Summary | None = None) -> CellSetting:
        return proxy_setting(
            ts, width=plan.width, cells=plan.cells, steps=plan.steps, summary=summary,
            lr=plan.lr, dsa=plan.dsa,
        )  # fmt: skip

    out = []
    for summary, path in summaries:
        if summary.spec.shape != data.spec.shape:
            raise DistillError(
                f"{path} is a {summary.spec.name} summary but the data is {data.spec.name}; "
                f"pass --dataset {summary.spec.name}"
            )
        ts = from_summary(summary, path)
        out.append((ts, setting(ts, summary)))
    for name in baselines:
        if name == "random":
            for ipc in ipcs:
                ts = random_subset(data, ipc=ipc, seed=seed)
                out.append((ts, setting(ts)))
        elif name == "cheap":  # proxy_setting keeps the truth's optimiser, whatever the plan
            ts = cheap_subset(data, steps=plan.steps, batch_size=256, seed=seed)
            out.append((ts, setting(ts)))
        else:
            raise DistillError(f"unknown baseline '{name}'; choose random or cheap")
    return out


def score_proxy(
    archs: list[Arch],
    train_set: TrainingSet,
    setting: CellSetting,
    data: Dataset,
    *,
    truth: Truth,
    plan: ProxyPlan,
    seed: int,
    device,
    cache: Path | None,
    progress: bool = True,
) -> tuple[dict, dict[str, float]]:
    """Train the cells on one proxy set; its result row and its accuracy per cell."""
    rows = score_cells(
        archs, train_set, data, setting=setting, seed=seed, device=device, cache=cache,
        progress=progress,
    )  # fmt: skip
    acc = {r["arch"]: r["acc_mean"] for r in rows}
    agree = agreement(truth.acc, acc, k=plan.top_k)
    seconds = statistics.fmean(r["seconds"] for r in rows)
    accs = list(acc.values())
    cheap = train_set.kind == "cheap-train"  # trains as the truth does, whatever the plan
    variant = f"proxy={train_set.kind}{'' if cheap else plan.tag()}"
    # seconds compare only on one machine: cells timed elsewhere than the truth get no ratio
    same_device = truth.seconds and {r["device"] for r in rows} == {truth.device}
    seen = setting.train.epochs_for(train_set.n) * train_set.n
    row = {
        "method": train_set.method, "dataset": data.spec.name, "ipc": train_set.ipc,
        "iterations": train_set.iterations, "arch": f"nas201-C{setting.width}-N{setting.cells}",
        "runs": len(rows), "acc_mean": statistics.fmean(accs), "acc_std": statistics.pstdev(accs),
        "images": train_set.n, "stored_bytes": train_set.stored_bytes, "sec_per_iter": None,
        "peak_mem_mb": max(r["peak_mem_mb"] for r in rows), "command": command_line(),
        "variant": variant, "eval_epochs": setting.train.epochs, "seed": seed,
        "spearman": agree.spearman, "kendall": agree.kendall, f"top{plan.top_k}": agree.top_k,
        "cells_scored": agree.n, "proxy_seconds": seconds, "truth_seconds": truth.seconds,
        "cost_ratio": seconds / truth.seconds if same_device else None,
        "images_seen": seen,
        "images_seen_ratio": seen / truth.images_seen if truth.images_seen else None,
        "truth": truth.label, "setting": setting.label(), "source": train_set.source,
        "steps": plan.steps, "device": rows[0]["device"],
        "proxy_acc": acc,
    }  # fmt: skip
    row.update(bootstrap(truth.acc, acc, k=plan.top_k).record())
    return row, acc


def rescore(row: dict, truth: Truth) -> dict:
    """A stored proxy row scored again against `truth` from its stored per-cell scores,
    with bootstrap intervals: no cell is trained again."""
    scores = row.get("proxy_acc") or row.get("proxy_score")
    if not scores:
        raise DistillError(f"row {row['method']} ({row['variant']}) stores no per-cell scores")
    k = next((int(key[3:]) for key in row if key[3:].isdigit() and key.startswith("top")), 5)
    agree = agreement(truth.acc, scores, k=k)
    return {
        **row, "spearman": agree.spearman, "kendall": agree.kendall, f"top{k}": agree.top_k,
        "cells_scored": agree.n, **bootstrap(truth.acc, scores, k=k).record(),
    }  # fmt: skip


def zero_cost_row(
    archs: list[Arch],
    data: Dataset,
    *,
    name: str,
    truth: Truth,
    width: int,
    cells: int,
    seed: int,
    device,
    batch_size: int = 128,
    top_k: int = 5,
) -> dict:
    """Score every cell with one zero-cost proxy, from the initialisation its ground truth
    started from, on one batch of `batch_size` training images (the same for every cell;
    128 is NASWOT's); the row carries the score per cell and the seconds per cell."""
    proxy = zero_cost(name)
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data.x_train), generator=gen)[:batch_size].to(data.x_train.device)
    x, y = data.x_train[rows].to(device), data.y_train[rows].to(device)
    scores, seconds, peak = {}, [], 0.0
    for arch in archs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cell_seed(arch, seed))  # the truth's initialisation
            net = NASBench201Net(data.spec, arch=arch, width=width, cells=cells)
        net = net.to(device)
        with measure(device) as m:
            score = proxy(net, x, y)
        if math.isnan(score):
            raise DistillError(f"{name} scored {arch} NaN; the cell cannot be ranked")
        scores[str(arch)] = score
        seconds.append(m.seconds)
        peak = max(peak, m.peak_mem_mb)
    agree = agreement(truth.acc, scores, k=top_k)
    images = 0 if READS[name] == "shape only" else batch_size
    same_device = truth.seconds and device_name(device) == truth.device
    spent = statistics.fmean(seconds)
    row = {
        "method": name, "dataset": data.spec.name, "ipc": 0, "iterations": 0,
        "arch": f"nas201-C{width}-N{cells}", "runs": len(archs), "acc_mean": None,
        "acc_std": None, "images": images, "stored_bytes": 0, "sec_per_iter": None,
        "peak_mem_mb": peak, "command": command_line(), "variant": "proxy=zero-cost",
        "eval_epochs": 0, "seed": seed, "spearman": agree.spearman, "kendall": agree.kendall,
        f"top{top_k}": agree.top_k, "cells_scored": agree.n, "proxy_seconds": spent,
        "truth_seconds": truth.seconds,
        "cost_ratio": spent / truth.seconds if same_device else None,
        "images_seen": images,
        "images_seen_ratio": images / truth.images_seen if truth.images_seen else None,
        "truth": truth.label, "setting": f"C{width}-N{cells}-init-b{batch_size}", "source": "",
        "steps": 0, "device": device_name(device), "reads": READS[name],
        "proxy_score": scores,
    }  # fmt: skip
    row.update(bootstrap(truth.acc, scores, k=top_k).record())
    return row
