"""A pool of DM embedders whose real-side class statistics are computed once and reused.

DM's step (Zhao & Bilen, WACV 2023, eq. 11 of the survey) is dominated by work that does
not depend on the summary: 256 real images a class through a freshly drawn random network,
to get the class-mean embeddings the synthetic means are pulled towards. A member of this
pool is what one such draw consists of: the network's seed (its weights are rebuilt from the
seed when the member is drawn, never stored), one siamese augmentation draw per class, and
the real class means under that network and draw. The means are computed the first time the
member is drawn and cached; every later draw costs only the synthetic side.

Members are visited in turn (step t uses member t mod N), so each is used equally and a
resumed run draws what an uninterrupted one would. A member is created at its first visit
from the run's generator, in exactly the order fresh-network DM draws (network seed, real
batch, augmentation): a pool at least as large as the run, visited once, *is* fresh DM.

The real statistic is "batch" (the mean over one real batch of `batch_real` a class, as a
fresh step sees it: sampling noise included) or "class" (the mean over every image of the
class under the member's draw: no sampling noise, a costlier fill).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from datadistill.augment import AugParams
from datadistill.errors import DistillError

STATISTICS = ("batch", "class")


@dataclass
class Member:
    """One embedder: its network seed, its per-class augmentation draws, its real means."""

    seed: int
    draws: list[AugParams] | None  # one per class; None without augmentation
    means: torch.Tensor  # [classes, embedding] real class means, float32


class EmbedderPool:
    """`size` members, filled lazily and visited in turn; see the module docstring."""

    def __init__(self, size: int, statistic: str = "batch"):
        if size < 1:
            raise DistillError(f"pool size {size} must be at least 1; use --set pool=0 for none")
        if statistic not in STATISTICS:
            raise DistillError(
                f"unknown pool statistic '{statistic}'; use one of: {', '.join(STATISTICS)}"
            )
        self.size = size
        self.statistic = statistic
        self.members: list[Member] = []

    def visit(self, step: int) -> Member | None:
        """The member step `step` uses, or None while it is yet to be created."""
        slot = step % self.size
        return self.members[slot] if slot < len(self.members) else None

    def add(self, member: Member) -> None:
        if len(self.members) >= self.size:
            raise RuntimeError("the pool is full")
        self.members.append(member)

    def describe(self) -> dict:
        """What the summary's metadata says of the pool."""
        return {
            "size": self.size,
            "statistic": self.statistic,
            "filled": len(self.members),
            "cache_bytes": self.nbytes(),
        }

    def nbytes(self) -> int:
        """Memory the cached statistics take (networks are rebuilt, not kept)."""
        return sum(m.means.numel() * m.means.element_size() for m in self.members)

    def state_dict(self, ops: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Tensors only: seeds, means, and each draw as its operation's index in `ops` plus
        its random numbers."""
        state = {
            "pool_seeds": torch.tensor([m.seed for m in self.members], dtype=torch.int64),
            "pool_means": torch.stack([m.means for m in self.members])
            if self.members
            else torch.empty(0),
        }
        if self.members and self.members[0].draws is not None:
            state["pool_ops"] = torch.tensor(
                [[ops.index(d.op) for d in m.draws] for m in self.members], dtype=torch.int64
            )
            state["pool_values"] = torch.stack(
                [torch.stack([d.values for d in m.draws]) for m in self.members]
            )
        return state

    def load_state_dict(self, state: dict, ops: tuple[str, ...]) -> None:
        seeds = state["pool_seeds"].tolist()
        if len(seeds) > self.size:
            raise DistillError(
                f"the checkpoint's pool holds {len(seeds)} members, more than --set pool="
                f"{self.size}; resume with the pool size it was started with"
            )
        self.members = []
        for i, seed in enumerate(seeds):
            draws = None
            if "pool_ops" in state:
                draws = [
                    AugParams(ops[int(o)], v.clone())
                    for o, v in zip(state["pool_ops"][i], state["pool_values"][i], strict=True)
                ]
            self.members.append(Member(int(seed), draws, state["pool_means"][i].clone()))
