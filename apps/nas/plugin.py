"""`distill nas ...`: rank NAS-Bench-201 cells by training them on a summary.

distill nas rank --summary S --archs 40 --seed 0   (+ NASWOT, synflow, grad-norm at init)
distill nas rank --summary S --benchmark-file NAS-Bench-201-v1_1-096897.pth  (CIFAR-10)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# registers the `nas201` network with datadistill.nets as this plugin loads
from datadistill_apps.nas import network  # noqa: F401


def add_commands(sub) -> dict:
    from datadistill.cli.options import common_options

    nas = sub.add_parser("nas", help="rank NAS-Bench-201 cells by training on a summary")
    nsub = nas.add_subparsers(dest="nas_command", required=True)
    r = nsub.add_parser("rank", help="rank correlation of a summary proxy with the ground truth")
    r.add_argument("--summary", type=Path, action="append", default=[], help="repeatable")
    r.add_argument("--archs", type=int, default=40, help="cells sampled from the 15,625")
    r.add_argument("--seed", type=int, default=0, help="cell sample, subsets and inits")
    r.add_argument("--dataset", help="default: the summary's dataset")
    r.add_argument("--benchmark-file", type=Path, help="NAS-Bench-201 .pth: truth from it")
    r.add_argument("--trust-benchmark-file", action="store_true",
                   help="let the benchmark file be fully unpickled (runs its code)")  # fmt: skip
    r.add_argument("--benchmark-hp", choices=("12", "200"), default="200")
    r.add_argument("--width", type=int, default=8, help="C, channels of the first stage")
    r.add_argument("--cells", type=int, default=1, help="N, cells per stage")
    r.add_argument("--truth-epochs", type=int, default=12, help="epochs on the full data")
    r.add_argument("--truth-lr", type=float, default=0.1)
    r.add_argument("--steps", type=int, default=200, help="SGD steps per proxy cell")
    r.add_argument(
        "--proxy-lr", type=float, help="proxies' lr (default: the protocol's 0.01; see README)"
    )
    r.add_argument(
        "--proxy-no-dsa", action="store_true", help="proxies without augmentation, as the truth"
    )
    r.add_argument(
        "--baselines", default="random,cheap", help="comma list of random, cheap ('' for none)"
    )
    r.add_argument(
        "--zero-cost", default="naswot,synflow,grad-norm",
        help="comma list of zero-cost proxies scored at initialisation ('' for none)",
    )  # fmt: skip
    r.add_argument(
        "--out",
        type=Path,
        help="folder for rows.json, cells.json (per-cell cache: a rerun resumes) and the "
        "scatter plot (default runs/nas-rank-DATASET-sSEED)",
    )
    r.add_argument("--results", type=Path, help="also append the proxy rows to this JSON file")
    r.add_argument("--cache", type=Path, help="per-cell rows (default OUT/cells.json)")
    r.add_argument("--plot", type=Path, help="scatter PNG (default OUT/proxies.png)")
    common_options(r)
    return {"nas": cmd_nas}


def cmd_nas(args: argparse.Namespace) -> None:
    if args.nas_command == "rank":
        cmd_rank(args)


def cmd_rank(args: argparse.Namespace) -> None:
    # every cell is a new graph; compiling each would cost more than training it
    os.environ.setdefault("DATADISTILL_COMPILE", "0")
    from datadistill import data as datasets
    from datadistill.distill import resolve_device
    from datadistill.errors import DistillError
    from datadistill.results import append_rows
    from datadistill.summary import Summary
    from datadistill_apps.nas.benchmark import benchmark_accuracies, load_benchmark
    from datadistill_apps.nas.pipeline import (
        ProxyPlan,
        Truth,
        proxy_sets,
        score_proxy,
        trained_truth,
        zero_cost_row,
    )
    from datadistill_apps.nas.plots import proxy_scatter
    from datadistill_apps.nas.scoring import TRUTH_TRAIN, CellSetting
    from datadistill_apps.nas.space import sample_archs
    from datadistill_apps.nas.table import markdown
    from datadistill_apps.nas.zero_cost import zero_cost

    summaries = [(Summary.load(p), str(p)) for p in args.summary]
    name = args.dataset or (summaries[0][0].spec.name if summaries else None)
    if name is None:
        raise DistillError("give --summary S or --dataset NAME")
    if min(args.width, args.cells + 1, args.truth_epochs, args.steps) < 1:
        raise DistillError("--width, --truth-epochs and --steps must be >= 1, --cells >= 0")
    if args.proxy_lr is not None and not args.proxy_lr > 0:  # NaN fails too
        raise DistillError(f"--proxy-lr must be a positive number, got {args.proxy_lr}")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    zero = [z.strip() for z in args.zero_cost.split(",") if z.strip()]
    for z in zero:
        zero_cost(z)  # refuses an unknown name before any training
    if not summaries and not baselines and not zero:
        raise DistillError(
            "nothing to rank: give --summary S, --baselines random,cheap or --zero-cost naswot"
        )
    data = datasets.load(name, root=args.data_root, download=args.download)
    device = resolve_device(args.device)
    archs = sample_archs(args.archs, seed=args.seed)
    out = args.out or Path("runs") / f"nas-rank-{name}-s{args.seed}"
    cache = args.cache or out / "cells.json"
    progress = not args.quiet
    if args.benchmark_file:
        api = load_benchmark(args.benchmark_file, trust=args.trust_benchmark_file)
        acc = benchmark_accuracies(api, archs, dataset=name, hp=args.benchmark_hp)
        truth = Truth(acc, None, f"NAS-Bench-201 {name} hp={args.benchmark_hp}")
    else:
        setting = CellSetting(
            width=args.width, cells=args.cells,
            train=TRUTH_TRAIN.with_(epochs=args.truth_epochs, lr=args.truth_lr),
        )  # fmt: skip
        truth = trained_truth(
            archs, data, setting=setting, seed=args.seed, device=device, cache=cache,
            progress=progress,
        )  # fmt: skip
    plan = ProxyPlan(
        width=args.width, cells=args.cells, steps=args.steps, lr=args.proxy_lr,
        dsa=not args.proxy_no_dsa,
    )  # fmt: skip
    ipcs = sorted({s.ipc for s, _ in summaries}) or [10]
    rows = []
    for ts, setting in proxy_sets(
        data, summaries=summaries, baselines=baselines, ipcs=ipcs, plan=plan, seed=args.seed
    ):
        row, _ = score_proxy(
            archs, ts, setting, data, truth=truth, plan=plan, seed=args.seed, device=device,
            cache=cache, progress=progress,
        )  # fmt: skip
        rows.append(row)
    for z in zero:
        rows.append(zero_cost_row(
            archs, data, name=z, truth=truth, width=args.width, cells=args.cells,
            seed=args.seed, device=device, top_k=plan.top_k,
        ))  # fmt: skip
    append_rows(out / "rows.json", rows)
    if args.results:
        append_rows(args.results, rows)
    print(markdown(rows))
    print(f"ground truth: {truth.label}; {len(archs)} cells; rows in {out / 'rows.json'}")
    plot = args.plot or out / "proxies.png"
    proxy_scatter(rows, truth.acc, plot, title=f"{name}: proxy vs {truth.label}")
    print(f"wrote {plot}")
