"""The graph evaluation protocol: train fresh networks on a summary, test them on the real data.

Node classification (GCond's protocol): a GCN (2 layers, 256 hidden, dropout 0.5, Adam lr
0.01, weight decay 5e-4, 600 epochs, learning rate x0.1 at half) is trained on the condensed
graph; after every epoch it is scored on the real graph's validation nodes and the best epoch
is kept; it is tested on the real graph's test nodes. SGC and GraphSAGE trained the same way
measure transfer. Graph classification (DosCond's): a 3-layer GCN with mean pooling, Adam lr
0.001, 500 epochs, x0.1 at half, batches of 128 graphs, best validation epoch, real test graphs.

Every row has the schema of `datadistill.results` (`images` counts synthetic nodes or graphs) and
the seconds spent in training steps alone (`train_seconds`, validation excluded), so training on a
summary and on the whole graph compare in one run.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from datadistill.evaluate import device_name
from datadistill.graph.data import GraphData, GraphSet, NodeGraph
from datadistill.graph.nets import GraphGCN, build_node_net
from datadistill.graph.summary import GraphSummary
from datadistill.results import command_line


@dataclass(frozen=True)
class GraphEvalConfig:
    archs: tuple[str, ...] = ("gcn",)
    runs: int = 5
    epochs: int = 600
    lr: float = 0.01
    weight_decay: float = 5e-4
    hidden: int = 256
    dropout: float = 0.5
    batch_size: int = 128  # graph classification only
    seed: int = 0


NODE_EVAL = GraphEvalConfig()
GRAPH_EVAL = GraphEvalConfig(epochs=500, lr=0.001, weight_decay=0.0, hidden=128, dropout=0.0)


def default_config(task: str) -> GraphEvalConfig:
    return NODE_EVAL if task == "node" else GRAPH_EVAL


def _seeded(build, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _decay(opt, epoch: int, epochs: int) -> None:
    if epoch == epochs // 2:
        for g in opt.param_groups:
            g["lr"] *= 0.1


@torch.no_grad()
def _node_accuracy(net, x, p, labels, idx) -> float:
    net.eval()
    return float((net(x, p)[idx].argmax(1) == labels[idx]).float().mean())


def train_node_net(
    arch: str,
    features: torch.Tensor,
    adjacency: torch.Tensor,
    labels: torch.Tensor,
    graph: NodeGraph,
    *,
    config: GraphEvalConfig,
    seed: int,
    device,
    rows: torch.Tensor | None = None,
):
    """Train `arch` on (features, adjacency, labels), the loss on `rows` (all if None);
    keep the epoch best on the real validation nodes. Returns (net, seconds in training steps)."""
    build = lambda: build_node_net(
        arch, graph.num_features, graph.num_classes, hidden=config.hidden, dropout=config.dropout
    )
    net = _seeded(build, seed).to(device)
    x, y = features.to(device), labels.to(device)
    p = net.propagation(adjacency.to(device))
    x_real, p_real = graph.features.to(device), net.propagation(graph.adjacency().to(device))
    y_real, val = graph.labels.to(device), graph.val_idx.to(device)
    rows = slice(None) if rows is None else rows.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best, best_state, seconds = -1.0, None, 0.0
    for epoch in range(config.epochs):
        _decay(opt, epoch, config.epochs)
        start = time.perf_counter()
        net.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x, p)[rows], y[rows]).backward()
        opt.step()
        seconds += time.perf_counter() - start
        acc = _node_accuracy(net, x_real, p_real, y_real, val)
        if acc > best:
            best, best_state = acc, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return net, seconds


def test_node_net(net, graph: NodeGraph, device) -> float:
    p = net.propagation(graph.adjacency().to(device))
    return _node_accuracy(
        net, graph.features.to(device), p, graph.labels.to(device), graph.test_idx.to(device)
    )


def _graph_accuracy(net, x, adj, mask, labels) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(x, adj, mask).argmax(1) == labels).float().mean())


def train_graph_net(
    x: torch.Tensor,
    adj: torch.Tensor,
    mask: torch.Tensor | None,
    labels: torch.Tensor,
    data: GraphSet,
    *,
    config: GraphEvalConfig,
    seed: int,
    device,
):
    """DosCond's protocol on padded graphs x [G, n, d], adj [G, n, n]; returns (net, seconds)."""
    build = lambda: GraphGCN(data.num_features, data.num_classes, hidden=config.hidden,
                             dropout=config.dropout)  # fmt: skip
    net = _seeded(build, seed).to(device)
    x, adj, labels = x.to(device), adj.to(device), labels.to(device)
    mask = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask
    mask = mask.to(device)
    vx, va, vm = (t.to(device) for t in data.batch(data.val_idx))
    vy = data.labels[data.val_idx].to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, seconds = -1.0, None, 0.0
    for epoch in range(config.epochs):
        _decay(opt, epoch, config.epochs)
        start = time.perf_counter()
        net.train()
        for b in torch.randperm(len(labels), generator=gen).split(config.batch_size):
            b = b.to(device)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[b], adj[b], mask[b]), labels[b]).backward()
            opt.step()
        seconds += time.perf_counter() - start
        acc = _graph_accuracy(net, vx, va, vm, vy)
        if acc > best:
            best, best_state = acc, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return net, seconds


def test_graph_net(net, data: GraphSet, device) -> float:
    x, adj, mask = (t.to(device) for t in data.batch(data.test_idx))
    return _graph_accuracy(net, x, adj, mask, data.labels[data.test_idx].to(device))


def _train_and_test(arch, features, adjacency, mask, labels, data, config, seed, device, rows=None):
    if data.task == "node":
        net, secs = train_node_net(arch, features, adjacency, labels, data, config=config,
                                   seed=seed, device=device, rows=rows)  # fmt: skip
        return test_node_net(net, data, device), secs
    if arch != "gcn":
        raise ValueError(f"graph classification is evaluated with 'gcn' only, not '{arch}'")
    net, secs = train_graph_net(features, adjacency, mask, labels, data, config=config,
                                seed=seed, device=device)  # fmt: skip
    return test_graph_net(net, data, device), secs


def _runs(arch, inputs, data, config, device, rows=None):
    accs, secs = [], []
    for r in range(config.runs):
        acc, s = _train_and_test(arch, *inputs, data, config, config.seed * 1000 + r, device, rows)
        accs.append(acc)
        secs.append(s)
    return accs, statistics.fmean(secs)


def _row(**fields) -> dict:
    accs = fields["accs"]
    return {
        "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.pstdev(accs),
        "command": command_line(),
        "modality": "graph",
        **fields,
    }


def evaluate_summary(
    summary: GraphSummary, data: GraphData, *, config: GraphEvalConfig, device="cpu"
) -> list[dict]:
    """One row per architecture: `config.runs` fresh networks trained on `summary`."""
    if (summary.task, summary.num_classes, summary.num_features) != (
        data.task,
        data.num_classes,
        data.num_features,
    ):
        raise ValueError(
            f"summary is for {summary.dataset} ({summary.task}, {summary.num_classes} classes, "
            f"{summary.num_features} features), not {data.name}"
        )
    run = summary.extra.get("run", {})
    if summary.task == "node":
        nodes = summary.n
    else:
        nodes = (
            int(summary.mask.sum())
            if summary.mask is not None
            else summary.features.shape[:2].numel()
        )
    rows = []
    for arch in config.archs:
        inputs = (summary.features, summary.adjacency, summary.mask, summary.labels)
        accs, secs = _runs(arch, inputs, data, config, device)
        rows.append(_row(
            method=summary.method, dataset=summary.dataset, ipc=summary.ipc,
            iterations=run.get("iterations", 0), arch=arch, runs=config.runs, accs=accs,
            images=summary.n, nodes=nodes, edges=_edges(summary.adjacency),
            stored_bytes=summary.stored_bytes, sec_per_iter=run.get("sec_per_iter"),
            peak_mem_mb=run.get("peak_mem_mb"), distill_seconds=run.get("seconds"),
            train_seconds=secs, eval_epochs=config.epochs, task=summary.task,
            reduction=summary.extra.get("reduction"), seed=summary.seed,
            objective=summary.objective, parameterisation=summary.parameterisation,
            device=device_name(device),
        ))  # fmt: skip
    return rows


def evaluate_whole(data: GraphData, *, config: GraphEvalConfig, device="cpu") -> list[dict]:
    """The same protocol on the whole training data: the upper reference for every summary."""
    rows = []
    for arch in config.archs:
        if data.task == "node":
            inputs = (data.features, data.adjacency(), None, data.labels)
            accs, secs = _runs(arch, inputs, data, config, device, rows=data.train_idx)
            n, nodes, ipc = data.num_nodes, data.num_nodes, min(data.train_class_counts())
        else:
            x, adj, mask = data.batch(data.train_idx)
            accs, secs = _runs(
                arch, (x, adj, mask, data.labels[data.train_idx]), data, config, device
            )
            n, nodes = len(data.train_idx), int(mask.sum())
            ipc = min(len(data.train_graphs_of(c)) for c in range(data.num_classes))
        rows.append(_row(
            method="whole", dataset=data.name, ipc=ipc, iterations=0, arch=arch,
            runs=config.runs, accs=accs, images=n, nodes=nodes, edges=_whole_edges(data),
            stored_bytes=data.stored_bytes(), sec_per_iter=None, peak_mem_mb=None,
            distill_seconds=None, train_seconds=secs, eval_epochs=config.epochs, task=data.task,
            reduction=1.0, seed=0, objective="", parameterisation="graph",
            device=device_name(device),
        ))  # fmt: skip
    return rows


def _edges(adjacency: torch.Tensor) -> int:
    return int(adjacency.count_nonzero()) // 2


def _whole_edges(data: GraphData) -> int:
    if data.task == "node":
        return data.num_edges
    return sum(int(data.adjacency[i].count_nonzero()) // 2 for i in data.train_idx.tolist())
