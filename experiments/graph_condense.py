"""Graph condensation against random subsets and the whole graph (issue 12, graph part).

    python experiments/graph_condense.py --quick   # the committed run, about 5 min on 1 core
    python experiments/graph_condense.py           # the protocol as published (see README)

Node classification, offline data: `csbm` (datadistill.graph.data.csbm's stated defaults: 2000
nodes, 4 classes, 32 Gaussian features with signal 1.0, p_in 0.016, p_out 0.0013, Planetoid
split of 20 training nodes a class) and `karate` (networkx's real karate club). GCond and
GCDM at three sizes, each against a random subset of the same number of training nodes (the
subgraph they induce) and against the whole graph, all under one protocol (a GCN, transfer to
SGC and GraphSAGE). Graph classification: DosCond against random real graphs at three sizes
on `graph-families` (Erdos-Renyi / Barabasi-Albert / Watts-Strogatz, one-hot degrees).

Rows go to experiments/results/graph.json in core/results.py's schema, fields mapped so:
`ipc` = synthetic nodes per class (graphs per class for DosCond), `images` = nodes (graphs) in
the summary, `stored_bytes` = bytes of the summary's tensors as saved (features, dense
adjacency, labels; the whole graph: features, int64 edge list, labels), `iterations` =
condensation steps. Added: `nodes`, `edges`, `reduction` (summary nodes / all nodes; graphs /
training graphs), `train_seconds` (mean seconds in training steps per model, validation
excluded), and against the whole graph's row of the same run and architecture
`storage_ratio` and `train_time_ratio`; `variant` names the protocol ("quick" or "full").
Summaries and metrics are kept under experiments/results/graph/.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from datadistill.distill import run
from datadistill.graph import data as graph_data
from datadistill.graph.baselines import random_subset
from datadistill.graph.evaluate import (
    GraphEvalConfig,
    default_config,
    evaluate_summary,
    evaluate_whole,
)
from datadistill.loop import CHECKPOINT_FILE, SUMMARY_FILE, RunOptions
from datadistill.results import append_rows, table

RESULTS = Path("experiments/results/graph.json")
RUNS_DIR = Path("experiments/results/graph")

# (dataset, methods, sizes per class)
NODE_CELLS = [("csbm", ("gcond", "gcdm"), (2, 5, 10)), ("karate", ("gcond", "gcdm"), (1, 2, 4))]
GRAPH_CELLS = [("graph-families", ("doscond",), (1, 5, 10))]

PROTOCOLS = {
    # iterations per method, eval runs, eval epochs (node, graph), architectures, and whether
    # the transfer architectures (all but the first) are evaluated at every size or only at
    # the middle one
    "quick": {
        "gcond": 150,
        "gcdm": 150,
        "doscond": 100,
        "runs": 2,
        "epochs": (150, 100),
        "archs": ("gcn", "sgc", "sage"),
        "transfer_everywhere": False,
        # GCond alternates per network (20 steps): structure for 10 of every 50 networks;
        # 150 steps are 7.5 networks, so the quick run keeps the 1-in-5 share per 5 networks
        "gcond_sets": {"period": "5", "structure_epochs": "1"},
    },  # fmt: skip
    "full": {
        "gcond": 2000,
        "gcdm": 2000,
        "doscond": 1000,
        "runs": 5,
        "epochs": (600, 500),
        "archs": ("gcn", "sgc", "sage"),
        "transfer_everywhere": True,
        "gcond_sets": {},
    },  # fmt: skip
}


def eval_config(task: str, protocol: dict) -> GraphEvalConfig:
    base = default_config(task)
    epochs = protocol["epochs"][0 if task == "node" else 1]
    archs = protocol["archs"] if task == "node" else ("gcn",)
    return dataclasses.replace(base, runs=protocol["runs"], epochs=epochs, archs=archs)


def with_ratios(rows: list[dict], whole: dict[str, dict], variant: str) -> list[dict]:
    """Storage and training time against the whole graph's row (same arch, same run)."""
    for r in rows:
        w = whole[r["arch"]]
        r["variant"] = variant
        r["whole_stored_bytes"] = w["stored_bytes"]
        r["whole_train_seconds"] = w["train_seconds"]
        r["storage_ratio"] = r["stored_bytes"] / w["stored_bytes"]
        r["train_time_ratio"] = r["train_seconds"] / w["train_seconds"]
    return rows


def run_dataset(name: str, methods: tuple[str, ...], sizes, protocol: dict, variant: str):
    data = graph_data.load(name)
    config = eval_config(data.task, protocol)
    whole_rows = evaluate_whole(data, config=config)
    whole = {r["arch"]: r for r in whole_rows}
    rows = with_ratios(whole_rows, whole, variant)
    for ipc in sizes:
        cfg = config
        if not protocol["transfer_everywhere"] and ipc != sizes[len(sizes) // 2]:
            cfg = dataclasses.replace(config, archs=config.archs[:1])
        rows += with_ratios(
            evaluate_summary(random_subset(data, ipc), data, config=cfg), whole, variant
        )
        for method in methods:
            out = RUNS_DIR / variant / f"{method}-{name}-ipc{ipc}-s0"
            if not (out / CHECKPOINT_FILE).exists():  # a fresh run: no stale metrics
                (out / "metrics.jsonl").unlink(missing_ok=True)
            options = RunOptions(iterations=protocol[method], resume=True, progress=False)
            sets = protocol["gcond_sets"] if method == "gcond" else {}
            summary = run(method, data, ipc, options=options, overrides=sets, out_dir=out)
            (out / CHECKPOINT_FILE).unlink(missing_ok=True)  # the summary is what is kept
            assert (out / SUMMARY_FILE).exists()
            rows += with_ratios(evaluate_summary(summary, data, config=cfg), whole, variant)
    append_rows(RESULTS, rows)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the short protocol (about 5 minutes)")
    p.add_argument("--datasets", nargs="*", help="only these datasets")
    args = p.parse_args()
    variant = "quick" if args.quick else "full"
    protocol = PROTOCOLS[variant]
    for name, methods, sizes in NODE_CELLS + GRAPH_CELLS:
        if args.datasets and name not in args.datasets:
            continue
        rows = run_dataset(name, methods, sizes, protocol, variant)
        print(table(rows), flush=True)


if __name__ == "__main__":
    main()
