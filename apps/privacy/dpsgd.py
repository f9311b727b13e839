"""The DP-SGD baseline: a classifier trained on the private data with Opacus's PrivacyEngine.

DP-SGD (Abadi et al., CCS 2016) is what a DP summary competes with: at the same (epsilon,
delta) it trains the final model directly instead of releasing a synthetic set. Opacus's
`make_private_with_epsilon` calibrates sigma for the planned epochs, samples batches by
Poisson sampling and clips per-example gradients (defaults after Tramer & Boneh, ICLR
2021: clip 0.1, large batches, a large learning rate with momentum). Epsilon infinity is
the same recipe with clipping and no noise, as for `dp-dsa`. The Poisson batches and the
noise come from `noise.generator` (a secret seed unless `noise_seed` >= 0), the network's
initialisation from `seed`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from datadistill import nets
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.evaluate import device_name
from datadistill.results import command_line
from datadistill.train import test
from datadistill_apps.privacy import noise
from datadistill_apps.privacy.accounting import ACCOUNTANTS, check_request
from datadistill_apps.privacy.mechanism import quiet_opacus


@dataclass(frozen=True)
class DPSGDConfig:
    epsilon: float = 10.0
    delta: float = 1e-5
    epochs: int = 10
    batch_size: int = 1024  # the expected Poisson batch: q = batch_size / n
    lr: float = 2.0
    momentum: float = 0.9
    clip: float = 0.1
    arch: str = "convnet"
    net_width: int = 32
    net_depth: int = 0  # 0: the architecture's default
    accountant: str = "rdp"
    seed: int = 0
    noise_seed: int = -1  # -1: secret (a private release); >= 0: reproducible, not private


def train_dpsgd(
    data: Dataset, *, config: DPSGDConfig, device="cpu", progress: bool = True
) -> tuple[torch.nn.Module, dict]:
    """Train `config.arch` on `data`'s training set with DP-SGD; returns (model, result row).

    Raises:
        DistillError: a bad budget (see `accounting.check_request`) or architecture.
    """
    from opacus import PrivacyEngine

    n = len(data.y_train)
    q = config.batch_size / n
    check_request(epsilon=config.epsilon, delta=config.delta, noise=0, sample_rate=q, n=n)
    if config.accountant not in ACCOUNTANTS:
        raise DistillError(f"unknown accountant '{config.accountant}'; use one of {ACCOUNTANTS}")
    if config.arch not in nets.available():
        raise DistillError(f"unknown architecture '{config.arch}'; use one of {nets.available()}")
    net_config = {k: v for k, v in (("width", config.net_width), ("depth", config.net_depth)) if v}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = nets.build(config.arch, data.spec, **net_config).to(device)
    gen = noise.generator(config.noise_seed)  # Opacus's Poisson sampler and noise draw from it
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train), batch_size=config.batch_size, generator=gen
    )
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum)
    private = not math.isinf(config.epsilon)
    common = dict(module=net, optimizer=opt, data_loader=loader, max_grad_norm=config.clip)
    with quiet_opacus():
        engine = PrivacyEngine(accountant=config.accountant)
        if private:
            model, opt, loader = engine.make_private_with_epsilon(
                **common,
                target_epsilon=config.epsilon,
                target_delta=config.delta,
                epochs=config.epochs,
                noise_generator=gen,
            )
        else:
            model, opt, loader = engine.make_private(**common, noise_multiplier=0.0)
        started = time.monotonic()
        steps = _train(model, opt, loader, config, device, progress)
        seconds = time.monotonic() - started
        eps = engine.get_epsilon(config.delta) if private else math.inf
    acc = test(net, data.x_test.to(device), data.y_test.to(device))
    row = {
        "method": "dp-sgd",
        "dataset": data.spec.name,
        "ipc": None,
        "iterations": steps,
        "arch": config.arch,
        "runs": 1,
        "acc_mean": acc,
        "acc_std": 0.0,
        "accs": [acc],
        "images": n,
        "stored_bytes": None,
        "sec_per_iter": seconds / max(steps, 1),
        "peak_mem_mb": None,
        "command": command_line(),
        "seed": config.seed,
        "variant": f"epsilon={config.epsilon:g}",
        "epsilon": None if math.isinf(eps) else eps,
        "delta": config.delta,
        "noise_multiplier": opt.noise_multiplier,
        "sample_rate": q,
        "accountant": config.accountant,
        "noise": noise.mode(config.noise_seed, private=private),
        "config": {k: (None if v == math.inf else v) for k, v in asdict(config).items()},
        "distill_seconds": seconds,
        "device": device_name(device),
    }
    return net, row


def _train(model, opt, loader, config: DPSGDConfig, device, progress: bool) -> int:
    """`config.epochs` passes of Poisson batches; returns the number of steps taken."""
    steps = 0
    bar = tqdm(range(config.epochs), desc=f"dp-sgd eps={config.epsilon:g}", disable=not progress)
    for _ in bar:
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            if len(xb):
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            else:  # an empty Poisson batch still takes a (pure-noise) step
                for p in model.parameters():
                    p.grad_sample = torch.zeros((0, *p.shape), device=device)
            opt.step()
            steps += 1
    return steps
