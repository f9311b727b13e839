"""Parameterisations of a graph summary (survey section 3, graphs).

`SyntheticGraph` (GCond, GCDM): learnt node features X' [n, d] and an adjacency generated
from them, A' = g_phi(X'), so the summary stores n x d numbers plus a small MLP instead of a
free n x n matrix, and edges stay consistent with the features they join (Jin et al., ICLR
2022, eq. 5). `BernoulliGraphs` (DosCond): G small graphs, each with learnt features and a
free matrix of Bernoulli logits Omega, sampled with the reparameterisation trick so that the
summary's graphs are discrete yet the loss is differentiable (Jin et al., KDD 2022, eq. 6-7).

Both order examples by class (rows of class 0 first), as the image parameterisations do, and
expose named optimiser groups, "features" and "structure", because both papers step the two
with their own learning rates.
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill.params.base import Parameterisation


def class_sizes(train_counts: list[int], total: int) -> list[int]:
    """GCond's allocation of `total` synthetic nodes over classes, proportional to their
    training counts: every class gets int(count * rate) >= 1, the largest the remainder."""
    k = len(train_counts)
    if total < k:
        raise ValueError(f"{total} synthetic nodes cannot cover {k} classes; use at least {k}")
    rate = total / sum(train_counts)
    order = sorted(range(k), key=lambda c: train_counts[c])
    sizes = [0] * k
    for c in order[:-1]:
        sizes[c] = max(int(train_counts[c] * rate), 1)
    sizes[order[-1]] = total - sum(sizes)
    if sizes[order[-1]] < 1:
        raise ValueError(f"{total} synthetic nodes are too few for the class proportions")
    return sizes


class AdjacencyGenerator(nn.Module):
    """GCond's g_phi (eq. 5): A'_ij = sigmoid((MLP([x_i; x_j]) + MLP([x_j; x_i])) / 2), A'_ii = 0.

    The first linear layer on the concatenation [x_i; x_j] equals x_i W_a + x_j W_b, so it is
    computed on n rows and broadcast to n x n pairs instead of being applied to n^2 rows of
    width 2d. Batch norm uses the statistics of all n^2 pairs (no running averages), which
    makes A' a deterministic function of X' and phi, in training and at inference alike.
    """

    def __init__(self, in_dim: int, *, hidden: int = 128, layers: int = 3):
        super().__init__()
        if layers < 2:
            raise ValueError("the adjacency MLP needs at least 2 layers")
        self.first = nn.Linear(2 * in_dim, hidden)
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(hidden, track_running_stats=False) for _ in range(layers - 1)
        )
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 2))
        self.out = nn.Linear(hidden, 1)
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, d = x.shape
        w_a, w_b = self.first.weight[:, :d], self.first.weight[:, d:]
        h = (x @ w_a.T).unsqueeze(1) + (x @ w_b.T).unsqueeze(0) + self.first.bias  # [n, n, h]
        h = h.reshape(n * n, -1)
        for i, norm in enumerate(self.norms):
            h = torch.relu(norm(h))
            if i < len(self.hidden):
                h = self.hidden[i](h)
        logits = self.out(h).view(n, n)
        adj = torch.sigmoid((logits + logits.T) / 2)
        return adj * (1 - torch.eye(n, device=adj.device, dtype=adj.dtype))


class SyntheticGraph(Parameterisation):
    """GCond's condensed graph: free features X', A' = g_phi(X'), fixed labels Y'.

    Args:
        features: initial X' [n, d], rows grouped by class (GCond: real training nodes).
        labels: Y' [n], non-decreasing.
        structure: False gives the structure-free variant (A' = 0, so a GCN sees only self
            loops), GCond-X in GCond's ablation.
        threshold: edges of A' below it are dropped when the summary is stored (GCond's
            sparsification delta; 0 keeps the dense weighted graph).
    """

    name = "graph_mlp_adjacency"

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        hidden: int = 128,
        layers: int = 3,
        structure: bool = True,
        threshold: float = 0.0,
    ):
        ipc, classes = _per_class(labels)
        super().__init__(None, ipc, num_classes=classes)
        self.features = nn.Parameter(features.detach().clone().float())
        self.register_buffer("labels", labels.detach().clone().long())
        self.generator = (
            AdjacencyGenerator(features.shape[1], hidden=hidden, layers=layers)
            if structure
            else None
        )
        self.threshold = threshold

    @property
    def num_nodes(self) -> int:
        return int(self.features.shape[0])

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(X', A', Y'), differentiable in X' and phi."""
        x = self.features
        if self.generator is None:
            adj = x.new_zeros(len(x), len(x))
        else:
            adj = self.generator(x)
        return x, adj, self.labels

    @torch.no_grad()
    def materialize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, adj, y = self.sample()
        if self.threshold > 0:
            adj = torch.where(adj >= self.threshold, adj, torch.zeros_like(adj))
        return x.detach().clone(), adj.detach().clone(), y.clone()

    def param_groups(self) -> list[dict]:
        groups = [{"name": "features", "params": [self.features]}]
        if self.generator is not None:
            groups.append({"name": "structure", "params": list(self.generator.parameters())})
        return groups


def _per_class(labels: torch.Tensor) -> tuple[int, int]:
    """(mean examples per class, num_classes) of class-grouped labels: a graph summary's
    classes may differ in size (GCond's reduction rate splits as the real labels do)."""
    classes = int(labels.max()) + 1 if len(labels) else 1
    return max(1, round(len(labels) / classes)), classes


def gumbel_temperature(step: int, *, start: float = 1.0, end: float = 0.01, steps: int = 200):
    """DosCond's annealing: t = start * (end / start)^(step / steps), at least `end`."""
    return max(start * (end / start) ** (step / steps), end)


class BernoulliGraphs(Parameterisation):
    """DosCond's synthetic graphs: features X'_g and Bernoulli logits Omega_g per graph.

    Edge (i, j) of graph g is Bernoulli(sigmoid(Omega_sym[g, i, j])), Omega_sym the symmetrised
    logits. Training samples the relaxed (binary concrete) edge
    A_ij = sigmoid((Omega_sym_ij + log eps - log(1 - eps)) / t), eps ~ U(0, 1) drawn once per
    unordered pair, which is differentiable in Omega (KDD 2022, eq. 7); the stored summary keeps
    the most likely graph, A_ij = [sigmoid(Omega_sym_ij) > 0.5].

    Args:
        features: initial X' [G, n, d] (DosCond: real graphs of the class, truncated to n nodes).
        adjacency: initial 0/1 A [G, n, n]; Omega starts at 10 A - 5 (DosCond's init).
        labels: one class per graph [G], non-decreasing.
    """

    name = "bernoulli_graphs"

    def __init__(self, features: torch.Tensor, adjacency: torch.Tensor, labels: torch.Tensor):
        ipc, classes = _per_class(labels)
        super().__init__(None, ipc, num_classes=classes)
        self.features = nn.Parameter(features.detach().clone().float())
        self.logits = nn.Parameter(adjacency.detach().float() * 10 - 5)
        self.register_buffer("labels", labels.detach().clone().long())
        # DosCond's sparsity target: the density of the real graphs it started from
        self.register_buffer("target_density", adjacency.detach().float().mean().reshape(()))

    def _sym(self) -> torch.Tensor:
        return (self.logits + self.logits.transpose(1, 2)) / 2

    def _no_loops(self, adj: torch.Tensor) -> torch.Tensor:
        n = adj.shape[-1]
        return adj * (1 - torch.eye(n, device=adj.device, dtype=adj.dtype))

    def sample(
        self, *, temperature: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g, n, _ = self.logits.shape
        i, j = torch.triu_indices(n, n)
        u = torch.rand(g, len(i), generator=generator).clamp(1e-6, 1 - 1e-6).to(self.logits)
        eps = torch.zeros(g, n, n, device=self.logits.device, dtype=self.logits.dtype)
        eps[:, i, j] = u
        eps[:, j, i] = u
        noise = torch.log(eps) - torch.log1p(-eps)
        adj = torch.sigmoid((self._sym() + noise) / temperature)
        return self.features, self._no_loops(adj), self.labels

    def density(self) -> torch.Tensor:
        """Expected edge density, mean sigmoid(Omega) (DosCond's sparsity regulariser)."""
        return torch.sigmoid(self.logits).mean()

    @torch.no_grad()
    def materialize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        adj = self._no_loops((torch.sigmoid(self._sym()) > 0.5).float())
        return self.features.detach().clone(), adj, self.labels.clone()

    def param_groups(self) -> list[dict]:
        return [
            {"name": "features", "params": [self.features]},
            {"name": "structure", "params": [self.logits]},
        ]
