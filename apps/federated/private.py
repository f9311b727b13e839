"""A client's statistics upload with its own differential-privacy guarantee: dp-dm's release.

dp-dm's mechanism (`datadistill_apps.privacy.release`; DP-MERF, Harder et al., AISTATS
2021, on DM's pooled embeddings) run on one client's partition: for each of its examples,
the concatenation over the pool's members of its embedding (zeros for members whose sample
left it out, `statistics.sample`) is clipped to C sqrt(1 - s), one count coordinate
C sqrt(s) is appended, the vectors are summed per class and N(0, (sigma C)^2) is added to
every coordinate once. One Gaussian mechanism at sample rate 1, whatever q: the sample is
public randomness, so it buys no amplification. sigma is calibrated for the client's epsilon
and delta with Opacus's PRV accountant, as dp-dm does; the server's aggregation and
distillation are post-processing.

The clip C is dp-dm's rule, a root mean square per coordinate times the root of the
expected number of coordinates an example fills: C = clip sqrt(D max(1, q N)). The class
means divide the noisy sums by q times the noisy counts, the expected sample, never the
drawn one (that would release the sampled labels unnoised), clamped at 0 so a client's
noise on a class it does not hold gets no weight.

The noise on a coordinate of a global class mean is about sigma C sqrt(clients) / (q n_c),
which grows as sqrt(N / q) (for q N >= 1): the sample that saves a client's time costs the
release signal, so a private run may prefer q = 1 with a smaller pool. Small clients drown:
on digits (10 clients of about 140 examples, pool 10, q 0.89) epsilon 10 left an error 15
times the class-centred means' norm (ours, 2026-12-07).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill_apps.federated.statistics import ClassStatistics, PoolDescription, sample
from datadistill_apps.privacy import accounting, dp_dm, release
from datadistill_apps.privacy.mechanism import quiet_opacus

COUNT_SHARE = 0.01  # dp-dm's default share s of C^2 for the count coordinate
ACCOUNTANT = "prv"  # dp-dm's: within 0.01 of the analytic Gaussian mechanism for one release


@dataclass(frozen=True)
class ClientPrivacy:
    """The budget every client spends on its one upload: (epsilon, delta), and the clip as a
    root mean square per embedding coordinate (dp-dm's `clip`)."""

    epsilon: float
    delta: float = 1e-5
    clip: float = 0.6

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise DistillError(
                f"--client-epsilon must be positive, got {self.epsilon}; e.g. 10 (or leave it "
                "out for an exact upload)"
            )
        if not self.clip > 0:
            raise DistillError(f"the client clip must be positive, got {self.clip}; e.g. 0.6")


def clip_norm(privacy: ClientPrivacy, pool: PoolDescription, dim: int) -> float:
    """C = clip sqrt(D max(1, q N)) (module docstring)."""
    return privacy.clip * math.sqrt(dim * max(1.0, pool.sample_rate * pool.size))


def plan(privacy: ClientPrivacy, *, examples: int) -> accounting.Plan:
    """sigma for one release on `examples` rows (accounting's checks: a delta of 1/n or more
    is refused)."""
    with quiet_opacus(), np.errstate(divide="ignore"):
        return accounting.plan(
            epsilon=privacy.epsilon,
            delta=privacy.delta,
            noise=0.0,
            sample_rate=1.0,
            steps=1,
            n=examples,
            accountant=ACCOUNTANT,
            option="--client-",
        )


def check_clients(privacy: ClientPrivacy, sizes: list[int]) -> None:
    """Refuse, before any client is asked, a budget the smallest client would refuse."""
    accounting.check_request(
        epsilon=privacy.epsilon,
        delta=privacy.delta,
        noise=0.0,
        sample_rate=1.0,
        n=min(sizes),
        option="--client-",
    )


def private_statistics(
    data: Dataset,
    rows: torch.Tensor,
    pool: PoolDescription,
    privacy: ClientPrivacy,
    *,
    partition: int,
    generator: torch.Generator,
    device="cpu",
) -> tuple[ClassStatistics, dict]:
    """The client's upload through dp-dm's release, and the mechanism's record.

    `generator` draws the noise: `datadistill_apps.privacy.noise.generator(-1)` for a
    private release (a secret seed).
    """
    mechanism = plan(privacy, examples=len(rows))
    sigma = mechanism.noise_multiplier
    chosen = sample(pool, partition=partition, rows=rows, examples=len(data.y_train))
    embedders = pool.embedders()
    dim = release.Pass(data, embedders, device=device, rows=rows[:1]).dim()
    bound = clip_norm(privacy, pool, dim)
    clean = release.clipped_sums(
        data,
        embedders,
        clip_norm=bound,
        count_share=COUNT_SHARE,
        device=device,
        rows=rows,
        sample=chosen,
    )
    noisy = release.privatise(
        clean,
        noise_multiplier=sigma,
        clip_norm=bound,
        count_share=COUNT_SHARE,
        generator=generator,
    )
    counts = noisy.counts.clamp(min=0)
    member_counts = (pool.sample_rate * counts).expand(pool.size, -1).clone()
    weight = torch.where(member_counts > 0, member_counts, torch.ones_like(member_counts))
    means = torch.where(member_counts[:, :, None] > 0, noisy.sums / weight[:, :, None], 0.0)
    record = {
        "epsilon": dp_dm.epsilon_of(mechanism),
        "delta": privacy.delta,
        "noise_multiplier": sigma,
        "clip_norm": bound,
        "clip_rms": privacy.clip,
        "count_share": COUNT_SHARE,
        "accountant": ACCOUNTANT,
        "sample_rate": pool.sample_rate,
    }  # no exact count of the client's examples: its size is private too
    return ClassStatistics(counts=counts, member_counts=member_counts, means=means), record
