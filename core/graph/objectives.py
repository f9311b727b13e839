"""Objectives of graph condensation: one outer step's loss, as `datadistill.objectives` define it.

GCond (Jin et al., ICLR 2022, eq. 4 with A' = g_phi(X') of eq. 5): per class c, the
gradient of a GNN's loss on the real graph's training nodes of c is matched with its gradient
on the synthetic nodes of c, D(grad L(GNN(A, X))_c, grad L(GNN(A', X'))_c), summed over classes
weighted by n'_c / max n'_c, along the trajectory of a network trained on the synthetic graph.
It is the survey's eq. (7) with a graph network; D is DC's layer-wise distance, imported from
`datadistill.objectives.gradient`, not re-implemented.

GCDM (Liu et al., 2022, "Graph Condensation via Receptive Field Distribution Matching"): the
real graph is a distribution of receptive fields; per class, the maximum mean discrepancy with
a linear kernel between the GNN embeddings of real and synthetic nodes, i.e. the squared
distance of their class means, summed over the network's layers (each layer is a larger
receptive field). It is the survey's eq. (11), DM, with a GNN as the embedding.

DosCond (Jin et al., KDD 2022, eq. 8): one-step gradient matching for graph classification:
every step draws a fresh GNN and matches gradients at its initialisation only, so no inner
training loop runs; plus beta * relu(mean sigmoid(Omega) - target density) to keep the sampled
graphs as sparse as the real ones.

As in `datadistill.objectives.gradient`, one `loss()` call is one matching step; the network lives
for `outer_loop` steps and is trained `inner_loop` times on the current synthetic graph between
two of them (GCond's and GCDM's two loops). Randomness comes only from the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from datadistill.graph.data import GraphSet, NodeGraph
from datadistill.graph.nets import GraphGCN, build_node_net
from datadistill.graph.params import BernoulliGraphs, SyntheticGraph, gumbel_temperature
from datadistill.objectives.base import Objective
from datadistill.objectives.gradient import METRICS, gradient_distance


def seeded(build, generator: torch.Generator):
    """`build()` under a seed drawn from `generator`: a network's init depends on it alone."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def class_slices(labels: torch.Tensor, num_classes: int) -> list[slice]:
    """Rows of each class in labels sorted by class (the parameterisations' order)."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).tolist()
    starts = [sum(counts[:c]) for c in range(num_classes)]
    return [slice(s, s + n) for s, n in zip(starts, counts, strict=True)]


class NodeObjective(Objective):
    """Shared by GCond and GCDM: the network's two loops and the real graph's caches.

    Args:
        in_dim, num_classes: the graph's feature width and classes (to rebuild the network
            when a checkpoint is loaded).
        arch: network used while condensing (GCond: sgc, 2 propagations; GCDM: gcn).
        outer_loop: matching steps per network; inner_loop: its training steps on the
            synthetic graph between two of them (GCond on Cora: 20 and 15).
        lr_net: the network's Adam learning rate (GCond: 0.01).
    """

    name = "base"

    def __init__(
        self,
        *,
        in_dim: int,
        num_classes: int,
        arch: str = "sgc",
        hidden: int = 256,
        layers: int = 2,
        outer_loop: int = 20,
        inner_loop: int = 15,
        lr_net: float = 0.01,
    ):
        if outer_loop < 1 or inner_loop < 0:
            raise ValueError(
                f"need outer_loop >= 1, inner_loop >= 0; got {outer_loop}, {inner_loop}"
            )
        self.in_dim, self.num_classes = in_dim, num_classes
        self.arch, self.hidden, self.layers = arch, hidden, layers
        self.outer_loop, self.inner_loop, self.lr_net = outer_loop, inner_loop, lr_net
        self._net = None
        self._opt = None
        self._age = 0
        self._cache: dict = {}
        self._pending: dict | None = None  # checkpointed network, rebuilt on first use

    def groups(self, step: int) -> tuple[str, ...]:
        """Which of the summary's optimiser groups step after this loss (default: all)."""
        return ("features", "structure")

    def _build(self):
        return build_node_net(
            self.arch, self.in_dim, self.num_classes, hidden=self.hidden, layers=self.layers,
            dropout=0.0,
        )  # fmt: skip

    def _network(self, param: SyntheticGraph, generator, device):
        """A fresh network every `outer_loop` steps, else the current one trained on the
        (already updated) synthetic graph for `inner_loop` steps, as GCond does."""
        if self._pending is not None:  # a checkpoint's network, rebuilt on the run's device
            self._net = self._build().to(device)
            self._net.load_state_dict(self._pending["net"])
            self._opt = torch.optim.Adam(self._net.parameters(), lr=self.lr_net)
            self._opt.load_state_dict(self._pending["opt"])
            self._age, self._pending = self._pending["age"], None
        if self._net is None or self._age >= self.outer_loop:
            self._net = seeded(self._build, generator).to(device)
            self._opt = torch.optim.Adam(self._net.parameters(), lr=self.lr_net)
            self._age = 0
        elif self.inner_loop:
            with torch.no_grad():
                x, adj, y = param.sample()
            p = self._net.propagation(adj)
            for _ in range(self.inner_loop):
                self._opt.zero_grad(set_to_none=True)
                F.cross_entropy(self._net(x, p), y).backward()
                self._opt.step()
        self._net.train()
        self._age += 1
        return self._net

    def _real(self, graph: NodeGraph, net, device, fold: bool = False):
        """Features, the net's propagation matrix and per-class training nodes, on `device`;
        `fold` precomputes what the net's weights do not change (`NodeNet.fold`)."""
        key = (net.norm.__name__, str(device), fold)
        if key not in self._cache:
            rows = [graph.train_nodes_of(c).to(device) for c in range(graph.num_classes)]
            x, p = graph.features.to(device), net.propagation(graph.adjacency().to(device))
            self._cache[key] = (*(net.fold(x, p) if fold else (x, p)), rows)
        return self._cache[key]

    def state_dict(self) -> dict:
        if self._net is None:
            return self._pending or {}
        return {"net": self._net.state_dict(), "opt": self._opt.state_dict(), "age": self._age}

    def load_state_dict(self, state: dict) -> None:
        self._pending = state or None


class GCondMatching(NodeObjective):
    """GCond's gradient matching (module docstring); alternates what it updates: the adjacency
    MLP for `structure_epochs` of every `period` networks, the features otherwise (GCond's
    `it % 50 < 10`), one network = `outer_loop` steps."""

    name = "graph_gradient_matching"

    def __init__(self, *, metric: str = "layerwise", structure_epochs: int = 10,
                 period: int = 50, **kw):  # fmt: skip
        super().__init__(**kw)
        if metric not in METRICS:
            raise ValueError(f"unknown gradient distance '{metric}'; use one of {METRICS}")
        self.metric = metric
        self.structure_epochs, self.period = structure_epochs, period

    def groups(self, step: int) -> tuple[str, ...]:
        epoch = step // self.outer_loop
        return ("structure",) if epoch % self.period < self.structure_epochs else ("features",)

    def loss(self, param: SyntheticGraph, graph: NodeGraph, generator, step: int) -> torch.Tensor:
        x_s, adj_s, y_s = param.sample()
        net = self._network(param, generator, x_s.device)
        x_r, p_r, rows = self._real(graph, net, x_s.device, fold=True)
        weights = list(net.parameters())
        out_r = net(x_r, p_r)
        out_s = net(x_s, net.propagation(adj_s))
        slices = class_slices(y_s, self.num_classes)
        largest = max(s.stop - s.start for s in slices)
        total = x_s.new_zeros(())
        for c, (r, s) in enumerate(zip(rows, slices, strict=True)):
            if len(r) == 0 or s.stop == s.start:
                continue
            target = torch.full((len(r),), c, device=x_s.device)
            g_real = torch.autograd.grad(
                F.cross_entropy(out_r[r], target), weights, retain_graph=True
            )
            g_syn = torch.autograd.grad(
                F.cross_entropy(out_s[s], y_s[s]), weights, create_graph=True, retain_graph=True
            )
            g_real = [g.detach() for g in g_real]
            coeff = (s.stop - s.start) / largest
            total = total + coeff * gradient_distance(g_syn, g_real, self.metric)
        return total


class GCDMMatching(NodeObjective):
    """GCDM's receptive-field distribution matching (module docstring): linear-kernel MMD per
    class and layer, weighted by n'_c / n'."""

    name = "receptive_field_mmd"

    def loss(self, param: SyntheticGraph, graph: NodeGraph, generator, step: int) -> torch.Tensor:
        x_s, adj_s, y_s = param.sample()
        net = self._network(param, generator, x_s.device)
        x_r, p_r, rows = self._real(graph, net, x_s.device)
        with torch.no_grad():
            emb_r = net.embeddings(x_r, p_r)
        emb_s = net.embeddings(x_s, net.propagation(adj_s))
        slices = class_slices(y_s, self.num_classes)
        n = len(y_s)
        total = x_s.new_zeros(())
        for real, syn in zip(emb_r, emb_s, strict=True):
            for r, s in zip(rows, slices, strict=True):
                if len(r) == 0 or s.stop == s.start:
                    continue
                gap = real[r].mean(0) - syn[s].mean(0)
                total = total + (s.stop - s.start) / n * (gap**2).sum()
        return total


class DosCondMatching(Objective):
    """DosCond's one-step gradient matching for graph classification (module docstring).

    Args:
        batch_real: real graphs per class per step (DosCond: 256).
        metric: gradient distance (DosCond's scripts: mse).
        beta: weight of the sparsity regulariser (DosCond: 0.1).
        anneal_steps: steps over which the concrete temperature falls from 1 to 0.01.
    """

    name = "one_step_gradient_matching"

    def __init__(
        self,
        *,
        in_dim: int,
        num_classes: int,
        hidden: int = 128,
        layers: int = 3,
        batch_real: int = 256,
        metric: str = "mse",
        beta: float = 0.1,
        anneal_steps: int = 200,
    ):
        if metric not in METRICS:
            raise ValueError(f"unknown gradient distance '{metric}'; use one of {METRICS}")
        self.in_dim, self.num_classes = in_dim, num_classes
        self.hidden, self.layers = hidden, layers
        self.batch_real, self.metric, self.beta = batch_real, metric, beta
        self.anneal_steps = anneal_steps
        self._cache: dict = {}

    def groups(self, step: int) -> tuple[str, ...]:
        return ("features", "structure")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def _real(self, data: GraphSet, device):
        """Every training graph padded once (small graphs), and each class's positions."""
        if str(device) not in self._cache:
            x, adj, mask = data.batch(data.train_idx)
            labels = data.labels[data.train_idx]
            pos = [torch.nonzero(labels == c).flatten() for c in range(data.num_classes)]
            self._cache[str(device)] = (x.to(device), adj.to(device), mask.to(device), pos)
        return self._cache[str(device)]

    def loss(self, param: BernoulliGraphs, data: GraphSet, generator, step: int) -> torch.Tensor:
        device = param.features.device
        t = gumbel_temperature(step, steps=self.anneal_steps)
        x_s, adj_s, y_s = param.sample(temperature=t, generator=generator)
        build = lambda: GraphGCN(
            self.in_dim, self.num_classes, hidden=self.hidden, layers=self.layers
        )
        net = seeded(build, generator).to(device)
        weights = list(net.parameters())
        x_all, adj_all, mask_all, pos = self._real(data, device)
        total = x_s.new_zeros(())
        for c, s in enumerate(class_slices(y_s, self.num_classes)):
            if len(pos[c]) == 0 or s.stop == s.start:
                continue
            pick = pos[c][torch.randperm(len(pos[c]), generator=generator)[: self.batch_real]]
            pick = pick.to(device)
            out_r = net(x_all[pick], adj_all[pick], mask_all[pick])
            target = torch.full((len(pick),), c, device=device)
            g_real = [
                g.detach() for g in torch.autograd.grad(F.cross_entropy(out_r, target), weights)
            ]
            out_s = net(x_s[s], adj_s[s])
            g_syn = torch.autograd.grad(F.cross_entropy(out_s, y_s[s]), weights, create_graph=True)
            total = total + gradient_distance(g_syn, g_real, self.metric)
        return total + self.beta * F.relu(param.density() - param.target_density)
