"""NAS on Fashion-MNIST summaries: do DM, DSA and MTT summaries rank NAS-Bench-201 cells?

Ground truth: 40 cells sampled with seed 0 from the 15,625, each trained in the macro
network at C=8, N=1 for 12 epochs on the full 60,000 training images (SGD lr 0.1, batch
256, no augmentation; 12 epochs is NAS-Bench-201's short schedule) and tested on the
10,000 test images. Proxies train the same cells from the same initialisation for about
200 SGD steps (about 1/14 of the ground truth's 2,820) on: each summary at IPC 10 and 50,
a random subset of the same size, and one pass over 51,200 real images (cheap training,
equal steps). Zero-cost baselines (NASWOT, synflow, grad-norm) score the same cells at the
truth's initialisation from one batch of 128 training images. Reported: Spearman, Kendall,
top-5 overlap, each with a bootstrap 95% interval over the cells, seconds per cell, cost
ratio. Figures: one scatter panel per proxy, and rho with its interval against seconds
per cell (experiments/results/nas_fmnist_rho_cost.png).
Resumable: every finished cell is cached in experiments/results/nas_fmnist_cells.json.
Several processes (one GPU, or several machines) can share the work: each trains every K-th
cell with --shard I/K, of the ground truth (--truth-only) or of the proxies (--cells-only,
which trains and caches without scoring), appending to the same cache under a file lock
(experiments/gpu_next.sh runs eight). A last run without --shard then scores from the cache.

    python experiments/nas_fmnist.py --device auto
    python experiments/nas_fmnist.py --truth-only --shard 0/8
    python experiments/nas_fmnist.py --cells-only --shard 0/4 --methods dm --ipc 50
    python experiments/nas_fmnist.py --rescore        # stored rows rescored, zero-cost added
    python experiments/nas_fmnist.py --dataset digits --archs 4 --truth-epochs 1 ...  (smoke)

--truth-seeds 0 1 2 trains the ground truth from several initialisations of the same cells
(cells are always sampled with --seed): the truth is their mean, and a row per pair of
seeds records their agreement, the ceiling any proxy can reach (experiments/gpu_nas_truth.sh).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

os.environ.setdefault("DATADISTILL_COMPILE", "0")  # one graph per cell: compiling costs more

from datadistill import data as datasets  # noqa: E402
from datadistill.distill import resolve_device  # noqa: E402
from datadistill.results import append_rows, command_line, load_rows  # noqa: E402
from datadistill.summary import Summary  # noqa: E402
from datadistill_apps.nas.agreement import agreement, bootstrap  # noqa: E402
from datadistill_apps.nas.pipeline import (  # noqa: E402
    ProxyPlan,
    Truth,
    proxy_sets,
    rescore,
    score_proxy,
    trained_truth,
    zero_cost_row,
)
from datadistill_apps.nas.plots import proxy_scatter, rho_against_cost  # noqa: E402
from datadistill_apps.nas.scoring import TRUTH_TRAIN, CellSetting, score_cells  # noqa: E402
from datadistill_apps.nas.space import sample_archs  # noqa: E402
from datadistill_apps.nas.table import markdown  # noqa: E402
from datadistill_apps.nas.zero_cost import PROXIES  # noqa: E402

RESULTS = Path("experiments/results/nas_fmnist.json")
SUMMARIES = Path("experiments/results")


def find_summary(root: Path, method: str, dataset: str, ipc: int) -> Path | None:
    """A committed summary, e.g. experiments/results/*_fmnist/dm-fashion-mnist-ipc10-s0/."""
    hits = sorted(root.glob(f"*/{method}-{dataset}-ipc{ipc}-s0/summary.safetensors"))
    return hits[0] if hits else None


def plotted(results: Path, tag: str, dataset: str, truth: str) -> list[dict]:
    """Every proxy of one plan (its `ProxyPlan.tag()`) scored against `truth` in the
    results file, the latest row of each: a run that scores one new summary redraws the
    whole figure, not a figure of one panel."""
    latest = {}
    for r in load_rows(results):
        kind = r["variant"].removeprefix("proxy=")
        if r["dataset"] == dataset and r.get("truth") == truth and (
            kind == "cheap-train" or kind.endswith(tag)
            and kind.removesuffix(tag) in ("summary", "random-subset")
        ):  # fmt: skip
            latest[(r["method"], r["ipc"], r["variant"], r.get("source"))] = r
    return list(latest.values())


def plan_tags(rows: list[dict]) -> list[str]:
    """The plans (lr and augmentation tags) the trained proxies in `rows` ran under."""
    tags = set()
    for r in rows:
        kind = r["variant"].removeprefix("proxy=")
        for base in ("summary", "random-subset"):
            if kind.startswith(base):
                tags.add(kind.removeprefix(base))
    return sorted(tags)


def draw(results: Path, truth: Truth, dataset: str, cells: int) -> None:
    """Every figure of the study from the rows scored against `truth`: one scatter per
    plan (a panel per proxy), the zero-cost scatter, and rho against cost."""
    rows = [
        r for r in load_rows(results) if r["dataset"] == dataset and r.get("truth") == truth.label
    ]
    head = f"{dataset}: {cells} NAS-Bench-201 cells, proxy vs {truth.label}"
    for tag in plan_tags(rows):
        proxy_scatter(
            plotted(results, tag, dataset, truth.label), truth.acc,
            results.with_name(results.stem + tag.replace("-", "_") + ".png"),
            title=head + (f"; proxies {tag.strip('-').replace('-', ', ')}" if tag else ""),
        )  # fmt: skip
    zero = [r for r in rows if r["variant"] == "proxy=zero-cost"]
    if zero:
        proxy_scatter(zero, truth.acc, results.with_name(results.stem + "_zero_cost.png"),
                      title=head + "; zero-cost proxies at initialisation")  # fmt: skip
    scored = [r for r in rows if r.get("spearman") is not None and "truth-seed" not in r["variant"]]
    rho_against_cost(
        scored, results.with_name(results.stem + "_rho_cost.png"),
        title=head + "\nSpearman (95% bootstrap CI over cells) against cost",
        truth_seconds=truth.seconds,
    )  # fmt: skip


def seed_rows(per_seed: dict[int, Truth], *, dataset: str, width: int, cells: int) -> list[dict]:
    """One row per pair of truth seeds (a, b): how well seed b's accuracies rank the cells
    as seed a's do. Their rho bounds what any proxy can reach against one seed."""
    seeds, rows = sorted(per_seed), []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            ta, tb = per_seed[a], per_seed[b]
            agree = agreement(ta.acc, tb.acc)
            rows.append({
                "method": f"truth-seed{b}", "dataset": dataset, "ipc": 0, "iterations": 0,
                "arch": f"nas201-C{width}-N{cells}", "runs": agree.n, "acc_mean": None,
                "acc_std": None, "images": 0, "stored_bytes": 0, "sec_per_iter": None,
                "peak_mem_mb": None, "command": command_line(),
                "variant": "proxy=truth-seed", "eval_epochs": 0, "seed": a,
                "spearman": agree.spearman, "kendall": agree.kendall, "top5": agree.top_k,
                "cells_scored": agree.n, "proxy_seconds": tb.seconds, "truth_seconds": ta.seconds,
                "cost_ratio": 1.0, "images_seen_ratio": 1.0, "truth": f"{ta.label}, seed {a}",
                "setting": ta.label, "device": ta.device, "proxy_acc": tb.acc,
                **bootstrap(ta.acc, tb.acc).record(),
            })  # fmt: skip
    return rows


def shard(text: str) -> tuple[int, int]:
    """'I/K' -> (I, K), with 0 <= I < K."""
    try:
        index, shards = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes I/K, e.g. 0/4; got '{text}'") from None
    if not 0 <= index < shards:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= I < K")
    return index, shards


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--archs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="cell sample, proxies' inits, subsets")
    p.add_argument(
        "--truth-seeds", type=int, nargs="+", help="inits of the ground truth (default: --seed)"
    )
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--truth-epochs", type=int, default=12)
    p.add_argument("--truth-lr", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=200, help="SGD steps per proxy cell")
    p.add_argument(
        "--proxy-lr", type=float, default=None, help="proxies' lr (default: the protocol's)"
    )
    p.add_argument(
        "--proxy-no-dsa", action="store_true", help="proxies without augmentation, as the truth"
    )
    p.add_argument("--ipc", type=int, nargs="+", default=[10, 50])
    p.add_argument("--methods", nargs="*", default=["dm", "dsa", "mtt"])
    p.add_argument("--summaries", type=Path, default=SUMMARIES, help="folder to search")
    p.add_argument("--summary", type=Path, nargs="*", default=[], help="extra summary files")
    p.add_argument("--baselines", nargs="*", default=["random", "cheap"])
    p.add_argument(
        "--zero-cost", nargs="*", default=list(PROXIES), choices=list(PROXIES),
        help="zero-cost proxies to score (none: --zero-cost with no names)",
    )  # fmt: skip
    p.add_argument("--zero-cost-batch", type=int, default=128, help="images (NASWOT's 128)")
    p.add_argument(
        "--rescore",
        action="store_true",
        help="train no proxy: rescore the stored rows from their per-cell scores (with "
        "intervals), score the zero-cost proxies, redraw every figure",
    )
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--shard",
        type=shard,
        default=(0, 1),
        metavar="I/K",
        help="train only cells I, I+K, I+2K, ... (shards share the cache safely)",
    )
    p.add_argument("--truth-only", action="store_true", help="stop after the ground truth")
    p.add_argument(
        "--cells-only",
        action="store_true",
        help="train and cache the proxies' cells, skip the ground truth and the scores",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    if args.truth_only and args.cells_only:
        p.error("--truth-only and --cells-only exclude each other")
    if args.shard[1] > 1 and not (args.truth_only or args.cells_only):
        p.error("--shard trains part of the cells: add --truth-only or --cells-only")
    if args.zero_cost_batch < 2:
        p.error("--zero-cost-batch must be at least 2 (NASWOT compares inputs)")

    data = datasets.load(args.dataset)
    device = resolve_device(args.device)
    if device.type == "cuda":  # a few conv shapes, reused thousands of times: pick the fastest
        torch.backends.cudnn.benchmark = True
    index, shards = args.shard
    every = sample_archs(args.archs, seed=args.seed)
    archs = every[index::shards]
    cache = args.results.with_name(args.results.stem + "_cells.json")
    progress = not args.quiet

    paths, missing = list(args.summary), []
    for method in [] if args.truth_only or args.rescore else args.methods:
        for ipc in args.ipc:
            found = find_summary(args.summaries, method, args.dataset, ipc)
            (paths if found else missing).append(found or f"{method} IPC {ipc}")
    for m in missing:
        print(f"no {m} summary for {args.dataset} under {args.summaries}: skipped", flush=True)
    summaries = [(Summary.load(path), str(path)) for path in paths]

    plan = ProxyPlan(
        width=args.width, cells=args.cells, steps=args.steps, lr=args.proxy_lr,
        dsa=not args.proxy_no_dsa,
    )  # fmt: skip
    skip_sets = args.truth_only or args.rescore
    sets = proxy_sets(
        data, summaries=summaries, baselines=[] if skip_sets else args.baselines,
        ipcs=args.ipc, plan=plan, seed=args.seed,
    )  # fmt: skip
    if args.cells_only:
        for ts, proxy in sets:
            score_cells(
                archs, ts, data, setting=proxy, seed=args.seed, device=device, cache=cache,
                progress=progress,
            )  # fmt: skip
        print(f"cached {len(sets)} proxies x {len(archs)} cells in {cache}", flush=True)
        return

    setting = CellSetting(
        width=args.width,
        cells=args.cells,
        train=TRUTH_TRAIN.with_(epochs=args.truth_epochs, lr=args.truth_lr),
    )
    seeds = args.truth_seeds or [args.seed]
    per_seed = {
        s: trained_truth(
            archs, data, setting=setting, seed=s, device=device, cache=cache, progress=progress
        )
        for s in seeds
    }
    truth = mean_truth(per_seed)
    print(f"ground truth: {truth.label}, {truth.seconds:.1f} s per cell", flush=True)
    if args.truth_only:
        return

    if len(seeds) > 1:
        pairs = seed_rows(per_seed, dataset=args.dataset, width=args.width, cells=args.cells)
        append_rows(args.results, pairs)
        for r in pairs:
            print(f"truth seed {r['seed']} vs {r['method']}: rho {r['spearman']:.3f} "
                  f"{r['spearman_ci']}", flush=True)  # fmt: skip
    if args.rescore:
        stored = [
            rescore(r, truth) for r in load_rows(args.results)
            if r["dataset"] == args.dataset and r.get("truth") == truth.label
            and r["variant"] not in ("proxy=zero-cost", "proxy=truth-seed")
        ]  # fmt: skip
        append_rows(args.results, stored)
        print(f"rescored {len(stored)} stored proxy rows against {truth.label}", flush=True)
    for name in args.zero_cost:
        row = zero_cost_row(
            every, data, name=name, truth=truth, width=args.width, cells=args.cells,
            seed=args.seed, device=device, batch_size=args.zero_cost_batch, top_k=plan.top_k,
        )  # fmt: skip
        append_rows(args.results, [row])
        print(f"{name}: rho {row['spearman']:.3f} {row['spearman_ci']}, "
              f"{row['proxy_seconds']:.3f} s/cell", flush=True)  # fmt: skip

    rows = []
    for ts, proxy in sets:
        row, _ = score_proxy(
            archs, ts, proxy, data, truth=truth, plan=plan, seed=args.seed, device=device,
            cache=cache, progress=progress,
        )  # fmt: skip
        row["missing_summaries"] = missing
        append_rows(args.results, [row])  # one proxy at a time: partial runs keep their rows
        rows.append(row)
        print(markdown([row]), flush=True)

    draw(args.results, truth, args.dataset, len(every))
    scored = [
        r for r in load_rows(args.results)
        if r["dataset"] == args.dataset and r.get("truth") == truth.label
    ]  # fmt: skip
    print(markdown(scored))

    def cost(r: dict) -> str:  # seconds where both ran on one machine, else images seen
        if r["cost_ratio"] is not None:
            return f"{r['cost_ratio']:.3f} of the time"
        return f"{r['images_seen_ratio']:.3f} of the images seen"

    zero = max((r["spearman"] for r in scored if r["variant"] == "proxy=zero-cost"), default=None)
    passing = [
        f"{r['method']} IPC {r['ipc']} ({cost(r)})" for r in scored
        if r["variant"].startswith("proxy=summary") and r["spearman"] >= 0.6
        and (r["cost_ratio"] if r["cost_ratio"] is not None else r["images_seen_ratio"]) <= 0.1
        and (zero is None or r.get("spearman_ci", [-1])[0] > zero)
    ]  # fmt: skip
    print(
        "summary proxies with rho >= 0.6, the interval's lower end above every zero-cost "
        "proxy's rho, at <= 1/10 of the cost: " + (", ".join(passing) or "none")
    )


def mean_truth(per_seed: dict[int, Truth]) -> Truth:
    """One seed's truth as it is; several: each cell's mean accuracy over the seeds (only
    cells every seed trained), labelled with the seeds."""
    if len(per_seed) == 1:
        return next(iter(per_seed.values()))
    cells = set.intersection(*(set(t.acc) for t in per_seed.values()))
    first = next(iter(per_seed.values()))
    seeds = ",".join(map(str, sorted(per_seed)))
    return Truth(
        {a: sum(t.acc[a] for t in per_seed.values()) / len(per_seed) for a in cells},
        first.seconds, f"{first.label}, mean of seeds {seeds}", device=first.device,
        images_seen=first.images_seen,
    )  # fmt: skip


if __name__ == "__main__":
    main()
