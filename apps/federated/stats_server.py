"""The server of the statistics scheme: distil a global summary against aggregated statistics.

DM's pooled objective (`MeanEmbedding` with an `EmbedderPool`) reads the real data only
through its members' class means; loaded with the clients' aggregated means, every step
computes only the synthetic side, so the server distils as if it held the union of the
partitions while holding no image. The summary starts from noise (the server has no real
image to start from), so it needs a far larger lr_img than DM's 1 (`FedConfig.server_lr`),
and runs through core's one loop (`datadistill.distill.run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from datadistill import distill, methods
from datadistill.methods.distribution import DMConfig
from datadistill.methods.registry import Method
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.params.images import FreeImages
from datadistill.spec import DataSpec
from datadistill.summary import Summary
from datadistill_apps.federated import local
from datadistill_apps.federated.statistics import ClassStatistics, PoolDescription


@dataclass(frozen=True)
class StatisticsData:
    """What the server holds in place of a training set: the spec and the global counts.

    The counts are the partitions' examples a class (noisy under a private upload), not a
    member's sample: `check_ipc` asks how large each class is, and the samples' sizes vary
    from member to member by chance.
    """

    spec: DataSpec
    counts: tuple[int, ...]

    def class_counts(self) -> list[int]:
        return list(self.counts)


def dm_batch_real(spec: DataSpec) -> int:
    """DM's real batch a class for the dataset (the sample rate's default aims at it)."""
    return methods.get("dm").config(spec.name, {}).batch_real


def dm_config(spec: DataSpec, pool: PoolDescription, overrides: dict | None = None) -> DMConfig:
    """DM's defaults for the dataset, with the pool the clients computed statistics for."""
    fixed = {"init": "noise", "siamese": "batch", "pool": pool.size, "pool_statistic": "class"}
    return methods.get("dm").config(spec.name, {**(overrides or {}), **fixed})


def statistics_method(pool: PoolDescription, stats: ClassStatistics) -> Method:
    """DM whose pool is loaded with `stats` instead of being filled from real images."""

    def build(cfg: DMConfig, data, ipc: int, generator: torch.Generator):
        param = FreeImages(data, ipc, init=cfg.init, generator=generator)
        objective = MeanEmbedding(
            arch=pool.arch,
            batch_real=cfg.batch_real,
            dsa_strategy=pool.dsa_strategy or None,
            siamese=cfg.siamese,
            pool=pool.size,
            pool_statistic=cfg.pool_statistic,
        )
        objective.load_state_dict(pool.tensors() | {"pool_means": stats.means})
        return param, objective

    return Method(
        "dm-statistics",
        "distribution matching",
        "Zhao & Bilen, WACV 2023",
        DMConfig,
        build=build,
    )


def distil_from_statistics(
    spec: DataSpec,
    pool: PoolDescription,
    stats: ClassStatistics,
    *,
    ipc: int,
    iterations: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    overrides: dict | None = None,
    out_dir: Path | None = None,
) -> Summary:
    """The global summary, `ipc` images a class, distilled against aggregated `stats`;
    with `out_dir` it checkpoints there and a rerun resumes (`local.resumable`)."""
    data = StatisticsData(spec, tuple(int(c) for c in stats.counts))
    options = local.resumable(seed=seed, iterations=iterations, out_dir=out_dir, progress=False)
    return distill.run(
        statistics_method(pool, stats),
        data,
        ipc,
        config=dm_config(spec, pool, overrides),
        options=options,
        device=device,
        out_dir=out_dir,
    )
