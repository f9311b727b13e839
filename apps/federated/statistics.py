"""One-round federated distribution matching: the pool description, client statistics, and
their aggregation, as plain functions (no Flower).

DM's objective (Zhao & Bilen, WACV 2023; survey eq. 11) reads the real data only through
class-mean embeddings, and a global class mean is the count-weighted mean of the clients'
class means. So the server fixes a pool of embedders (`datadistill.objectives.embedder_pool`:
a network seed and one augmentation draw per class each) and broadcasts its description;
each client uploads, once, its class counts and its class means under every member; the
server aggregates them by counts into exactly the statistics a "class"-statistic pool
would compute on the union of the partitions, and distils against them
(`stats_server`). No tensor with an image's shape leaves a client.

Every image of a class goes through one augmentation draw per member ("batch" siamese
mode, DM's code), so the statistic does not depend on the order of a client's images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from datadistill.augment import DSA, AugParams
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.distribution import draw_seed, network_from_seed

CHUNK = 512  # images per forward pass on a CPU


@dataclass(frozen=True)
class PoolDescription:
    """What a client needs to rebuild the server's pool: networks from seeds, and draws.

    Tensors are in `EmbedderPool.state_dict`'s layout (`pool_seeds` [N], `pool_ops` [N, K],
    `pool_values` [N, K, 1, ...]), so the server loads them beside the aggregated means.
    """

    arch: str
    dsa_strategy: str  # empty: no augmentation
    seeds: torch.Tensor
    ops: torch.Tensor | None = None
    values: torch.Tensor | None = None

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

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"pool_seeds": self.seeds}
        if self.ops is not None:
            out |= {"pool_ops": self.ops, "pool_values": self.values}
        return out


def describe_pool(
    *, members: int, seed: int, num_classes: int, arch: str = "convnet", dsa_strategy: str = ""
) -> PoolDescription:
    """`members` network seeds and per-class draws, all derived from `seed`.

    In each member the order is fresh DM's without its real batch: network seed, then one
    shared draw per class.
    """
    if members < 1:
        raise DistillError(f"--pool {members}: the statistics scheme needs at least 1 member")
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
    )


@dataclass(frozen=True)
class ClassStatistics:
    """A client's upload: examples per class [K] and class-mean embeddings [N, K, D]
    (zeros for a class it does not hold)."""

    counts: torch.Tensor
    means: torch.Tensor


def client_statistics(
    data: Dataset, rows: torch.Tensor, pool: PoolDescription, *, device="cpu"
) -> ClassStatistics:
    """Counts and per-member class means of the partition `rows`, in float32."""
    if len(rows) == 0:
        raise DistillError("this client's partition is empty; use fewer clients or larger alpha")
    k = data.spec.num_classes
    y = data.y_train[rows]
    counts = torch.bincount(y, minlength=k)
    means = []
    for i, seed in enumerate(pool.seeds.tolist()):
        net = network_from_seed(pool.arch, data, int(seed), device)
        draws = pool.draws(i)
        per_class = []
        for c in range(k):
            x = data.x_train[rows[y == c]]
            per_class.append(_mean_embedding(net, x, pool.aug, draws and draws[c], device))
        means.append(torch.stack(per_class))
    return ClassStatistics(counts=counts, means=torch.stack(means))


def _mean_embedding(net, x, aug, draw, device) -> torch.Tensor:
    """The mean embedding of `x` under `draw` (one draw for every image); zeros if empty."""
    with torch.no_grad():
        if len(x) == 0:
            return torch.zeros(net.embed(torch.zeros(1, *x.shape[1:], device=device)).shape[1])
        total = 0.0
        for chunk in x.split(CHUNK):
            chunk = chunk.to(device).float()
            if draw is not None:
                chunk = aug.apply(chunk, draw, index=torch.zeros(len(chunk), dtype=torch.long))
            s = net.embed(chunk).float().sum(0).cpu()
            total = total + s
    return total / len(x)


def privatise(upload: ClassStatistics) -> ClassStatistics:
    """The hook where a client's upload would get its differential-privacy guarantee.

    dp-dm's mechanism (one noisy release of pooled statistics, apps/privacy) plugs in here
    with a per-client epsilon; this round uploads the exact statistics.
    """
    return upload


def aggregate(uploads: list[ClassStatistics]) -> ClassStatistics:
    """Global counts and count-weighted class means; a class no client holds is an error."""
    if not uploads:
        raise DistillError("no client statistics arrived; check the clients' logs and rerun")
    counts = torch.stack([u.counts for u in uploads]).sum(0)
    absent = torch.nonzero(counts == 0).flatten().tolist()
    if absent:
        raise DistillError(
            f"no client that answered holds class(es) {absent}; the server cannot distil "
            "them: rerun with the missing clients or a larger --alpha"
        )
    weighted = sum(u.means.double() * u.counts.double().view(1, -1, 1) for u in uploads)
    means = weighted / counts.double().view(1, -1, 1)
    return ClassStatistics(counts=counts, means=means.float())
