"""Coreset baselines: summaries made of real images picked by a rule, not learnt.

Random, herding (Welling, ICML 2009) and k-center greedy (Sener & Savarese, ICLR 2018)
are the baselines the DC paper (Zhao et al., ICLR 2021, Table 1) compares every
distillation method against. As there, herding and k-center pick in the embedding of a
ConvNet trained on the full real data; the trained network is cached on disk, since
every IPC and seed reuses it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from datadistill import nets
from datadistill.data import Dataset
from datadistill.train import TrainConfig, train


def random_select(data: Dataset, ipc: int, generator: torch.Generator) -> torch.Tensor:
    """`ipc` training indices per class, uniformly without replacement."""
    picks = []
    for c in range(data.spec.num_classes):
        ix = data.class_index(c)
        picks.append(ix[torch.randperm(len(ix), generator=generator)[:ipc]])
    return torch.cat(picks)


def herding(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy herding: each pick brings the running mean of picks closest to the mean."""
    mu = features.mean(0)
    chosen: list[int] = []
    total = torch.zeros_like(mu)
    available = torch.ones(len(features), dtype=torch.bool, device=features.device)
    for i in range(k):
        dist = ((mu - (total + features) / (i + 1)) ** 2).sum(1)
        dist[~available] = float("inf")
        j = int(dist.argmin())
        chosen.append(j)
        available[j] = False
        total += features[j]
    return torch.tensor(chosen, dtype=torch.long)


def kcenter(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy k-center: start at the example nearest the mean, then the farthest each time."""
    first = int(((features - features.mean(0)) ** 2).sum(1).argmin())
    chosen = [first]
    dmin = ((features - features[first]) ** 2).sum(1)
    for _ in range(k - 1):
        j = int(dmin.argmax())
        chosen.append(j)
        dmin = torch.minimum(dmin, ((features - features[j]) ** 2).sum(1))
    return torch.tensor(chosen, dtype=torch.long)


def feature_select(
    data: Dataset, ipc: int, rule, *, arch: str, epochs: int, seed: int, device
) -> torch.Tensor:
    """Per class, apply `rule(features, ipc)` in a trained network's embedding."""
    net = feature_network(data, arch=arch, epochs=epochs, seed=seed, device=device)
    picks = []
    with torch.no_grad():
        for c in range(data.spec.num_classes):
            ix = data.class_index(c)
            feats = torch.cat([net.embed(data.x_train[b].to(device)) for b in ix.split(2048)])
            picks.append(ix[rule(feats, ipc).cpu()])
    return torch.cat(picks)


def cache_dir() -> Path:
    return Path(os.environ.get("DATADISTILL_CACHE", Path.home() / ".cache" / "datadistill"))


def fingerprint(data: Dataset) -> str:
    """A short hash of the training set, so subsets of one dataset (a continual-learning
    experience, a federated client) never share a cached network."""
    step = max(1, len(data.y_train) // 1024)
    h = hashlib.sha1(data.y_train.cpu().numpy().tobytes())
    h.update(data.x_train[::step].cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:10]


def feature_network(data: Dataset, *, arch: str, epochs: int, seed: int, device):
    """A network trained on the real training set, cached per (data, arch, epochs, seed)."""
    name = f"features-{data.spec.name}-{fingerprint(data)}-{arch}-e{epochs}-s{seed}.pt"
    path = cache_dir() / name
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nets.build(arch, data.spec).to(device)
    if path.exists():
        net.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        return net.eval()
    gen = torch.Generator().manual_seed(seed)
    config = TrainConfig(epochs=epochs, dsa=False)
    train(
        net,
        data.x_train.to(device),
        data.y_train.to(device),
        config=config,
        dsa_strategy=data.spec.dsa_strategy,
        generator=gen,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    return net.eval()
