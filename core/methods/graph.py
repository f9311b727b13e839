"""Graph condensation presets (survey section 3, graphs): GCond, GCDM, DosCond.

Each is registered with `modality="graph"`, a `build` like any preset's, and the two hooks
graphs need in the one front door (`datadistill.distill.run`): a stepper for the summary's
two parameter groups (`datadistill.graph.stepper.GroupAdam`) and a `summarise` hook writing a
`GraphSummary` (`datadistill.graph.summary.summarise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from datadistill.errors import DistillError
from datadistill.graph.data import GraphData, GraphSet, NodeGraph
from datadistill.graph.objectives import DosCondMatching, GCDMMatching, GCondMatching
from datadistill.graph.params import BernoulliGraphs, SyntheticGraph, class_sizes
from datadistill.graph.stepper import GroupAdam
from datadistill.graph.summary import summarise
from datadistill.methods.registry import Method, register


@dataclass(frozen=True)
class SyntheticGraphConfig:
    """What GCond and GCDM share: the learnt features X' and adjacency MLP (GCond's
    parameterisation), their Adam steps, the matched network's size and loops."""

    lr_feat: float = 0.01
    lr_adj: float = 0.01
    lr_decay_at: float = 0.0
    hidden: int = 256
    layers: int = 2
    outer_loop: int = 20
    inner_loop: int = 10
    lr_net: float = 0.01
    adj_hidden: int = 128
    adj_layers: int = 3
    structure: bool = True
    threshold: float = 0.0
    reduction: float = 0.0


@dataclass(frozen=True)
class GCondConfig(SyntheticGraphConfig):
    """GCond (Jin et al., ICLR 2022), reference code's defaults: 600 epochs of `outer_loop` = 20
    matching steps (12000 iterations), inner_loop 10 (15 on Cora and CiteSeer), Adam on X' and
    on the adjacency MLP at 0.01 (1e-4 on Cora and CiteSeer), SGC with 2 propagations and
    Adam 0.01 as the matched network, DC's layer-wise distance, the MLP updated for 10 of every
    50 epochs. `reduction` > 0 sizes the summary as that fraction of all nodes (the paper's r),
    split over classes as the training labels are; 0 uses --ipc nodes per class."""

    iterations: int = 12000
    arch: str = "sgc"
    metric: str = "layerwise"
    structure_epochs: int = 10
    period: int = 50


@dataclass(frozen=True)
class GCDMConfig(SyntheticGraphConfig):
    """GCDM (Liu et al., 2022): GCond's parameterisation under receptive-field distribution
    matching with a 2-layer GCN. The paper gives no table of loop sizes; GCond's are used
    (outer 20, inner 10, Adam 0.01), and X' and the adjacency MLP step together."""

    iterations: int = 4000
    arch: str = "gcn"


@dataclass(frozen=True)
class DosCondConfig:
    """DosCond (Jin et al., KDD 2022), reference scripts: 1000 iterations, Adam lr_feat 0.01,
    lr_adj 0.1 (MUTAG; DD 2, NCI1 1), both x0.1 at iteration 400, a fresh 3-layer GCN (128
    hidden, mean pooling) per step, 256 real graphs a class, mse distance, sparsity weight beta
    0.1, temperature annealed 1 -> 0.01 over 200 steps; synthetic graphs have the training
    graphs' mean node count (`nodes` = 0) unless set."""

    iterations: int = 1000
    lr_feat: float = 0.01
    lr_adj: float = 0.1
    lr_decay_at: float = 0.4
    hidden: int = 128
    layers: int = 3
    batch_real: int = 256
    metric: str = "mse"
    beta: float = 0.1
    anneal_steps: int = 200
    nodes: int = 0


def _require(data: GraphData, task: str, method: str) -> None:
    if data.task != task:
        kind = "node classification graph" if task == "node" else "graph classification set"
        raise DistillError(f"{method} condenses a {kind}; '{data.name}' is a {data.task} dataset")


def node_class_sizes(cfg, graph: NodeGraph, ipc: int) -> list[int]:
    """Synthetic nodes per class: `ipc` each, or `reduction` * N split as the labels are."""
    counts = graph.train_class_counts()
    if cfg.reduction > 0:
        total = max(graph.num_classes, round(cfg.reduction * graph.num_nodes))
        sizes = class_sizes(counts, total)
    else:
        sizes = [ipc] * graph.num_classes
    bad = [c for c, (s, n) in enumerate(zip(sizes, counts, strict=True)) if s < 1 or s > n]
    if bad:
        raise DistillError(
            f"{graph.name} has {min(counts)} training nodes in its smallest class; use --ipc "
            f"1 to {min(counts)} (or a smaller --set reduction=...)"
        )
    return sizes


def _init_nodes(graph: NodeGraph, sizes: list[int], generator):
    """GCond's init: features of random real training nodes of each class."""
    picks = []
    for c, size in enumerate(sizes):
        pool = graph.train_nodes_of(c)
        picks.append(pool[torch.randperm(len(pool), generator=generator)[:size]])
    nodes = torch.cat(picks)
    return graph.features[nodes], graph.labels[nodes]


def _node_param(cfg, graph: NodeGraph, ipc: int, generator):
    sizes = node_class_sizes(cfg, graph, ipc)
    x0, y = _init_nodes(graph, sizes, generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        param = SyntheticGraph(x0, y, hidden=cfg.adj_hidden, layers=cfg.adj_layers,
                               structure=cfg.structure, threshold=cfg.threshold)  # fmt: skip
    net = {"in_dim": graph.num_features, "num_classes": graph.num_classes, "arch": cfg.arch,
           "hidden": cfg.hidden, "layers": cfg.layers, "outer_loop": cfg.outer_loop,
           "inner_loop": cfg.inner_loop, "lr_net": cfg.lr_net}  # fmt: skip
    return param, net


def _build_gcond(cfg: GCondConfig, data: GraphData, ipc: int, generator):
    _require(data, "node", "gcond")
    param, net = _node_param(cfg, data, ipc, generator)
    objective = GCondMatching(metric=cfg.metric, structure_epochs=cfg.structure_epochs,
                              period=cfg.period, **net)  # fmt: skip
    return param, objective


def _build_gcdm(cfg: GCDMConfig, data: GraphData, ipc: int, generator):
    _require(data, "node", "gcdm")
    param, net = _node_param(cfg, data, ipc, generator)
    return param, GCDMMatching(**net)


def _build_doscond(cfg: DosCondConfig, data: GraphData, ipc: int, generator):
    """DosCond's init: `ipc` random real training graphs per class, truncated (or zero-padded)
    to the synthetic size."""
    _require(data, "graph", "doscond")
    data: GraphSet
    n = cfg.nodes or data.mean_nodes()
    picks = []
    for c in range(data.num_classes):
        pool = data.train_graphs_of(c)
        if ipc < 1 or ipc > len(pool):
            raise DistillError(
                f"class {c} has {len(pool)} training graphs; use --ipc 1 to {len(pool)}"
            )
        picks.append(pool[torch.randperm(len(pool), generator=generator)[:ipc]])
    picks = torch.cat(picks)
    x, adj, _ = data.batch(picks, max_nodes=n)
    param = BernoulliGraphs(x, adj, data.labels[picks])
    objective = DosCondMatching(
        in_dim=data.num_features, num_classes=data.num_classes, hidden=cfg.hidden,
        layers=cfg.layers, batch_real=cfg.batch_real, metric=cfg.metric, beta=cfg.beta,
        anneal_steps=cfg.anneal_steps,
    )  # fmt: skip
    return param, objective


_CORA_LIKE = {"outer_loop": 20, "inner_loop": 15, "lr_feat": 1e-4, "lr_adj": 1e-4}

register(
    Method(
        "gcond",
        "graph gradient matching",
        "Jin et al., ICLR 2022",
        GCondConfig,
        build=_build_gcond,
        stepper=GroupAdam,
        summarise=summarise,
        modality="graph",
        per_dataset={"cora": _CORA_LIKE, "citeseer": _CORA_LIKE},
    )
)
register(
    Method(
        "gcdm",
        "graph distribution matching",
        "Liu et al., arXiv 2206.13697, 2022",
        GCDMConfig,
        build=_build_gcdm,
        stepper=GroupAdam,
        summarise=summarise,
        modality="graph",
    )
)
register(
    Method(
        "doscond",
        "graph gradient matching",
        "Jin et al., KDD 2022",
        DosCondConfig,
        build=_build_doscond,
        stepper=GroupAdam,
        summarise=summarise,
        modality="graph",
        per_dataset={"dd": {"lr_adj": 2.0}, "nci1": {"lr_adj": 1.0}, "mutag": {"lr_adj": 0.1}},
    )
)
