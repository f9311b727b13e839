"""Trajectory matching presets: MTT and TESLA (survey section 2.3, eq. 10).

Both match a student trained on the summary to expert trajectories trained on the real data
(`datadistill.experts`; `distill experts` makes them). The learnt step size of the student (MTT's
`syn_lr`) is part of the summary: evaluation must train with it, so it lives in the
parameterisation (`WithLearntLR`) and ends up in the summary's metadata ``extra["syn_lr"]``.

Per-IPC settings (syn_steps, expert_epochs, max_start_epoch, batch_syn, lr_lr) default to 0,
meaning "the published value for this dataset and IPC" (`TABLE`, nearest tabulated IPC at or
above the asked one, else the largest), resolved at build time; `--set` overrides any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.experts import ExpertBank, default_folder, experts_command
from datadistill.methods.registry import Method, MethodConfig, net_config, register
from datadistill.objectives.trajectory import ConstantMemoryMatching, TrajectoryMatching, unflatten
from datadistill.params.images import FreeImages
from datadistill.params.learnt_lr import WithLearntLR

# (syn_steps N, expert_epochs M, max_start_epoch T+, batch_syn (0: all), lr_lr) per IPC.
# CIFAR-10: MTT's settings without ZCA whitening (this library has none), as listed under
# "Original MTT, no zca" by third-party reproductions (MCT's run_command.md); TESLA's README
# gives the same for IPC 1. CIFAR-100: MTT's README (IPC 1, with ZCA), FTD's MTT-based script
# (IPC 10) and TESLA's README (IPC 50, batch_syn 125). MTT never ran SVHN, MNIST,
# Fashion-MNIST or digits: they take CIFAR-10's values (ours); digits, 8 px and ~143 images
# a class, uses shorter segments (ours). Fashion-MNIST IPC 1 was searched on a validation
# split (MTT, 40 iterations, 1,000 training images a class held out, 2 models each;
# experiments/results/trajectory_validation.json): max_start_epoch 1 / 2 / 3 / 5 gave
# 73.7 / 74.0 / 74.0 / 64.0%, syn_steps 20 58.8% and lr_img 100 60.1% (both at start 5):
# its experts converge within a few epochs, so the segments worth matching come early.
_CIFAR10 = {1: (50, 2, 5, 0, 1e-7), 10: (30, 2, 15, 0, 1e-5), 50: (30, 2, 40, 0, 1e-5)}
TABLE: dict[str, dict[int, tuple[int, int, int, int, float]]] = {
    "cifar10": _CIFAR10,
    "cifar100": {1: (20, 3, 20, 0, 1e-5), 10: (20, 2, 40, 0, 1e-5), 50: (80, 2, 40, 125, 1e-5)},
    "svhn": _CIFAR10,
    "mnist": _CIFAR10,
    "fashion-mnist": {**_CIFAR10, 1: (50, 2, 3, 0, 1e-7)},
    "digits": {1: (20, 2, 10, 0, 1e-6), 10: (20, 2, 10, 0, 1e-6)},
}


def published(dataset: str, ipc: int) -> tuple[int, int, int, int, float]:
    """The tabulated settings for `dataset` at the nearest IPC >= `ipc` (else the largest)."""
    rows = TABLE.get(dataset, _CIFAR10)
    for key in sorted(rows):
        if ipc <= key:
            return rows[key]
    return rows[max(rows)]


@dataclass(frozen=True)
class MTTConfig(MethodConfig):
    """MTT (Cazenavette et al., CVPR 2022), survey eq. (10); defaults from its `distill.py`.

    5000 iterations, real init, SGD on the images with momentum 0.5 and on syn_lr with lr_lr
    and momentum 0.5, syn_lr initialised to the experts' learning rate 0.01 (lr_teacher),
    ConvNet-3, DSA on the student's batches. lr_img 1000 is MTT's for non-whitened CIFAR.
    Per-IPC settings at 0 come from `TABLE`. `experts` empty: `datadistill.experts.default_folder`.
    """

    iterations: int = 5000
    lr_img: float = 1000.0
    momentum: float = 0.5
    init: str = "real"
    arch: str = "convnet"
    net_depth: int = 0  # 0: the architecture's default (ConvNet: 3)
    net_width: int = 0  # 0: the architecture's default (ConvNet: 128)
    experts: str = ""
    syn_steps: int = 0
    expert_epochs: int = 0
    max_start_epoch: int = 0
    batch_syn: int = 0
    lr_lr: float = 0.0
    syn_lr: float = 0.01
    dsa: bool = True
    # true: the same gradient by TESLA's per-step accumulation (Cui et al., ICML 2023; every
    # theta_i kept, no recompute), not one graph of the whole unroll; memory: syn_steps
    # parameter vectors instead of syn_steps batches' activations. IPC 50 on Fashion-MNIST
    # at batch_syn 100 took over 10 GB the plain way; 1.17x the time (trajectory_memory.json)
    constant_memory: bool = False


@dataclass(frozen=True)
class TESLAConfig(MTTConfig):
    """TESLA (Cui et al., ICML 2023): MTT's loss and gradient in memory constant in syn_steps.

    TESLA's README uses MTT's settings (CIFAR-10 IPC 1: 50 steps, 2 expert epochs, start
    below 5, lr_img 1000, lr_lr 1e-7). Soft labels: initialised to an expert's softmax
    predictions on the initial images (TESLA's soft label assignment, which TESLA recomputes
    from the target expert every iteration and turns on for ImageNet-1K only) and then learnt
    here with lr_label / momentum_label (our choice; `soft_labels=false` gives hard labels,
    `lr_label=0` keeps the expert's labels fixed). `first_order=true` reproduces TESLA's
    released code, which drops the Hessian terms (see core/objectives/trajectory.py).
    `snapshots`: student parameter vectors kept for the backward pass, the rest recomputed
    (binomial checkpointing; 0 keeps one per step: faster, memory growing with syn_steps).
    """

    soft_labels: bool = True
    lr_label: float = 2.0
    momentum_label: float = 0.9
    first_order: bool = False
    snapshots: int = 10


def _settings(cfg: MTTConfig, dataset: str, ipc: int) -> tuple[int, int, int, int, float]:
    table = published(dataset, ipc)
    given = (cfg.syn_steps, cfg.expert_epochs, cfg.max_start_epoch, cfg.batch_syn, cfg.lr_lr)
    return tuple(g or t for g, t in zip(given, table, strict=True))


def expert_needs(cfg: MTTConfig, dataset: str, ipc: int) -> tuple[Path, dict, int]:
    """(folder, network options, epochs read) of the experts a run of `cfg` at `ipc` uses.

    Sweeps call this to train the experts every trajectory cell needs before the cells run.
    """
    network = net_config(depth=cfg.net_depth, width=cfg.net_width)
    _, m, start, _, _ = _settings(cfg, dataset, ipc)
    folder = Path(cfg.experts) if cfg.experts else default_folder(dataset, cfg.arch, network)
    return folder, network, start - 1 + m


def _experts(cfg: MTTConfig, data: Dataset, net_config: dict, epochs_needed: int) -> ExpertBank:
    name = data.spec.name
    folder = Path(cfg.experts) if cfg.experts else default_folder(name, cfg.arch, net_config)
    try:
        return ExpertBank(folder)
    except DistillError as e:
        if folder.is_dir() and any(folder.glob("expert_*.safetensors")):
            raise
        cmd = experts_command(
            name, cfg.arch, net_config, epochs=max(50, epochs_needed), folder=folder
        )
        raise DistillError(
            f"{e}; trajectory matching needs expert trajectories: run `{cmd}` first (or "
            "--set experts=FOLDER to use existing ones)"
        ) from None


@torch.no_grad()
def expert_label_logits(
    bank: ExpertBank, net: nn.Module, x: torch.Tensor, *, epoch: int, generator: torch.Generator
) -> torch.Tensor:
    """A random expert's logits at `epoch` on images `x` (TESLA's soft label assignment)."""
    i = int(torch.randint(len(bank), (1,), generator=generator))
    theta = bank.epoch(i, epoch).to(x.device)
    return functional_call(net, unflatten(net, theta), (x,)).float()


def trajectory_objective(kind, cfg: MTTConfig, data: Dataset, ipc: int, **extra):
    """The objective and the syn_lr learning rate for `cfg` at `ipc` (per-IPC table); the
    factorised presets (`datadistill.methods.factorised`) match trajectories through it too."""
    steps, m, start, batch, lr_lr = _settings(cfg, data.spec.name, ipc)
    network = net_config(depth=cfg.net_depth, width=cfg.net_width)
    objective = kind(
        experts=_experts(cfg, data, network, start - 1 + m),
        arch=cfg.arch,
        net_config=network,
        syn_steps=steps,
        expert_epochs=m,
        max_start_epoch=start,
        batch_syn=batch,
        dsa_strategy=data.spec.dsa_strategy if cfg.dsa else None,
        **extra,
    )
    objective.network(data, torch.device("cpu"))  # refuse experts of another net or dataset now
    return objective, lr_lr


def _build_mtt(cfg: MTTConfig, data: Dataset, ipc: int, generator: torch.Generator):
    if cfg.constant_memory:
        objective, lr_lr = trajectory_objective(ConstantMemoryMatching, cfg, data, ipc, snapshots=0)
    else:
        objective, lr_lr = trajectory_objective(TrajectoryMatching, cfg, data, ipc)
    images = FreeImages(data, ipc, init=cfg.init, generator=generator)
    return WithLearntLR(images, syn_lr=cfg.syn_lr, lr_lr=lr_lr), objective


def _build_tesla(cfg: TESLAConfig, data: Dataset, ipc: int, generator: torch.Generator):
    objective, lr_lr = trajectory_objective(
        ConstantMemoryMatching, cfg, data, ipc, first_order=cfg.first_order, snapshots=cfg.snapshots
    )
    images = FreeImages(data, ipc, init=cfg.init, generator=generator)
    logits = None
    if cfg.soft_labels:  # the last epoch a target can lie at: start < T+, target = start + M
        net = objective.network(data, torch.device("cpu"))
        last = objective.max_start_epoch - 1 + objective.expert_epochs
        x, _ = images.sample()
        logits = expert_label_logits(objective.experts, net, x, epoch=last, generator=generator)
    param = WithLearntLR(
        images,
        syn_lr=cfg.syn_lr,
        lr_lr=lr_lr,
        label_logits=logits,
        lr_label=cfg.lr_label,
        momentum_label=cfg.momentum_label,
    )
    return param, objective


# digits (ours, in no paper): ConvNet-2 as for DC on 8 px images; lr_img 1000 diverged there
# within 5 iterations (ipc 2, width 128), 100 lowered the held-out loss from 2.8 to 0.5 in 20.
MTT_DIGITS = {"digits": {"net_depth": 2, "lr_img": 100.0}}

register(
    Method(
        "mtt",
        "trajectory matching",
        "Cazenavette et al., CVPR 2022",
        MTTConfig,
        build=_build_mtt,
        per_dataset=MTT_DIGITS,
    )
)
register(
    Method(
        "tesla",
        "trajectory matching",
        "Cui et al., ICML 2023",
        TESLAConfig,
        build=_build_tesla,
        per_dataset=MTT_DIGITS,
    )
)
