"""Graph dataset registry: a name gives a node-classification graph or a set of small graphs.

Offline, generated: `csbm`, a contextual stochastic block model (Deshpande et al., NeurIPS
2018: class-conditional Gaussian node features on a stochastic block model) with stated,
seeded parameters, and `graph-families`, graph classification between three random-graph
families. Offline, real: `karate`, Zachary's karate club as networkx ships it (the club each
member joined is the label). On a user's machine: Planetoid citation graphs (`cora`,
`citeseer`, `pubmed`) and TU graph-classification sets (`mutag`, `nci1`, `proteins`, `dd`,
`enzymes`) read from their raw files by torch_geometric's own loaders.

Small graphs only: synthetic adjacencies are dense, and the real graph is one sparse matrix
held in memory (PubMed's 19,717 nodes are fine; ogbn-scale graphs need neighbour sampling,
which this package does not do).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datadistill.errors import DistillError

NODE, GRAPH = "node", "graph"


@dataclass
class NodeGraph:
    """One graph for transductive node classification.

    Attributes:
        features: float32 [N, d] node features.
        edge_index: int64 [2, E], every undirected edge in both directions, no self loops.
        labels: int64 [N] class of every node (only `train_idx` are used for training).
        train_idx, val_idx, test_idx: node indices of the split.
    """

    modality = "graph"  # which methods take it (`datadistill.distill.run` checks)

    name: str
    features: torch.Tensor
    edge_index: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    task: str = NODE
    _adj: torch.Tensor | None = field(default=None, init=False, repr=False)

    @property
    def num_nodes(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def num_edges(self) -> int:
        """Undirected edges."""
        return int(self.edge_index.shape[1]) // 2

    def adjacency(self) -> torch.Tensor:
        """The sparse [N, N] 0/1 adjacency (cached)."""
        if self._adj is None:
            ones = torch.ones(self.edge_index.shape[1])
            n = self.num_nodes
            self._adj = torch.sparse_coo_tensor(self.edge_index, ones, (n, n)).coalesce()
        return self._adj

    def train_nodes_of(self, c: int) -> torch.Tensor:
        return self.train_idx[self.labels[self.train_idx] == c]

    def train_class_counts(self) -> list[int]:
        return [len(self.train_nodes_of(c)) for c in range(self.num_classes)]

    def subgraph(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and dense 0/1 adjacency of the subgraph induced by `nodes`."""
        pos = torch.full((self.num_nodes,), -1, dtype=torch.long)
        pos[nodes] = torch.arange(len(nodes))
        src, dst = pos[self.edge_index[0]], pos[self.edge_index[1]]
        keep = (src >= 0) & (dst >= 0)
        adj = torch.zeros(len(nodes), len(nodes))
        adj[src[keep], dst[keep]] = 1.0
        return self.features[nodes].clone(), adj

    def stored_bytes(self) -> int:
        """Features, edge list (int64, both directions) and labels: the graph as stored."""
        return sum(
            t.numel() * t.element_size() for t in (self.features, self.edge_index, self.labels)
        )


@dataclass
class GraphSet:
    """Small graphs for graph classification, each a dense adjacency with node features."""

    modality = "graph"  # which methods take it (`datadistill.distill.run` checks)

    name: str
    features: list[torch.Tensor]  # float32 [n_i, d]
    adjacency: list[torch.Tensor]  # float32 [n_i, n_i], 0/1, symmetric
    labels: torch.Tensor  # int64 [G]
    num_classes: int
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    task: str = GRAPH

    @property
    def num_features(self) -> int:
        return int(self.features[0].shape[1])

    def train_graphs_of(self, c: int) -> torch.Tensor:
        return self.train_idx[self.labels[self.train_idx] == c]

    def mean_nodes(self) -> int:
        """Average node count of the training graphs (DosCond's size for synthetic graphs)."""
        sizes = [len(self.features[i]) for i in self.train_idx.tolist()]
        return max(1, round(sum(sizes) / len(sizes)))

    def batch(self, idx: torch.Tensor, max_nodes: int | None = None):
        """Graphs `idx` padded to one size: x [B, n, d], adj [B, n, n], mask [B, n] (bool).

        `max_nodes` truncates larger graphs to their first nodes (DosCond's init does so).
        """
        idx = idx.tolist()
        sizes = [len(self.features[i]) for i in idx]
        n = max(sizes) if max_nodes is None else max_nodes
        x = torch.zeros(len(idx), n, self.num_features)
        adj = torch.zeros(len(idx), n, n)
        mask = torch.zeros(len(idx), n, dtype=torch.bool)
        for b, (i, size) in enumerate(zip(idx, sizes, strict=True)):
            k = min(size, n)
            x[b, :k] = self.features[i][:k]
            adj[b, :k, :k] = self.adjacency[i][:k, :k]
            mask[b, :k] = True
        return x, adj, mask

    def stored_bytes(self) -> int:
        """Features, edge lists (int64, both directions) and labels of every graph."""
        total = self.labels.numel() * self.labels.element_size()
        for x, a in zip(self.features, self.adjacency, strict=True):
            total += x.numel() * x.element_size() + int(a.count_nonzero()) * 2 * 8
        return total


GraphData = NodeGraph | GraphSet
_LOADERS: dict[str, tuple[str, Callable[[Path], GraphData]]] = {}


def register(name: str, task: str):
    """Register `fn(root) -> NodeGraph | GraphSet` under `name`; `task` is "node" or "graph"."""

    def wrap(fn):
        if name in _LOADERS:
            raise ValueError(f"graph dataset '{name}' is registered twice")
        _LOADERS[name] = (task, fn)
        return fn

    return wrap


def available(task: str | None = None) -> list[str]:
    return sorted(n for n, (t, _) in _LOADERS.items() if task is None or t == task)


def task_of(name: str) -> str:
    _check(name)
    return _LOADERS[name][0]


def load(name: str, *, root: str | Path | None = None) -> GraphData:
    """Load graph dataset `name`; files are looked for under `root` (default $DATADISTILL_DATA
    or ./data)."""
    _check(name)
    return _LOADERS[name][1](Path(root or os.environ.get("DATADISTILL_DATA", "data")))


def _check(name: str) -> None:
    if name not in _LOADERS:
        raise DistillError(
            f"unknown graph dataset '{name}'; choose one of: {', '.join(available())}"
        )


# --- generated and shipped graphs -----------------------------------------------------------


def split_per_class(
    labels: torch.Tensor, num_classes: int, *, train: int, val: int, test: int, generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Planetoid's split: `train` nodes of every class, then `val` and `test` nodes at random."""
    order = torch.randperm(len(labels), generator=generator)
    train_idx = torch.cat([order[labels[order] == c][:train] for c in range(num_classes)])
    rest = order[~torch.isin(order, train_idx)]
    if len(rest) < val + test:
        raise DistillError(
            f"{len(labels)} nodes cannot hold {train}/class train + {val} val + {test} test; "
            "use more nodes or smaller splits"
        )
    return train_idx.sort().values, rest[:val].sort().values, rest[val : val + test].sort().values


def csbm(
    *,
    nodes: int = 2000,
    classes: int = 4,
    feature_dim: int = 32,
    p_in: float = 0.016,
    p_out: float = 0.0013,
    signal: float = 1.0,
    train_per_class: int = 20,
    val: int = 500,
    test: int = 1000,
    seed: int = 0,
    name: str = "csbm",
) -> NodeGraph:
    """A contextual stochastic block model (Deshpande et al., NeurIPS 2018).

    Node i gets class y_i (balanced), features x_i ~ N(signal * mu_{y_i}, I_d) with orthonormal
    class directions mu_c, and an edge to node j with probability p_in if y_i = y_j else
    p_out. The defaults (2000 nodes, 4 classes, 32 features, p_in 0.016, p_out 0.0013, signal
    1.0) give mean degree about 10 with 80% of edges inside a class: features alone classify
    about half the nodes, neighbourhoods most of the rest, as on a citation graph. The split
    is Planetoid's: 20 training nodes a class, 500 validation, 1000 test.
    """
    if feature_dim < classes:
        raise DistillError(f"csbm needs feature_dim >= classes, got {feature_dim} < {classes}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(nodes).remainder(classes)[torch.randperm(nodes, generator=g)]
    mu, _ = torch.linalg.qr(torch.randn(feature_dim, classes, generator=g))
    features = signal * mu.T[labels] + torch.randn(nodes, feature_dim, generator=g)
    same = labels[:, None] == labels[None, :]
    prob = torch.where(same, p_in, p_out)
    upper = torch.triu(torch.rand(nodes, nodes, generator=g) < prob, diagonal=1)
    src, dst = upper.nonzero(as_tuple=True)
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    splits = split_per_class(
        labels, classes, train=train_per_class, val=val, test=test, generator=g
    )
    return NodeGraph(name, features.float(), edge_index, labels, classes, *splits)


@register("csbm", NODE)
def _csbm(root: Path) -> NodeGraph:
    return csbm()


@register("karate", NODE)
def _karate(root: Path) -> NodeGraph:
    """Zachary's karate club (networkx ships it): 34 members, 78 ties, label = the club each
    member joined after the split (Mr. Hi's or the Officer's). Features are one-hot node ids,
    as in the GCN paper's karate example; split 5 train / 4 val a class, 16 test, seeded."""
    import networkx as nx

    g = nx.karate_club_graph()
    labels = torch.tensor([int(g.nodes[i]["club"] != "Mr. Hi") for i in range(g.number_of_nodes())])
    edges = torch.tensor(list(g.edges())).T
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    gen = torch.Generator().manual_seed(0)
    splits = split_per_class(labels, 2, train=5, val=8, test=16, generator=gen)
    return NodeGraph("karate", torch.eye(len(labels)), edge_index, labels, 2, *splits)


FAMILIES = ("erdos-renyi", "barabasi-albert", "watts-strogatz")


def graph_families(
    *,
    graphs_per_class: int = 150,
    min_nodes: int = 12,
    max_nodes: int = 28,
    mean_degree: int = 4,
    rewire: float = 0.3,
    max_degree_feature: int = 10,
    seed: int = 0,
) -> GraphSet:
    """Graph classification between three random-graph families of equal mean degree.

    Class 0 Erdos-Renyi G(n, k/(n-1)), class 1 Barabasi-Albert with k/2 edges per new node,
    class 2 Watts-Strogatz ring of k neighbours rewired with probability `rewire`; n uniform in
    [min_nodes, max_nodes], k = `mean_degree`. Node features are the one-hot degree capped at
    `max_degree_feature`, as PyG's OneHotDegree gives TU sets without node attributes; only
    the degree distribution and how degrees connect tell the classes apart. Split 80/10/10
    (DosCond's), seeded.
    """
    import networkx as nx

    rng = torch.Generator().manual_seed(seed)
    makers = (
        lambda n, s: nx.gnp_random_graph(n, mean_degree / (n - 1), seed=s),
        lambda n, s: nx.barabasi_albert_graph(n, mean_degree // 2, seed=s),
        lambda n, s: nx.watts_strogatz_graph(n, mean_degree, rewire, seed=s),
    )
    features, adjacency, labels = [], [], []
    for c, make in enumerate(makers):
        for _ in range(graphs_per_class):
            n = int(torch.randint(min_nodes, max_nodes + 1, (1,), generator=rng))
            g = make(n, int(torch.randint(2**31 - 1, (1,), generator=rng)))
            a = torch.tensor(nx.to_numpy_array(g, nodelist=range(n)), dtype=torch.float32)
            features.append(one_hot_degree(a, max_degree_feature))
            adjacency.append(a)
            labels.append(c)
    labels = torch.tensor(labels)
    return GraphSet(
        "graph-families",
        features,
        adjacency,
        labels,
        len(makers),
        *_split_80_10_10(len(labels), rng),
    )


def one_hot_degree(adj: torch.Tensor, max_degree: int) -> torch.Tensor:
    """One-hot node degree, degrees above `max_degree` in the last slot: [n, max_degree + 1]."""
    deg = adj.sum(1).long().clamp(max=max_degree)
    return torch.nn.functional.one_hot(deg, max_degree + 1).float()


def _split_80_10_10(n: int, generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    a, b = int(0.8 * n), int(0.9 * n)
    return order[:a].sort().values, order[a:b].sort().values, order[b:].sort().values


@register("graph-families", GRAPH)
def _families(root: Path) -> GraphSet:
    return graph_families()


# --- files read through torch_geometric ----------------------------------------------------


def _pyg():
    try:
        import torch_geometric  # noqa: F401
    except ImportError as e:
        raise DistillError(
            "Planetoid and TU datasets are read with torch_geometric; install it "
            "(pip install torch_geometric==2.8.1)"
        ) from e
    import torch_geometric.datasets

    return torch_geometric.datasets


PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def load_planetoid(root: Path, name: str) -> NodeGraph:
    """A Planetoid graph from `root/<Name>/raw/ind.<name>.*` (Yang et al., ICML 2016 files),
    with its public split (20 labelled nodes a class, 500 validation, 1000 test)."""
    pyg_name = PLANETOID[name]
    raw = Path(root) / pyg_name / "raw"
    missing = [f"ind.{name}.{s}" for s in _PLANETOID_RAW if not (raw / f"ind.{name}.{s}").exists()]
    if missing:
        raise DistillError(
            f"{name} files missing in {raw}: {', '.join(missing)}; copy the Planetoid raw files "
            f"there (torch_geometric's Planetoid('{root}', '{pyg_name}') downloads them)"
        )
    ds = _pyg().Planetoid(str(root), pyg_name)
    d = ds[0]
    edge_index = _undirected_no_loops(d.edge_index)
    idx = [m.nonzero().flatten() for m in (d.train_mask, d.val_mask, d.test_mask)]
    return NodeGraph(name, d.x.float(), edge_index, d.y.long(), int(ds.num_classes), *idx)


TU = {"mutag": "MUTAG", "nci1": "NCI1", "proteins": "PROTEINS", "dd": "DD", "enzymes": "ENZYMES"}


def load_tu(root: Path, name: str, *, max_degree_feature: int = 10, seed: int = 0) -> GraphSet:
    """A TU graph-classification set from `root/<NAME>/raw/<NAME>_*.txt` (Morris et al., 2020);
    node labels/attributes as features, or the one-hot degree when a set has none. Split
    80/10/10 seeded, as DosCond does."""
    tu_name = TU.get(name, name)
    raw = Path(root) / tu_name / "raw"
    needed = [f"{tu_name}_{s}.txt" for s in ("A", "graph_indicator", "graph_labels")]
    missing = [f for f in needed if not (raw / f).exists()]
    if missing:
        raise DistillError(
            f"{name} files missing in {raw}: {', '.join(missing)}; copy the TU dataset's raw "
            f"files there (torch_geometric's TUDataset('{root}', '{tu_name}') downloads them)"
        )
    ds = _pyg().TUDataset(str(root), tu_name)
    features, adjacency, labels = [], [], []
    for d in ds:
        n = int(d.num_nodes)
        a = torch.zeros(n, n)
        ei = _undirected_no_loops(d.edge_index)
        a[ei[0], ei[1]] = 1.0
        x = d.x.float() if d.x is not None else one_hot_degree(a, max_degree_feature)
        features.append(x)
        adjacency.append(a)
        labels.append(int(d.y))
    labels = torch.tensor(labels)
    gen = torch.Generator().manual_seed(seed)
    num_classes = int(labels.max()) + 1
    return GraphSet(
        name, features, adjacency, labels, num_classes, *_split_80_10_10(len(labels), gen)
    )


def _undirected_no_loops(edge_index: torch.Tensor) -> torch.Tensor:
    ei = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    ei = ei[:, ei[0] != ei[1]]
    return torch.unique(ei, dim=1)


for _name in PLANETOID:
    register(_name, NODE)(lambda root, _n=_name: load_planetoid(root, _n))
for _name in TU:
    register(_name, GRAPH)(lambda root, _n=_name: load_tu(root, _n))
