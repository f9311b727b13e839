"""Seeded client partitions: IID and Dirichlet label skew.

The Dirichlet split follows Hsu et al., "Measuring the Effects of Non-Identical Data
Distribution for Federated Visual Classification" (2019): for each class, the share of
its examples given to each client is drawn from Dir(alpha); small alpha gives clients
few classes. flwr-datasets' DirichletPartitioner implements the same idea over
Hugging Face datasets but is not installed here, so this is a small seeded function on
tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from datadistill.errors import DistillError


def iid(labels: torch.Tensor, *, num_partitions: int, seed: int) -> list[torch.Tensor]:
    """Shuffle the rows and deal them into `num_partitions` near-equal parts."""
    _check(labels, num_partitions)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return [part.sort().values for part in torch.tensor_split(order, num_partitions)]


def dirichlet(
    labels: torch.Tensor, *, num_partitions: int, alpha: float, seed: int, min_size: int = 1
) -> list[torch.Tensor]:
    """Per class, split its rows among clients in Dir(alpha) proportions.

    Redraws (up to 100 times) until every client has at least `min_size` rows, as
    flwr-datasets' DirichletPartitioner does, so no client is empty.
    """
    _check(labels, num_partitions)
    if alpha <= 0:
        raise DistillError(f"--alpha must be > 0, got {alpha}; use e.g. 0.1 or 0.5 (or iid)")
    y = labels.cpu().numpy()
    rng = np.random.default_rng(seed)
    for _ in range(100):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_partitions)]
        for c in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(num_partitions, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for i, chunk in enumerate(np.split(rows, cuts)):
                parts[i].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return [torch.from_numpy(p).long() for p in out]
    raise DistillError(
        f"could not give each of {num_partitions} clients {min_size} rows at alpha={alpha} "
        "in 100 draws; use fewer clients or a larger alpha"
    )


def partition(
    labels: torch.Tensor, *, num_partitions: int, alpha: float | None, seed: int
) -> list[torch.Tensor]:
    """IID when `alpha` is None, else Dirichlet(alpha); rows into the training set."""
    if alpha is None:
        return iid(labels, num_partitions=num_partitions, seed=seed)
    return dirichlet(labels, num_partitions=num_partitions, alpha=alpha, seed=seed)


def _check(labels: torch.Tensor, num_partitions: int) -> None:
    if num_partitions < 1 or num_partitions > len(labels):
        raise DistillError(
            f"--clients {num_partitions} is out of range: use 1 to {len(labels)} "
            "(the number of training examples)"
        )
