"""DP distribution matching: DM's loss against one noisy release of its real-side statistics.

The idea of DP-MERF (Harder, Adamczewski & Park, AISTATS 2021) applied to DM (Zhao & Bilen,
WACV 2023; survey eq. 11) with a fixed pool of embedders (`datadistill.objectives.
embedder_pool`): the private data are read once, at the first step, to make the release of
`datadistill_apps.privacy.release` (clipped class sums of pooled embeddings, Gaussian noise
once); the pool's members then hold the released noisy class means and core's
`MeanEmbedding` optimises the synthetic set against them for as many iterations as wanted.
Every later step, a resumed run (the checkpoint holds the release), a second optimisation
from a stored release (`release=` a dp-dm summary) and every model trained on the summary
are post-processing: epsilon stays that of the one release.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.params.base import Parameterisation
from datadistill_apps.privacy import accounting, noise, release, sums_cache
from datadistill_apps.privacy.accounting import Plan
from datadistill_apps.privacy.mechanism import quiet_opacus


def epsilon_of(plan: Plan) -> float:
    """Opacus's epsilon for one Gaussian mechanism (sample rate 1, one step) at plan.delta."""
    if not plan.private:
        return math.inf
    with quiet_opacus(), np.errstate(divide="ignore"):
        return accounting.epsilon_of(plan, [], 1)


class DPMeanEmbedding(MeanEmbedding):
    """`MeanEmbedding` over a pool whose members hold one private release's class means.

    Args:
        plan: the mechanism (sigma at sample rate 1, delta, accountant), `accounting.plan`.
        clip_norm: C, the bound on each example's concatenated vector (module
            `release`).
        count_share: s, the count coordinate's share of C^2 (0: public class counts).
        embedders: the pool's networks and draws (`release.draw_embedders`).
        stored: a release read back (`release.read`): (tensors, info); then the data are
            never read and `plan`, `clip_norm`, `count_share` are the release's.
        noise_seed: -1 draws the noise from a secret seed; >= 0 reproducible (not private).
        reuse_sums: read the noiseless clipped sums from the local cache when an earlier
            release made them (`sums_cache`), else keep them there.
        **kwargs: `MeanEmbedding`'s (arch, dsa_strategy, net_config).
    """

    name = "dp_mean_embedding"

    def __init__(
        self,
        *,
        plan: Plan | None,
        clip_norm: float,
        count_share: float,
        embedders: release.Embedders,
        stored: tuple[dict, dict] | None = None,
        noise_seed: int = -1,
        reuse_sums: bool = True,
        **kwargs,
    ):
        # a pool of class statistics in float32, one shared augmentation draw per class
        super().__init__(
            pool=embedders.size,
            pool_statistic="class",
            siamese="batch",
            target_precision="fp32",
            **kwargs,
        )
        self.plan = plan
        self.clip_norm = clip_norm
        self.count_share = count_share
        self.embedders = embedders
        self.noise_seed = noise_seed
        self.reuse_sums = reuse_sums
        self.info: dict | None = None  # the release's metadata, once made or read
        self.counts: torch.Tensor | None = None
        self.norms: torch.Tensor | None = None  # per-example norms before clipping (audit)
        if stored is not None:
            self.adopt(*stored)

    # --- the release --------------------------------------------------------------------------

    def make_release(self, data: Dataset, device) -> None:
        """Read the private data once: clip, sum, noise (module `release`)."""
        sigma, budget = self.plan.noise_multiplier, self.plan.epsilon_budget
        k = data.spec.num_classes
        settings = {"clip_norm": self.clip_norm, "count_share": self.count_share}

        def passes() -> release.ClassSums:
            return release.clipped_sums(data, self.embedders, **settings, device=device)

        if self.reuse_sums:
            clean, _ = sums_cache.cached_sums(data, self.embedders, **settings, compute=passes)
        else:
            clean = passes()
        self.norms = clean.norms
        noisy = release.privatise(
            clean,
            noise_multiplier=sigma,
            clip_norm=self.clip_norm,
            count_share=self.count_share,
            generator=noise.generator(self.noise_seed),
        )
        means = release.class_means(noisy)
        snr = release.estimated_snr(noisy, noise_multiplier=sigma, clip_norm=self.clip_norm)
        release.warn_if_measured_noisy(snr, pool=self.embedders.size)
        info = {
            "private": self.plan.private,
            "mechanism": release.MECHANISM,
            "accountant": self.plan.accountant,
            "epsilon": None if not self.plan.private else epsilon_of(self.plan),
            "delta": self.plan.delta,
            "noise_multiplier": sigma,
            "clip": self.clip_norm,  # C, as in dp-dsa's metadata
            "clip_of": "L2 norm of an example's embeddings under all pool members, "
            "concatenated, with its count coordinate",
            "count_share": self.count_share,
            "counts": "public" if self.count_share == 0 else "privatised in the release",
            "sampling": "none: every training example, once",
            "sample_rate": 1.0,
            "releases": 1,
            "steps": 1,  # mechanism releases, as dp-dsa's metadata counts them
            "stopped_by_budget": False,
            "epsilon_budget": None if math.isinf(budget) else budget,
            "history": [[sigma, 1.0, 1]] if self.plan.private else [],
            "pool": self.embedders.size,
            "embedding_dim": int(means.shape[2]),
            "classes": k,
            "arch": self.embedders.arch,
            "net_config": self.embedders.net_config,
            "dsa_strategy": self.embedders.dsa_strategy,
            "dataset": data.spec.name,
            "snr_estimate": None if math.isinf(snr) else snr,
            "noise": noise.mode(self.noise_seed, private=self.plan.private),
            **({"noise_seed": self.noise_seed} if self.noise_seed >= 0 else {}),
        }
        self.adopt(release.to_tensors(self.embedders, means, noisy.counts), info)

    def adopt(self, tensors: dict, info: dict) -> None:
        """Fill the pool with a release (made here, checkpointed, or read from a summary)."""
        self.embedders, means, self.counts = release.from_tensors(tensors, info)
        self.info = dict(info)
        self.pool.members = []
        for member in release.members(self.embedders, means):
            self.pool.add(member)

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        if self.info is None:
            self.make_release(data, next(param.parameters()).device)
        return super().loss(param, data, generator, step)

    def release_tensors(self) -> dict[str, torch.Tensor]:
        """The release for the summary's preprocess.* (empty before it is made)."""
        if self.info is None:
            return {}
        means = torch.stack([m.means for m in self.pool.members])
        tensors = release.to_tensors(self.embedders, means, self.counts)
        return {release.PREFIX + k: v for k, v in tensors.items()}

    # --- what the summary and the checkpoint record --------------------------------------------

    def summary_extra(self) -> dict:
        return {**super().summary_extra(), "privacy": dict(self.info or {})}

    def state_dict(self) -> dict:
        if self.info is None:
            return {}
        tensors = {k.removeprefix(release.PREFIX): v for k, v in self.release_tensors().items()}
        return {"release": tensors, "privacy": self.info}

    def load_state_dict(self, state: dict) -> None:
        if "release" not in state:
            return
        info = state["privacy"]
        if self.plan is not None:
            made = (info["noise_multiplier"], info["clip"], info["pool"])
            asked = (self.plan.noise_multiplier, self.clip_norm, self.embedders.size)
            if not all(math.isclose(a, b) for a, b in zip(made, asked, strict=True)):
                raise DistillError(
                    f"the checkpoint holds a release made with sigma {made[0]:.4g}, clip "
                    f"{made[1]:.4g}, pool {made[2]}, this run asks for sigma {asked[0]:.4g}, "
                    f"clip {asked[1]:.4g}, pool {asked[2]}; resume with the same settings, or "
                    "write elsewhere (--out)"
                )
        self.adopt(state["release"], info)
