"""NAS on Fashion-MNIST summaries: do DM, DSA and MTT summaries rank NAS-Bench-201 cells?

Ground truth: 40 cells sampled with seed 0 from the 15,625, each trained in the macro
network at C=8, N=1 for 12 epochs on the full 60,000 training images (SGD lr 0.1, batch
256, no augmentation; 12 epochs is NAS-Bench-201's short schedule) and tested on the
10,000 test images. Proxies train the same cells from the same initialisation for about
200 SGD steps (about 1/14 of the ground truth's 2,820) on: each summary at IPC 10 and 50,
a random subset of the same size, and one pass over 51,200 real images (cheap training,
equal steps). Reported: Spearman, Kendall, top-5 overlap, seconds per cell, cost ratio.
Resumable: every finished cell is cached in experiments/results/nas_fmnist_cells.json.
Several processes (one GPU, or several machines) can share the work: each trains every K-th
cell with --shard I/K, of the ground truth (--truth-only) or of the proxies (--cells-only,
which trains and caches without scoring), appending to the same cache under a file lock
(experiments/gpu_next.sh runs eight). A last run without --shard then scores from the cache.

    python experiments/nas_fmnist.py --device auto
    python experiments/nas_fmnist.py --truth-only --shard 0/8
    python experiments/nas_fmnist.py --cells-only --shard 0/4 --methods dm --ipc 50
    python experiments/nas_fmnist.py --dataset digits --archs 4 --truth-epochs 1 ...  (smoke)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

os.environ.setdefault("DATADISTILL_COMPILE", "0")  # one graph per cell: compiling costs more

from datadistill import data as datasets  # noqa: E402
from datadistill.distill import resolve_device  # noqa: E402
from datadistill.results import append_rows, load_rows, table  # noqa: E402
from datadistill.summary import Summary  # noqa: E402
from datadistill_apps.nas.pipeline import ProxyPlan, proxy_sets, score_proxy, trained_truth  # noqa: E402
from datadistill_apps.nas.plots import proxy_scatter  # noqa: E402
from datadistill_apps.nas.plugin import COLUMNS  # noqa: E402
from datadistill_apps.nas.scoring import TRUTH_TRAIN, CellSetting, score_cells  # noqa: E402
from datadistill_apps.nas.space import sample_archs  # noqa: E402

RESULTS = Path("experiments/results/nas_fmnist.json")
SUMMARIES = Path("experiments/results")


def find_summary(root: Path, method: str, dataset: str, ipc: int) -> Path | None:
    """A committed summary, e.g. experiments/results/*_fmnist/dm-fashion-mnist-ipc10-s0/."""
    hits = sorted(root.glob(f"*/{method}-{dataset}-ipc{ipc}-s0/summary.safetensors"))
    return hits[0] if hits else None


def plotted(results: Path, plan: ProxyPlan, dataset: str) -> list[dict]:
    """Every proxy of this plan in the results file, the latest row of each: a run that
    scores one new summary redraws the whole figure, not a figure of one panel."""
    tag, latest = plan.tag(), {}
    for r in load_rows(results):
        kind = r["variant"].removeprefix("proxy=")
        if r["dataset"] == dataset and (kind == "cheap-train" or kind.endswith(tag) and (
            kind.removesuffix(tag) in ("summary", "random-subset")
        )):  # fmt: skip
            latest[(r["method"], r["ipc"], r["variant"], r.get("source"))] = r
    return list(latest.values())


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
    p.add_argument("--seed", type=int, default=0)
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

    data = datasets.load(args.dataset)
    device = resolve_device(args.device)
    if device.type == "cuda":  # a few conv shapes, reused thousands of times: pick the fastest
        torch.backends.cudnn.benchmark = True
    index, shards = args.shard
    archs = sample_archs(args.archs, seed=args.seed)[index::shards]
    cache = args.results.with_name(args.results.stem + "_cells.json")
    progress = not args.quiet

    paths, missing = list(args.summary), []
    for method in [] if args.truth_only else args.methods:
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
    sets = proxy_sets(
        data, summaries=summaries, baselines=[] if args.truth_only else args.baselines,
        ipcs=args.ipc, plan=plan,
        seed=args.seed,
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
    truth = trained_truth(
        archs, data, setting=setting, seed=args.seed, device=device, cache=cache, progress=progress
    )
    print(f"ground truth: {truth.label}, {truth.seconds:.1f} s per cell", flush=True)
    if args.truth_only:
        return

    rows = []
    for ts, proxy in sets:
        row, _ = score_proxy(
            archs, ts, proxy, data, truth=truth, plan=plan, seed=args.seed, device=device,
            cache=cache, progress=progress,
        )  # fmt: skip
        row["missing_summaries"] = missing
        append_rows(args.results, [row])  # one proxy at a time: partial runs keep their rows
        rows.append(row)
        print(table([row], COLUMNS), flush=True)

    print(table(rows, COLUMNS))
    proxy_scatter(
        plotted(args.results, plan, args.dataset),
        truth.acc,
        args.results.with_name(args.results.stem + plan.tag().replace("-", "_") + ".png"),
        title=f"{args.dataset}: {len(archs)} NAS-Bench-201 cells, proxy vs {truth.label}"
        + (f"; proxies {plan.tag().strip('-').replace('-', ', ')}" if plan.tag() else ""),
    )

    def cost(r: dict) -> str:  # seconds where both ran on one machine, else images seen
        if r["cost_ratio"] is not None:
            return f"{r['cost_ratio']:.3f} of the time"
        return f"{r['images_seen_ratio']:.3f} of the images seen"

    passing = [
        f"{r['method']} ({cost(r)})" for r in rows
        if r["variant"].startswith("proxy=summary") and r["ipc"] == max(args.ipc)
        and r["spearman"] >= 0.6
        and (r["cost_ratio"] if r["cost_ratio"] is not None else r["images_seen_ratio"]) <= 0.1
    ]  # fmt: skip
    print(
        f"summary proxies at IPC {max(args.ipc)} with rho >= 0.6 at <= 1/10 of the cost: "
        + (", ".join(passing) or "none")
    )


if __name__ == "__main__":
    main()
