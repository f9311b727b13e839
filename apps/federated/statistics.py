"""One-round federated distribution matching: the pool description, client statistics, and
their aggregation, as plain functions (no Flower).

DM's objective (Zhao & Bilen, WACV 2023; survey eq. 11) reads the real data only through
class-mean embeddings, and a global class mean is the count-weighted mean of the clients'
class means. So the server fixes a pool of embedders (`datadistill.objectives.embedder_pool`:
a network seed and one augmentation draw per class each) and broadcasts its description;
each client uploads, once, its class counts and its class means under every member; the
server aggregates them by counts and distils against them (`stats_server`). No tensor with
an image's shape leaves a client.

Every image of a class goes through one augmentation draw per member ("batch" siamese
mode, DM's code), so the statistic does not depend on the order of a client's images.

Central pooled DM fills each member from one real batch (256 images a class), not the
whole class; embedding every image under every member costs a client about 190 s a member
on Fashion-MNIST on a CPU. So each member reads a Bernoulli(q) sample of a client's rows
(`sample`), drawn from public randomness: a generator seeded by the member's seed and the
partition id, one uniform per training row, so an example's membership depends on that
example alone (what the private upload's bound needs, `release`). The default q makes the
expected sample over all clients DM's batch_real images a class (`default_sample_rate`).
The upload then carries, per member, the means over its sample and the sample's counts;
the server weights each member's means by that member's counts, which gives exactly the
means over the union of the clients' samples. At q = 1 every row is read: the statistics
a "class"-statistic pool computes on the union of the partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from datadistill.augment import DSA, AugParams
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.distribution import draw_seed
from datadistill_apps.privacy import release


@dataclass(frozen=True)
class PoolDescription:
    """What a client needs to rebuild the server's pool: networks from seeds, and draws.

    Tensors are in `EmbedderPool.state_dict`'s layout (`pool_seeds` [N], `pool_ops` [N, K],
    `pool_values` [N, K, 1, ...]), so the server loads them beside the aggregated means.
    `sample_rate` is q, each member's Bernoulli inclusion probability for a row (1: all).
    """

    arch: str
    dsa_strategy: str  # empty: no augmentation
    seeds: torch.Tensor
    ops: torch.Tensor | None = None
    values: torch.Tensor | None = None
    sample_rate: float = 1.0

    @property
    def size(self) -> int:
        return len(self.seeds)

    @property
    def aug(self) -> DSA | None:
        return DSA(self.dsa_strategy) if self.dsa_strategy else None

    def draws(self, member: int) -> list[AugParams] | None:
        """Member `member`'s draw for each class, or None without augmentation."""
        aug = self.aug
        if aug is None:
            return None
        return [
            AugParams(aug.ops[int(o)], v)
            for o, v in zip(self.ops[member], self.values[member], strict=True)
        ]

    def embedders(self) -> release.Embedders:
        """The pool in the private release's terms (`release.Pass` reads data with it)."""
        draws = None if self.aug is None else [self.draws(m) for m in range(self.size)]
        seeds = [int(s) for s in self.seeds.tolist()]
        return release.Embedders(self.arch, {}, self.dsa_strategy or None, seeds, draws)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"pool_seeds": self.seeds}
        if self.ops is not None:
            out |= {"pool_ops": self.ops, "pool_values": self.values}
        return out


def default_sample_rate(*, batch_real: int, num_classes: int, examples: int) -> float:
    """q = min(1, batch_real K / n): DM's real batch, in expectation, of each class summed
    over all clients (Fashion-MNIST: 256 x 10 / 60,000 = 0.0427; digits: 128 x 10 / 1,437
    = 0.89)."""
    return min(1.0, batch_real * num_classes / examples)


def describe_pool(
    *,
    members: int,
    seed: int,
    num_classes: int,
    arch: str = "convnet",
    dsa_strategy: str = "",
    sample_rate: float = 1.0,
) -> PoolDescription:
    """`members` network seeds and per-class draws, all derived from `seed`.

    In each member the order is fresh DM's without its real batch: network seed, then one
    shared draw per class.
    """
    if members < 1:
        raise DistillError(f"--pool {members}: the statistics scheme needs at least 1 member")
    if not 0 < sample_rate <= 1:
        raise DistillError(f"--sample-rate {sample_rate} must be in (0, 1]; 1 reads every row")
    gen = torch.Generator().manual_seed(seed)
    aug = DSA(dsa_strategy) if dsa_strategy else None
    seeds, ops, values = [], [], []
    for _ in range(members):
        seeds.append(draw_seed(gen))
        if aug is not None:
            draws = [aug.draw(1, gen, shared=True) for _ in range(num_classes)]
            ops.append([aug.ops.index(d.op) for d in draws])
            values.append(torch.stack([d.values for d in draws]))
    return PoolDescription(
        arch=arch,
        dsa_strategy=dsa_strategy,
        seeds=torch.tensor(seeds, dtype=torch.int64),
        ops=torch.tensor(ops, dtype=torch.int64) if aug is not None else None,
        values=torch.stack(values) if aug is not None else None,
        sample_rate=float(sample_rate),
    )


@dataclass(frozen=True)
class ClassStatistics:
    """A client's upload: its examples per class [K]; per member, the examples of each class
    its mean is over [N, K] (the member's sample; all K at q = 1) and class-mean embeddings
    [N, K, D] (zeros where that count is 0)."""

    counts: torch.Tensor
    member_counts: torch.Tensor
    means: torch.Tensor


def sample(pool: PoolDescription, *, partition: int, rows: torch.Tensor, examples: int):
    """Which of `rows` each member reads, bool [N, len(rows)]; None at q = 1 (every row).

    Member m's generator is seeded by (its network seed, `partition`) and draws one uniform
    per training row (`examples` of them), so a row's membership depends on its index only.
    """
    if pool.sample_rate >= 1:
        return None
    out = torch.zeros(pool.size, len(rows), dtype=torch.bool)
    for m, seed in enumerate(pool.seeds.tolist()):
        state = np.random.SeedSequence([int(seed), partition]).generate_state(1, np.uint64)
        gen = torch.Generator().manual_seed(int(state[0]) & (2**63 - 1))
        out[m] = torch.rand(examples, generator=gen)[rows] < pool.sample_rate
    return out


def client_statistics(
    data: Dataset, rows: torch.Tensor, pool: PoolDescription, *, partition: int = 0, device="cpu"
) -> ClassStatistics:
    """Counts and per-member class means of the partition `rows` over each member's sample
    (`sample`), in float32."""
    if len(rows) == 0:
        raise DistillError("this client's partition is empty; use fewer clients or larger alpha")
    k = data.spec.num_classes
    chosen = sample(pool, partition=partition, rows=rows, examples=len(data.y_train))
    p = release.Pass(data, pool.embedders(), device=device, rows=rows, sample=chosen)
    sums = torch.zeros(pool.size, k, p.dim())
    member_counts = torch.zeros(pool.size, k)
    for m in range(pool.size):
        for c in range(k):
            e = p.embed(m, c)
            sums[m, c] = e.sum(0).cpu()
            member_counts[m, c] = len(e)
    means = sums / member_counts.clamp(min=1)[:, :, None]
    counts = torch.bincount(data.y_train[rows], minlength=k)
    return ClassStatistics(counts=counts, member_counts=member_counts, means=means)


def aggregate(uploads: list[ClassStatistics]) -> ClassStatistics:
    """Global counts and, per member, class means weighted by that member's counts; a class
    no client holds, or one a member's samples all missed, is an error."""
    if not uploads:
        raise DistillError("no client statistics arrived; check the clients' logs and rerun")
    counts = torch.stack([u.counts for u in uploads]).sum(0)
    absent = torch.nonzero(counts <= 0).flatten().tolist()
    if absent:
        raise DistillError(
            f"no client that answered holds class(es) {absent}; the server cannot distil "
            "them: rerun with the missing clients or a larger --alpha"
        )
    member_counts = torch.stack([u.member_counts.double() for u in uploads]).sum(0)
    missed = torch.nonzero(member_counts <= 0).tolist()
    if missed:
        m, c = missed[0]
        raise DistillError(
            f"{len(missed)} (member, class) sample(s) hold no example, e.g. member {m}, class "
            f"{c}, on every client; raise --sample-rate (1 reads every row)"
        )
    weighted = sum(u.means.double() * u.member_counts.double()[:, :, None] for u in uploads)
    means = weighted / member_counts[:, :, None]
    return ClassStatistics(counts=counts, member_counts=member_counts.float(), means=means.float())
