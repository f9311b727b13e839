"""Factorised presets: LinBa, HaBa, KFS, and combinations no paper ran (survey section 2.5).

Each preset pairs a factorised parameterisation (`core/params/{linba,haba,kfs}.py`) with an
objective, sized from a byte budget: `budget_bytes` 0 means the bytes of `ipc` real images
with their labels (`datadistill.budget.ipc_budget`), the cost of free images at the same IPC, so a
row of `linba` at IPC 1 is comparable with `dm` at IPC 1; `distill run --bytes N` sets
`budget_bytes` directly. The budget counts everything stored, the learnt step size of
trajectory matching included (`reserve`).

The survey's point (section 2.5) is that parameterisation and objective are orthogonal;
`kfs-mtt` (KFS's codes and decoders under trajectory matching) and `haba-dm` (HaBa's bases
and hallucinators under distribution matching) are combinations none of the papers ran,
built from existing parts with no code beyond their presets.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from datadistill.budget import FLOAT_BYTES, ipc_budget
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.methods.distribution import DMConfig, mean_embedding
from datadistill.methods.registry import Method, MethodConfig, net_config, register
from datadistill.methods.trajectory import MTT_DIGITS, MTTConfig, trajectory_objective
from datadistill.objectives.contrast import HallucinatorContrast
from datadistill.objectives.distribution import fresh_network
from datadistill.objectives.meta import BackpropThroughTime
from datadistill.objectives.trajectory import TrajectoryMatching
from datadistill.params.haba import Hallucinated
from datadistill.params.kfs import LatentDecoders
from datadistill.params.learnt_lr import WithLearntLR
from datadistill.params.linba import LinearBases

SYN_LR_BYTES = FLOAT_BYTES  # trajectory matching stores its learnt step size too


def _budget(cfg, data: Dataset, ipc: int) -> int:
    return cfg.budget_bytes or ipc_budget(data.spec, ipc)


# --- LinBa: bases + linear addressing, long-unroll BPTT with momentum --------------------


@dataclass(frozen=True)
class LinBaConfig(MethodConfig):
    """LinBa (Deng & Russakovsky, NeurIPS 2022), survey eq. (13), with DD's BPTT (eq. 4).

    From LinBa's code (princetonvisualai/RememberThePast-DatasetDistillation, its README's
    CIFAR-10 command and `compressors_bptt_interventions.yml`): 16 bases at half resolution,
    150 unrolled inner steps of SGD with lr 0.01 and momentum 0.9 (the "BPTT with momentum"
    the paper finds important), 32 examples per class per inner step, an L2 penalty of 1e-4
    on the coefficients, Xavier-uniform init, the summary optimised by SGD with lr 0.1 and
    momentum 0.5. Its config runs up to 500,000 outer steps; 5000 are ours. The real batch
    of the meta-loss (1024, DD's) is ours. The inner step size is fixed, not learnt.
    `inner_steps` is a minimum: whole passes over the examples are unrolled.
    `recompute` (ours, on by default): the exact meta-gradient without keeping the whole
    unroll's graph (`datadistill.objectives.unroll`): over Fashion-MNIST's 260 hallucinated
    images the graph adds about 560 MB of peak memory per unrolled step (about 85 GB at
    150), while recomputing holds 1.6 GB at any length for 1.1x the time
    (experiments/results/bptt_memory.json).
    """

    iterations: int = 5000
    lr_img: float = 0.1
    momentum: float = 0.5
    init: str = "random"
    budget_bytes: int = 0
    n_bases: int = 16
    downsample: int = 2
    coeff_decay: float = 1e-4
    arch: str = "convnet"
    net_width: int = 0
    net_depth: int = 0
    batch_real: int = 1024
    inner_steps: int = 150
    images_per_step: int = 32
    inner_lr: float = 0.01
    inner_momentum: float = 0.9
    learn_lr: bool = False
    recompute: bool = True
    snapshots: int = 0


def _build_linba(cfg: LinBaConfig, data: Dataset, ipc: int, generator: torch.Generator):
    if cfg.init != "random":
        raise DistillError(f"linba initialises randomly (Xavier), as LinBa; got init={cfg.init}")
    param = LinearBases.for_budget(
        data.spec,
        _budget(cfg, data, ipc),
        n_bases=cfg.n_bases,
        downsample=cfg.downsample,
        coeff_decay=cfg.coeff_decay,
        generator=generator,
    )
    m = param.images_per_class
    per_step = min(cfg.images_per_step or m, m)
    steps_per_pass = math.ceil(m / per_step)
    objective = BackpropThroughTime(
        arch=cfg.arch,
        net_config=net_config(width=cfg.net_width, depth=cfg.net_depth),
        batch_real=cfg.batch_real,
        inner_epochs=math.ceil(cfg.inner_steps / steps_per_pass),
        images_per_step=per_step,
        lr=cfg.inner_lr,
        learn_lr=cfg.learn_lr,
        momentum=cfg.inner_momentum,
        recompute=cfg.recompute,
        snapshots=cfg.snapshots,
    )
    return param, objective


# --- HaBa: bases + hallucinators, trajectory matching + the contrastive term --------------


@dataclass(frozen=True)
class HaBaConfig(MTTConfig):
    """HaBa (Liu et al., NeurIPS 2022), survey eq. (14), with MTT's loss (eq. 10).

    From HaBa's code (Huage001/DatasetFactorization, `distill_fac.py` and its CIFAR-10
    scripts): 5 hallucinators; bases from real images, SGD lr 100 and momentum 0.95;
    hallucinators SGD lr 100 (`lr_style`; ours 0.1, below); syn_lr from 0.01; 15,000
    iterations; the contrastive weights (club 0.1, cls 1, likeli 0.1, contrast 0.1) and the
    extractor's SGD (lr 1e-3, momentum 0.9). Each student step trains on as many examples
    as there are bases (HaBa's batch: every basis, one random hallucinator); `batch_syn` 0
    means that.
    syn_steps, expert_epochs, max_start_epoch and lr_lr come from MTT's table, as HaBa's
    scripts use MTT's values (they start below epoch 2 at IPC 1, MTT below 5). The outer
    momentum 0.95 also drives syn_lr (HaBa: 0.9). `downsample` 0: see core/params/haba.py.
    lr_halluc 0.1 (ours): HaBa's 100 was set for ZCA-whitened CIFAR-10 and this library has
    no ZCA; at 100 the hallucinators' weights compound (each output is enc x scale x dec):
    Fashion-MNIST IPC 1 reached pixels of ~1e5 by iteration 77, digits within one. Over 5
    iterations on Fashion-MNIST IPC 1, lr_halluc 0.1 and 1 (lr_img 100) both kept pixels
    O(1) (std 0.69, 0.62); 0.1 is also the rate that stays O(1) on digits.
    """

    iterations: int = 15000
    lr_img: float = 100.0
    momentum: float = 0.95
    budget_bytes: int = 0
    n_halluc: int = 5
    downsample: int = 0
    lr_halluc: float = 0.1
    contrast: bool = True
    lambda_club: float = 0.1
    lambda_cls: float = 1.0
    lambda_likeli: float = 0.1
    lambda_contrast: float = 0.1
    extractor_lr: float = 1e-3
    extractor_momentum: float = 0.9


def _hallucinated(cfg, data: Dataset, ipc: int, generator, *, reserve: int) -> Hallucinated:
    return Hallucinated.for_budget(
        data,
        _budget(cfg, data, ipc),
        n_halluc=cfg.n_halluc,
        downsample=cfg.downsample,
        init=cfg.init,
        lr_halluc=cfg.lr_halluc,
        reserve=reserve,
        generator=generator,
    )


def _trajectory(cfg: MTTConfig, data: Dataset, ipc: int, inner, items: int):
    """MTT's objective and syn_lr wrapper for a factorised summary of `items` stored items."""
    if not cfg.batch_syn:
        cfg = dataclasses.replace(cfg, batch_syn=items)
    objective, lr_lr = trajectory_objective(TrajectoryMatching, cfg, data, ipc)
    return WithLearntLR(inner, syn_lr=cfg.syn_lr, lr_lr=lr_lr), objective


def _build_haba(cfg: HaBaConfig, data: Dataset, ipc: int, generator: torch.Generator):
    inner = _hallucinated(cfg, data, ipc, generator, reserve=SYN_LR_BYTES)
    items = data.spec.num_classes * inner.items_per_class
    param, objective = _trajectory(cfg, data, ipc, inner, items)
    if not cfg.contrast:
        return param, objective
    extractor = fresh_network(cfg.arch, data, generator, "cpu", **objective.net_config)
    objective = HallucinatorContrast(
        objective,
        extractor=extractor,
        lambda_club=cfg.lambda_club,
        lambda_cls=cfg.lambda_cls,
        lambda_likeli=cfg.lambda_likeli,
        lambda_contrast=cfg.lambda_contrast,
        lr=cfg.extractor_lr,
        momentum=cfg.extractor_momentum,
        dsa_strategy=data.spec.dsa_strategy if cfg.dsa else None,
    )
    return param, objective


# --- KFS: latent codes + decoders, distribution matching ----------------------------------


@dataclass(frozen=True)
class KFSConfig(DMConfig):
    """KFS (Lee, Lee & Hwang, NeurIPS 2022), survey eq. (15), with DM's loss (eq. 11).

    KFS's code is not public; the decoder and its size are ours (core/params/kfs.py): 4
    decoders of width 8, codes at half resolution initialised from real images. DM's
    settings otherwise (20,000 iterations, SGD lr 1 and momentum 0.5 on the codes, 256 real
    images per class, DSA). lr_decoder 0.001 (ours). DM's embedder starts with instance norm,
    so its loss cannot see an image's scale, and a too-large decoder step compounds: on
    Fashion-MNIST IPC 1 over 10 iterations, 0.1 sent the decoded pixels to |x| 5e4 at the
    second step (loss 250 -> 2,780, 588 after 10), 0.01 to 8e3, while 0.001 kept them
    within 6.6 and the loss fell to 84. (The runaway summaries of 0.1 still trained a ConvNet,
    whose instance norm hides the scale, to 74.8% at IPC 10, and an MLP or LeNet to chance.)
    On digits (IPC 2, 20 iterations) 0.1 lowered the loss more than 0.01 and 0 and kept the
    pixels bounded, so digits keeps 0.1.
    """

    budget_bytes: int = 0
    n_decoders: int = 4
    decoder_width: int = 8
    downsample: int = 2
    lr_decoder: float = 0.001
    pool: int = 0  # fresh networks: the embedder pool was measured for DM's images only


def _latent_decoders(cfg, data: Dataset, ipc: int, generator, *, reserve: int):
    return LatentDecoders.for_budget(
        data,
        _budget(cfg, data, ipc),
        n_decoders=cfg.n_decoders,
        width=cfg.decoder_width,
        downsample=cfg.downsample,
        init=cfg.init,
        lr_decoder=cfg.lr_decoder,
        reserve=reserve,
        generator=generator,
    )


def _build_kfs(cfg: KFSConfig, data: Dataset, ipc: int, generator: torch.Generator):
    param = _latent_decoders(cfg, data, ipc, generator, reserve=0)
    return param, mean_embedding(cfg, data)


# --- combinations no paper ran: presets only ------------------------------------------------


@dataclass(frozen=True)
class KFSMTTConfig(MTTConfig):
    """KFS's codes and decoders (eq. 15) under MTT's trajectory matching (eq. 10).

    MTT's settings (table, lr_img 1000 on the codes, syn_lr from 0.01) and KFS's sizes.
    lr_decoder 0.1 (ours, `kfs`'s digits value; MTT's loss sees the scale, unlike DM's).
    `batch_syn` 0: as many examples per student step as there are codes. On digits lr_img
    10 (ours): 100, `mtt`'s digits value, started with a loss 3x higher over 20 iterations.
    """

    budget_bytes: int = 0
    n_decoders: int = 4
    decoder_width: int = 8
    downsample: int = 2
    lr_decoder: float = 0.1


def _build_kfs_mtt(cfg: KFSMTTConfig, data: Dataset, ipc: int, generator: torch.Generator):
    inner = _latent_decoders(cfg, data, ipc, generator, reserve=SYN_LR_BYTES)
    items = data.spec.num_classes * inner.items_per_class
    return _trajectory(cfg, data, ipc, inner, items)


@dataclass(frozen=True)
class HaBaDMConfig(DMConfig):
    """HaBa's bases and hallucinators (eq. 14) under DM's distribution matching (eq. 11).

    DM's settings on the bases (lr 1, momentum 0.5) and HaBa's sizes. lr_halluc 0.001 (ours):
    DM's loss cannot see an image's scale (as `kfs`), and on Fashion-MNIST IPC 1 over 10
    iterations 0.1 sent the pixels to |x| 1.3e4 (loss 379 -> 269), 0.01 to 633 (240), while
    0.001 kept them within 11 and the loss fell to 132. On digits (20 iterations) 0.1 and 1
    lowered the loss alike and 0.01 less, so digits keeps 0.1. No contrastive term.
    """

    budget_bytes: int = 0
    n_halluc: int = 5
    downsample: int = 0
    lr_halluc: float = 0.001
    pool: int = 0  # as `kfs`


def _build_haba_dm(cfg: HaBaDMConfig, data: Dataset, ipc: int, generator: torch.Generator):
    param = _hallucinated(cfg, data, ipc, generator, reserve=0)
    return param, mean_embedding(cfg, data)


FAMILY_TM = "trajectory matching"  # test_methods gives this family tiny experts
_DM_DIGITS = {"digits": {"batch_real": 128}}  # as `dm`: digits has ~143 images a class
# digits' IPC-1 budget (2,640 B) cannot hold four width-8 decoders (2,448 B) and a code per
# class; two width-4 decoders (616 B) leave room for two codes per class (ours)
_KFS_DIGITS = {"n_decoders": 2, "decoder_width": 4}

register(
    Method(
        "linba",
        "factorised (meta-model matching)",
        "Deng & Russakovsky, NeurIPS 2022",
        LinBaConfig,
        build=_build_linba,
        # digits (ours): ConvNet-2 as `dd`; 10 inner steps keep the 8 px runs quick
        per_dataset={"digits": {"net_depth": 2, "inner_steps": 10}},
    )
)
register(
    Method(
        "haba",
        FAMILY_TM,
        "Liu et al., NeurIPS 2022",
        HaBaConfig,
        build=_build_haba,
        # digits (ours): of (lr_img, lr_halluc) = 100/100, 100/1, 10/1, 10/0.1 at IPC 10 over
        # 20 iterations only 10/0.1 kept the images O(1) (std 1.4; 100/100: ~1e7, at chance)
        per_dataset={"digits": {"net_depth": 2, "lr_img": 10.0}},
    )
)
register(
    Method(
        "kfs",
        "factorised (distribution matching)",
        "Lee, Lee & Hwang, NeurIPS 2022",
        KFSConfig,
        build=_build_kfs,
        per_dataset={"digits": {**_DM_DIGITS["digits"], **_KFS_DIGITS, "lr_decoder": 0.1}},
    )
)
register(
    Method(
        "kfs-mtt",
        FAMILY_TM,
        "KFS's parameterisation x MTT's objective (no paper)",
        KFSMTTConfig,
        build=_build_kfs_mtt,
        per_dataset={"digits": {**MTT_DIGITS["digits"], **_KFS_DIGITS, "lr_img": 10.0}},
    )
)
register(
    Method(
        "haba-dm",
        "factorised (distribution matching)",
        "HaBa's parameterisation x DM's objective (no paper)",
        HaBaDMConfig,
        build=_build_haba_dm,
        per_dataset={"digits": {**_DM_DIGITS["digits"], "lr_halluc": 0.1}},
    )
)
