"""What the server does with the summaries, as plain functions (no Flower).

The server concatenates the clients' summaries and trains one global model on the union
with core's training loop, then tests it on the central test set: the one-shot scheme
of the survey's section 4 (Sachdeva & McAuley 2023).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datadistill import evidence, nets
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.evaluate import train_config_for
from datadistill.summary import Summary
from datadistill.train import TrainConfig, test, train
from datadistill_apps.federated.config import FedConfig


def union(summaries: list[Summary], *, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All summaries' images and labels in one training set (soft if any is soft)."""
    if not summaries:
        raise DistillError("no client summary arrived; check the clients' logs and rerun")
    xs = [s.images for s in summaries]
    ys = [s.labels for s in summaries]
    if any(y.dim() == 2 for y in ys):
        ys = [
            y if y.dim() == 2 else torch.nn.functional.one_hot(y, num_classes).float() for y in ys
        ]
    return torch.cat(xs), torch.cat(ys)


def keep_training_set(summaries: list[Summary], cfg: FedConfig, data: Dataset) -> str | None:
    """Keep the union the server trains on under `cfg.keep` as one summary file (never
    replaced), so a row cites what its accuracy measured; None when `cfg.keep` is empty.
    A single summary (the statistics server's) is kept as it is, with its own metadata."""
    if not cfg.keep:
        return None
    kept = summaries[0]
    if len(summaries) > 1:
        x, y = union(summaries, num_classes=data.spec.num_classes)
        kept = Summary(
            images=x, labels=y, spec=data.spec, method=kept.method, ipc=cfg.ipc,
            stored_bytes=sum(int(s.stored_bytes) for s in summaries), seed=cfg.seed,
            config={"mode": cfg.mode, "alpha": cfg.alpha, "clients": cfg.clients,
                    "iterations": cfg.iterations, "received": len(summaries)},
        )  # fmt: skip
    name = (
        f"{cfg.mode}-alpha{cfg.alpha:g}-clients{cfg.clients}-{kept.method}-ipc{cfg.ipc}"
        f"-it{cfg.iterations}-seed{cfg.seed}"
        + (f"-eps{cfg.client_epsilon:g}" if cfg.client_epsilon else "")
        + ".safetensors"
    )
    return str(evidence.keep_summary(kept, Path(cfg.keep) / name))


def build_net(arch: str, data: Dataset, *, seed: int, device) -> torch.nn.Module:
    """A fresh model, initialised from `seed` (the same for summary and FedAvg runs)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nets.build(arch, data.spec).to(device)


def train_on_union(
    summaries: list[Summary],
    data: Dataset,
    *,
    arch: str = "convnet",
    config: TrainConfig,
    seed: int = 0,
    device="cpu",
) -> tuple[torch.nn.Module, float]:
    """Train a fresh `arch` on the union of summaries; return (net, central test accuracy)."""
    x, y = union(summaries, num_classes=data.spec.num_classes)
    config = train_config_for(summaries[0], config)
    net = build_net(arch, data, seed=seed, device=device)
    gen = torch.Generator().manual_seed(seed)
    train(
        net,
        x.to(device),
        y.to(device),
        config=config,
        dsa_strategy=data.spec.dsa_strategy,
        generator=gen,
    )
    return net, test_accuracy(net, data.x_test.to(device), data.y_test.to(device))


def test_accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Central test accuracy in [0, 1] (core's `test`)."""
    return test(net, x, y)


@dataclass
class Accounting:
    """Communication and time: payload bytes per client each way, rounds, wall time."""

    clients: int
    bytes_up: dict[int | str, int] = field(default_factory=dict)
    bytes_down: dict[int | str, int] = field(default_factory=dict)
    rounds: int = 0
    missing: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    wall_seconds: float = 0.0

    def add(self, client: int | str, *, up: int = 0, down: int = 0) -> None:
        self.bytes_up[client] = self.bytes_up.get(client, 0) + up
        self.bytes_down[client] = self.bytes_down.get(client, 0) + down

    def stop(self) -> None:
        self.wall_seconds = time.monotonic() - self.started

    def as_dict(self) -> dict:
        up, down = sum(self.bytes_up.values()), sum(self.bytes_down.values())
        return {
            "clients": self.clients,
            "rounds": self.rounds,
            "bytes_up": up,
            "bytes_down": down,
            "bytes_total": up + down,
            "bytes_up_per_client": {str(k): v for k, v in sorted(self.bytes_up.items(), key=_key)},
            "bytes_down_per_client": {
                str(k): v for k, v in sorted(self.bytes_down.items(), key=_key)
            },
            "missing_clients": sorted(self.missing),
            "wall_seconds": self.wall_seconds,
        }


def _key(item) -> tuple:
    return (isinstance(item[0], str), str(item[0]).zfill(8))
