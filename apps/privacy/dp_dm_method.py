"""The `dp-dm` preset: DM's loss against one differentially private release (`dp_dm`).

Registered into core's method registry from `apps/privacy/plugin.py`, like `dp-dsa`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from datadistill.data import Dataset
from datadistill.distill import RunState, image_summary
from datadistill.errors import DistillError
from datadistill.methods.registry import Method, MethodConfig, net_config, register
from datadistill.objectives.distribution import network_from_seed
from datadistill.params.images import FreeImages
from datadistill.summary import Summary
from datadistill_apps.privacy import accounting, release
from datadistill_apps.privacy.dp_dm import DPMeanEmbedding
from datadistill_apps.privacy.mechanism import quiet_opacus


@dataclass(frozen=True)
class DPDMConfig(MethodConfig):
    """DP distribution matching: DP-MERF's one release (Harder et al., AISTATS 2021) of DM's
    pooled ConvNet statistics (Zhao & Bilen, WACV 2023), then DM's optimisation.

    DM's settings for the optimisation (lr_img 1, momentum 0.5, ConvNet embeddings, DSA).
    Ours: `pool` members (DM's pool default); `clip` is the clip norm C as a root mean
    square per coordinate, C = clip * sqrt(pool * embedding width), so one value fits every
    pool and width: a random ConvNet's instance-normed embeddings have an RMS of about
    0.51 (digits) and 0.57 (Fashion-MNIST) per coordinate, nearly the same for every image,
    so 0.6 clips little. `count_share` is the class counts' share of C^2 (0: counts taken
    as public). `epsilon`/`delta` calibrate sigma for one Gaussian mechanism (sample rate 1)
    with Opacus's `accountant` (PRV: within 0.01 of the exact analytic Gaussian mechanism
    for one release; RDP is looser); `noise` > 0 fixes sigma instead, and epsilon inf with
    noise 0 is the non-private limit (clipping, no noise). Images start from noise (a real
    init would copy private images). `release` names a dp-dm summary whose stored release
    to optimise against again, reading no training data and spending no further privacy;
    the mechanism and embedders are then the release's. `reuse_sums` reads the noiseless
    clipped sums an earlier release with the same data, embedders and clip left in the local
    cache (`sums_cache`): a curve over epsilons pays the passes over the data once. Pool,
    width and clip should be chosen on a validation split (held-out training images), never
    on the test set.
    """

    iterations: int = 20000
    lr_img: float = 1.0
    momentum: float = 0.5
    init: str = "noise"
    epsilon: float = 10.0
    delta: float = 1e-5
    noise: float = 0.0
    clip: float = 0.6
    count_share: float = 0.01
    accountant: str = "prv"
    pool: int = 200
    arch: str = "convnet"
    net_width: int = 0  # 0: the architecture's default (ConvNet: 128)
    net_depth: int = 0  # 0: the architecture's default (ConvNet: 3)
    dsa: bool = True
    release: str = ""
    noise_seed: int = -1  # -1: secret (a private release); >= 0: reproducible, not private
    reuse_sums: bool = True  # the noiseless sums of an earlier release with this setting


def embedding_dim(arch: str, data: Dataset, config: dict) -> int:
    """The width of one member's embedding, from a forward pass on a blank image."""
    net = network_from_seed(arch, data, 0, "cpu", **config)
    with torch.no_grad():
        return int(net.embed(torch.zeros(1, *data.spec.shape)).shape[1])


def check(cfg: DPDMConfig) -> None:
    if cfg.init != "noise":
        raise DistillError(
            f"init={cfg.init} would copy private images into the summary; DP runs start from "
            "noise (--set init=noise)"
        )
    if not cfg.clip > 0:
        raise DistillError(f"clip must be positive, got {cfg.clip}; e.g. --set clip=0.6")
    if not 0 <= cfg.count_share < 1:
        raise DistillError(
            f"count_share must be in [0, 1), got {cfg.count_share}; 0 takes the class counts "
            "as public, e.g. 0.01 privatises them"
        )
    if cfg.pool < 1:
        raise DistillError(f"pool must be at least 1, got {cfg.pool}; e.g. --set pool=200")


def build(cfg: DPDMConfig, data: Dataset, ipc: int, generator: torch.Generator):
    check(cfg)
    param = FreeImages(data, ipc, init="noise", generator=generator)
    if cfg.release:
        return param, from_release(cfg.release, data)
    with quiet_opacus(), np.errstate(divide="ignore"):
        plan = accounting.plan(
            epsilon=cfg.epsilon,
            delta=cfg.delta,
            noise=cfg.noise,
            sample_rate=1.0,
            steps=1,
            n=len(data.y_train),
            accountant=cfg.accountant,
        )
    nets = net_config(depth=cfg.net_depth, width=cfg.net_width)
    dim = embedding_dim(cfg.arch, data, nets)
    k = data.spec.num_classes
    release.warn_if_noisy(
        noise_multiplier=plan.noise_multiplier,
        pool=cfg.pool,
        dim=dim,
        per_class=len(data.y_train) / k,
    )
    dsa = data.spec.dsa_strategy if cfg.dsa else None
    embedders = release.draw_embedders(
        arch=cfg.arch, net_config=nets, dsa_strategy=dsa, size=cfg.pool, classes=k,
        generator=generator,
    )  # fmt: skip
    objective = DPMeanEmbedding(
        plan=plan,
        clip_norm=cfg.clip * math.sqrt(cfg.pool * dim),
        count_share=cfg.count_share,
        embedders=embedders,
        noise_seed=cfg.noise_seed,
        reuse_sums=cfg.reuse_sums,
        arch=cfg.arch,
        net_config=nets,
        dsa_strategy=dsa,
    )
    return param, objective


def from_release(path: str, data: Dataset) -> DPMeanEmbedding:
    """The objective over a stored release; reads only the release and the data's spec."""
    tensors, info = release.read(path)
    if info["dataset"] != data.spec.name:
        raise DistillError(
            f"the release in {path} was made on {info['dataset']}, not {data.spec.name}; "
            f"pass --dataset {info['dataset']}"
        )
    embedders, _, _ = release.from_tensors(tensors, info)
    return DPMeanEmbedding(
        plan=None,
        clip_norm=info["clip"],
        count_share=info["count_share"],
        embedders=embedders,
        stored=(tensors, {**info, "release_file": str(path)}),
        arch=info["arch"],
        net_config=info["net_config"],
        dsa_strategy=info["dsa_strategy"],
    )


def summarise(state: RunState) -> Summary:
    """The image summary, with the release under preprocess.dp_dm.* so a later run can
    optimise against it again (`--set release=`)."""
    x, y = state.param.materialize()
    summary = image_summary(
        state.method,
        state.config,
        state.data,
        state.ipc,
        state.seed,
        x.detach().cpu(),
        y.detach().cpu(),
        state.param,
        objective=state.objective.name,
        objective_extra=state.objective.summary_extra(),
        run=state.run_info(),
    )
    return dataclasses.replace(summary, preprocess=state.objective.release_tensors())


# digits (ours): 8 px images, where ConvNet-3 ends on 1x1 maps (as for dp-dsa and DC)
PER_DATASET = {"digits": {"net_depth": 2}}

METHOD = register(
    Method(
        "dp-dm",
        "distribution matching, DP",
        "Harder et al., AISTATS 2021; Zhao & Bilen, WACV 2023",
        DPDMConfig,
        build=build,
        summarise=summarise,
        per_dataset=PER_DATASET,
    )
)
