"""Coreset baselines stored as graph summaries: a random subset of the real data.

Random node subset (GCond's "Random" baseline): `ipc` random training nodes of each class and
the subgraph they induce. Random graphs (DosCond's): `ipc` random training graphs of each
class, padded to one size with a mask. Being `GraphSummary`s, they are saved and evaluated
exactly as condensed summaries are.
"""

from __future__ import annotations

import torch

from datadistill.errors import DistillError
from datadistill.graph.data import GraphData, GraphSet, NodeGraph
from datadistill.graph.summary import GraphSummary


def random_subset(data: GraphData, ipc: int, *, seed: int = 0) -> GraphSummary:
    """`ipc` random training nodes (or graphs) of every class, seeded."""
    gen = torch.Generator().manual_seed(seed)
    if data.task == "node":
        return _random_nodes(data, ipc, gen, seed)
    return _random_graphs(data, ipc, gen, seed)


def _pick(pool: torch.Tensor, ipc: int, gen, what: str, c: int) -> torch.Tensor:
    if ipc < 1 or ipc > len(pool):
        raise DistillError(
            f"class {c} has {len(pool)} training {what}; use --ipc between 1 and {len(pool)}"
        )
    return pool[torch.randperm(len(pool), generator=gen)[:ipc]]


def _random_nodes(graph: NodeGraph, ipc: int, gen, seed: int) -> GraphSummary:
    nodes = torch.cat([_pick(graph.train_nodes_of(c), ipc, gen, "nodes", c)
                       for c in range(graph.num_classes)])  # fmt: skip
    features, adjacency = graph.subgraph(nodes)
    return GraphSummary(
        features=features, adjacency=adjacency, labels=graph.labels[nodes], task="node",
        dataset=graph.name, num_classes=graph.num_classes, method="random", ipc=ipc,
        objective="selection", parameterisation="induced_subgraph", seed=seed,
        extra={"reduction": len(nodes) / graph.num_nodes, "nodes": nodes.tolist()},
    )  # fmt: skip


def _random_graphs(data: GraphSet, ipc: int, gen, seed: int) -> GraphSummary:
    picks = torch.cat([_pick(data.train_graphs_of(c), ipc, gen, "graphs", c)
                       for c in range(data.num_classes)])  # fmt: skip
    x, adj, mask = data.batch(picks)
    return GraphSummary(
        features=x, adjacency=adj, labels=data.labels[picks], task="graph", dataset=data.name,
        num_classes=data.num_classes, method="random", ipc=ipc, objective="selection",
        parameterisation="real_graphs", seed=seed, mask=mask,
        extra={"reduction": len(picks) / len(data.train_idx), "graphs": picks.tolist()},
    )  # fmt: skip
