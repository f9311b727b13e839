"""Graph summaries in the modality registry: `distill eval | show | export` for GCond, GCDM,
DosCond and random-subgraph summaries.

Evaluation is `datadistill.graph.evaluate`'s protocol for the summary's task (GCond's for node
classification: a GCN, SGC or GraphSAGE, 600 epochs, best validation epoch; DosCond's for
graph classification: a pooled GCN, 500 epochs), tested on the real graph it was made from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from datadistill.errors import DistillError
from datadistill.graph.summary import TENSORS, GraphSummary
from datadistill.modality import (
    EvalRequest,
    Modality,
    ShowRequest,
    describe,
    register,
    tensor_export,
)
from datadistill.modality import shapes as shape_text
from datadistill.results import fmt_acc, fmt_bytes
from datadistill.results import table as results_table


def valid_archs(task: str) -> tuple[str, ...]:
    """Node classification trains any node network; graph classification DosCond's GCN."""
    from datadistill.graph.nets import NODE_NETS

    return tuple(NODE_NETS) if task == "node" else ("gcn",)


def evaluate_graph(summary: GraphSummary, request: EvalRequest) -> list[dict]:
    from datadistill.graph import data as graph_data
    from datadistill.graph.evaluate import default_config, evaluate_summary

    base = default_config(summary.task)
    archs = request.archs or base.archs
    allowed = valid_archs(summary.task)
    unknown = [a for a in archs if a not in allowed]
    if unknown:
        raise DistillError(
            f"unknown architecture '{unknown[0]}' for a {summary.task}-classification graph "
            f"summary; choose from: {', '.join(allowed)}"
        )
    data = graph_data.load(request.dataset or summary.dataset, root=request.data_root)
    ours = (summary.task, summary.num_classes, summary.num_features)
    if ours != (data.task, data.num_classes, data.num_features):
        raise DistillError(
            f"the summary is for {summary.dataset} ({summary.task} task, {summary.num_classes} "
            f"classes, {summary.num_features} features), not {data.name}; pass --dataset "
            f"{summary.dataset} (or drop --dataset)"
        )
    config = dataclasses.replace(
        base,
        archs=archs,
        runs=request.runs or base.runs,
        epochs=request.epochs or base.epochs,
        seed=request.seed or base.seed,
    )
    return evaluate_summary(summary, data, config=config, device=request.device)


def graph_table(rows: list[dict]) -> str:
    """Rows with the graph's own size columns: nodes (or graphs), edges, training time."""
    unit = "graphs" if rows and rows[0].get("task") == "graph" else "nodes"
    return results_table(
        rows,
        [
            ("method", lambda r: r["method"]),
            ("dataset", lambda r: r["dataset"]),
            ("IPC", lambda r: str(r["ipc"])),
            ("arch", lambda r: r["arch"]),
            (unit, lambda r: str(r["images"])),
            ("edges", lambda r: str(r["edges"])),
            ("bytes", lambda r: fmt_bytes(r["stored_bytes"])),
            ("acc % (mean ± std)", fmt_acc),
            ("runs", lambda r: str(r["runs"])),
            ("train s/model", lambda r: f"{r['train_seconds']:.3g}"),
        ],
    )


def _density(adjacency: torch.Tensor, nodes: torch.Tensor) -> tuple[int, float]:
    """(undirected edges, edge density) of one adjacency [n, n] over its first `nodes` real
    nodes: off-diagonal entries with weight > 0, over the n (n - 1) possible ones."""
    n = int(nodes)
    a = adjacency[:n, :n]
    off = int(a.count_nonzero()) - int(a.diagonal().count_nonzero())
    return off // 2, off / (n * (n - 1)) if n > 1 else 0.0


def show_graph(summary: GraphSummary, path: Path, request: ShowRequest) -> list[str]:
    del path, request  # described on the terminal: no file, no options
    counts = torch.bincount(summary.labels, minlength=summary.num_classes).tolist()
    lines = [*describe(summary), f"tensors:       {shape_text(_tensors(summary))}"]
    if summary.task == "node":
        edges, density = _density(summary.adjacency, torch.tensor(summary.n))
        off = summary.adjacency[~torch.eye(summary.n, dtype=torch.bool)]
        weights = off[off > 0]
        mean_w = f", mean edge weight {float(weights.mean()):.3g}" if len(weights) else ""
        lines += [
            f"graph:         {summary.n} nodes, {edges} edges, edge density {density:.3f}"
            f"{mean_w}, {summary.num_features} features",
            f"nodes/class:   {counts}",
        ]
    else:
        sizes = (
            summary.mask.sum(1)
            if summary.mask is not None
            else torch.full((summary.n,), summary.features.shape[1])
        )
        stats = [_density(a, s) for a, s in zip(summary.adjacency, sizes, strict=True)]
        lines += [
            f"graphs:        {summary.n} graphs of {float(sizes.float().mean()):.1f} nodes on "
            f"average ({int(sizes.min())}-{int(sizes.max())}), "
            f"{sum(e for e, _ in stats) / len(stats):.1f} edges and edge density "
            f"{sum(d for _, d in stats) / len(stats):.3f} on average, "
            f"{summary.num_features} features",
            f"graphs/class:  {counts}",
        ]
    reduction = summary.extra.get("reduction")
    if reduction is not None:
        lines.append(f"reduction:     {reduction:.2%} of the real data")
    return lines


def _tensors(summary: GraphSummary) -> dict[str, torch.Tensor]:
    """The tensors the file stores (`GraphSummary.save`)."""
    names = TENSORS + (("mask",) if summary.mask is not None else ())
    return {k: getattr(summary, k) for k in names}


register(
    Modality(
        "graph",
        load=GraphSummary.load,
        evaluate=evaluate_graph,
        show=show_graph,
        export=tensor_export(_tensors),
        eval_options=frozenset(("archs", "runs", "epochs", "seed", "dataset")),
        table=graph_table,
    )
)
