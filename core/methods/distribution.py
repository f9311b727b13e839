"""Distribution matching presets: DM (survey section 2.4, eq. 11)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.data import Dataset
from core.methods import Method, MethodConfig, register
from core.objectives.distribution import MeanEmbedding
from core.params.images import FreeImages


@dataclass(frozen=True)
class DMConfig(MethodConfig):
    """DM (Zhao & Bilen, WACV 2023): 20k iterations, lr_img 1, momentum 0.5, batch_real 256."""

    iterations: int = 20000
    batch_real: int = 256
    arch: str = "convnet"
    dsa: bool = True


def _build_dm(cfg: DMConfig, data: Dataset, ipc: int, generator: torch.Generator):
    param = FreeImages(data, ipc, init=cfg.init, generator=generator)
    strategy = data.spec.dsa_strategy if cfg.dsa else None
    objective = MeanEmbedding(arch=cfg.arch, batch_real=cfg.batch_real, dsa_strategy=strategy)
    return param, objective


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
