"""Distribution matching presets: DM (survey section 2.4, eq. 11), CAFE (eq. 12) and IT-GAN
(DM's loss on the latents of a frozen generator, section 2.5)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from datadistill import evidence
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.generators.store import read_meta, trained_on
from datadistill.generators.trainer import ensure_generator
from datadistill.methods.registry import Method, MethodConfig, register
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.objectives.layerwise import LayerwiseAlignment
from datadistill.params.generator_latents import GeneratorLatents
from datadistill.params.images import FreeImages

DEFAULT_POOL = 200


@dataclass(frozen=True)
class DMConfig(MethodConfig):
    """DM (Zhao & Bilen, WACV 2023): 20k iterations, lr_img 1, momentum 0.5, batch_real 256."""

    iterations: int = 20000
    batch_real: int = 256
    arch: str = "convnet"
    dsa: bool = True
    # the real side's (ours): see datadistill.objectives.distribution
    target_precision: str = "auto"
    siamese: str = "batch"  # DSA draws: "batch" as DM's code, or "example" (datadistill.augment)
    # ours: reuse N embedders and their real class means (datadistill.objectives.embedder_pool);
    # 0 draws a fresh network every step, as DM does. 200: Fashion-MNIST IPC 10, 2,000
    # iterations, 81.44 +- 0.33% against fresh networks' 81.74 +- 0.39 (same seed), within one
    # standard deviation, at a fifth of the step's cost (experiments/results/pool_*.json)
    pool: int = DEFAULT_POOL
    pool_statistic: str = "batch"


def mean_embedding(cfg: DMConfig | ITGANConfig, data: Dataset) -> MeanEmbedding:
    """DM's loss with a preset's settings (DM, IT-GAN, KFS and HaBa-DM share it).

    A pool larger than the run is clamped to the iterations (its extra members would never
    be drawn), with a warning when the size was asked for; the default's clamp is silent,
    since a pool visited once is fresh-network DM exactly.
    """
    pool = cfg.pool
    if pool > cfg.iterations and pool != DEFAULT_POOL:
        warnings.warn(
            f"pool={pool} is larger than the run's {cfg.iterations} iterations; using "
            f"pool={cfg.iterations} (every step a new member, as fresh networks)",
            stacklevel=2,
        )
    pool = min(pool, cfg.iterations)
    return MeanEmbedding(
        pool=pool,
        pool_statistic=cfg.pool_statistic,
        arch=cfg.arch,
        batch_real=cfg.batch_real,
        dsa_strategy=data.spec.dsa_strategy if cfg.dsa else None,
        target_precision=cfg.target_precision,
        siamese=cfg.siamese,
    )


def _build_dm(cfg: DMConfig, data: Dataset, ipc: int, generator: torch.Generator):
    return FreeImages(data, ipc, init=cfg.init, generator=generator), mean_embedding(cfg, data)


# digits has ~143 images a class: 256 per class would draw each one about twice
register(
    Method(
        "dm",
        "distribution matching",
        "Zhao & Bilen, WACV 2023",
        DMConfig,
        build=_build_dm,
        per_dataset={"digits": {"batch_real": 128}},
    )
)


@dataclass(frozen=True)
class CAFEConfig(MethodConfig):
    """CAFE (Wang et al., CVPR 2022), its reference code's defaults.

    lr_img 0.1 (momentum 0.5), halved at 60%, 80% and 90% of the run; batch_real 256; the
    network's SGD lr 0.01 on batches of 256; layer weights 0.1, 0.1, 1 and 2 for the
    embedding (see `datadistill.objectives.layerwise`); beta 0.01; watchers of 10 accuracies on 128
    real images a class with lambda_1 0.04 and lambda_2 0.03. The reference runs 2000
    networks of at least 10 matching steps each: 20000 steps (our `iterations`) at least.
    The two loop caps are ours. `layer_weights` is comma-separated, one per feature map.
    """

    iterations: int = 20000
    lr_img: float = 0.1
    batch_real: int = 256
    batch_train: int = 256
    lr_net: float = 0.01
    layer_weights: str = "0.1,0.1,1,2"
    discrimination_weight: float = 0.01
    window: int = 10
    outer_tolerance: float = 0.04
    inner_tolerance: float = 0.03
    watch_batch: int = 128
    max_steps_per_net: int = 100
    max_inner_epochs: int = 50
    arch: str = "convnet"
    net_width: int = 0  # 0: the architecture's default (ConvNet: 128)
    dsa: bool = True
    siamese: str = "batch"


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(w) for w in text.split(","))
    except ValueError:
        raise DistillError(
            f"layer_weights '{text}' is not a comma-separated list of numbers; e.g. "
            "--set layer_weights=0.1,0.1,1,2"
        ) from None


def _build_cafe(cfg: CAFEConfig, data: Dataset, ipc: int, generator: torch.Generator):
    param = FreeImages(data, ipc, init=cfg.init, generator=generator)
    objective = LayerwiseAlignment(
        arch=cfg.arch,
        batch_real=cfg.batch_real,
        dsa_strategy=data.spec.dsa_strategy if cfg.dsa else None,
        siamese=cfg.siamese,
        layer_weights=_weights(cfg.layer_weights),
        discrimination_weight=cfg.discrimination_weight,
        lr_net=cfg.lr_net,
        batch_train=cfg.batch_train,
        window=cfg.window,
        outer_tolerance=cfg.outer_tolerance,
        inner_tolerance=cfg.inner_tolerance,
        watch_batch=cfg.watch_batch,
        max_steps_per_net=cfg.max_steps_per_net,
        max_inner_epochs=cfg.max_inner_epochs,
        total_steps=cfg.iterations,
        net_config={"width": cfg.net_width} if cfg.net_width else None,
    )
    return param, objective


# digits: ~143 images a class, as for DM
register(
    Method(
        "cafe",
        "distribution matching",
        "Wang et al., CVPR 2022",
        CAFEConfig,
        build=_build_cafe,
        per_dataset={"digits": {"batch_real": 128, "watch_batch": 64}},
    )
)


@dataclass(frozen=True)
class ITGANConfig(MethodConfig):
    """IT-GAN (Zhao & Bilen, 2022): latents of a frozen generator, learnt with DM's loss.

    DM's settings for the loss (batch_real 256, ConvNet embedding, DSA, 20k iterations,
    momentum 0.5); latents initialised by inverting real images (IT-GAN). Ours: the
    generator (a conditional VAE, `datadistill.generators`), its inversion (`invert_steps` of
    reconstruction descent from the encoder's mean) and the latents' lr_img, chosen so a
    latent step moves the decoded image about as far as DM's pixel step (lr 1): a step of lr
    along a decoder direction of gain s moves the image lr * s^2. On a Fashion-MNIST decoder
    mean s^2 is ~3.4 and the largest ~43, hence 0.1; on digits ~0.04 and ~0.5, hence 10.
    `generator` is the generator file ("" for generators/DATASET.safetensors); when it is
    missing the preset trains one for `generator_epochs` (0: the default) unless
    `train_generator` is false, which makes it an error naming the command instead.
    """

    iterations: int = 20000
    lr_img: float = 0.1
    init: str = "invert"
    invert_steps: int = 100
    batch_real: int = 256
    arch: str = "convnet"
    dsa: bool = True
    generator: str = ""
    generator_epochs: int = 0
    train_generator: bool = True
    target_precision: str = "auto"
    siamese: str = "batch"
    pool: int = 0
    pool_statistic: str = "batch"


def _build_itgan(cfg: ITGANConfig, data: Dataset, ipc: int, generator: torch.Generator):
    vae, path = ensure_generator(
        data,
        path=cfg.generator or None,
        epochs=cfg.generator_epochs or None,
        train=cfg.train_generator,
    )
    meta = read_meta(path)
    info = {
        "path": str(path),
        "sha256": evidence.sha256(path),
        "epochs": meta["epochs_done"],
        "trained_on": trained_on(meta),
        "train_seconds": meta.get("train_seconds"),
        "file_bytes": path.stat().st_size,
    }
    param = GeneratorLatents(
        data,
        ipc,
        vae=vae,
        init=cfg.init,
        invert_steps=cfg.invert_steps,
        generator=generator,
        generator_info=info,
    )
    return param, mean_embedding(cfg, data)


register(
    Method(
        "itgan",
        "distribution matching",
        "Zhao & Bilen, NeurIPS 2022 workshop (arXiv 2204.07513)",
        ITGANConfig,
        build=_build_itgan,
        per_dataset={"digits": {"batch_real": 128, "lr_img": 10.0}},
    )
)
