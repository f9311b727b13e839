"""`distill continual`: class-incremental learning with a distilled memory vs Avalanche's
baselines at the same memory (Deng & Russakovsky, NeurIPS 2022).

distill continual --benchmark split-fmnist --method dm --memory 10 --seeds 3
distill continual --benchmark split-digits --strategies naive,gdumb,distill-recall --memory 5
"""

from __future__ import annotations

from pathlib import Path

from datadistill.cli.options import common_options
from datadistill.errors import DistillError

STRATEGY_HELP = "comma-separated: naive, replay, herding, gdumb, distill-replay, distill-recall"


def add_commands(subparsers) -> dict:
    p = subparsers.add_parser("continual", help="continual learning with a distilled memory")
    p.add_argument("--benchmark", default="split-digits", help="split-digits or split-fmnist")
    p.add_argument("--method", default="dm", help="core method that compresses each experience")
    p.add_argument("--memory", type=int, default=10, help="images per class kept in memory")
    p.add_argument("--seeds", type=int, default=3, help="class orders (seeds 0..N-1)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--strategies", default="all", help=STRATEGY_HELP)
    p.add_argument("--iterations", type=int, default=1000, help="distillation steps/experience")
    p.add_argument("--arch", default="convnet")
    p.add_argument("--epochs", type=int, default=5, help="epochs per experience (stream)")
    p.add_argument("--recall-epochs", type=int, default=300, help="epochs on memory (recall)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--experiences", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="method setting")
    p.add_argument("--results", type=Path, help="append rows to this JSON results file")
    p.add_argument("--log-dir", type=Path, help="Avalanche TextLogger files, one per run")
    p.add_argument(
        "--cache", type=Path, help="folder where distillations checkpoint (a rerun resumes them)"
    )
    common_options(p)
    return {"continual": cmd_continual}


def cmd_continual(args) -> list[dict]:
    from datadistill.cli.options import parse_settings
    from datadistill.distill import resolve_device
    from datadistill.results import append_rows, table
    from datadistill_apps.continual import strategies
    from datadistill_apps.continual.bench import split_benchmark
    from datadistill_apps.continual.loop import run_stream
    from datadistill_apps.continual.memory import DistillMemoryConfig
    from datadistill_apps.continual.rows import COLUMNS, rows

    names = strategies.available() if args.strategies == "all" else args.strategies.split(",")
    names = [n.strip() for n in names if n.strip()]
    for n in names:
        if n not in strategies.available():
            raise DistillError(f"unknown strategy '{n}'; {STRATEGY_HELP}")
    if args.seeds < 1:
        raise DistillError("--seeds must be at least 1")
    config = strategies.StrategyConfig(
        arch=args.arch,
        epochs=args.epochs,
        recall_epochs=args.recall_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
    )
    distill = DistillMemoryConfig(
        method=args.method,
        memory=args.memory,
        iterations=args.iterations,
        progress=not args.quiet,
        overrides=parse_settings(args.set),
        cache=args.cache,
    )
    device = resolve_device(args.device)
    results, data = [], None
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        bench = split_benchmark(
            args.benchmark,
            seed=seed,
            num_experiences=args.experiences,
            data=data,
            data_root=args.data_root,
            download=args.download,
        )
        data = bench.data
        for name in names:
            log = None
            if args.log_dir:
                args.log_dir.mkdir(parents=True, exist_ok=True)
                log = args.log_dir / f"{args.benchmark}-{name}-m{args.memory}-s{seed}.log"
            r = run_stream(
                bench,
                strategy=name,
                memory=args.memory,
                seed=seed,
                config=config,
                distill=distill,
                device=device,
                progress=False,
                log_file=log,
            )
            results.append(r)
            if not args.quiet:
                curve = " ".join(f"{c:.3f}" for c in r.curve)
                print(
                    f"order {seed} {name:15s} final {r.final_acc:.4f} forgetting "
                    f"{r.forgetting:.4f} curve [{curve}] ({r.seconds:.0f} s)"
                )
    out = rows(
        results,
        dataset=data.spec.name,
        method=args.method,
        iterations=args.iterations,
        arch=args.arch,
    )
    summary_rows = [r for r in out if "seeds" in r]
    print(table(summary_rows, COLUMNS))
    if args.results:
        append_rows(args.results, out)
        print(f"appended {len(out)} rows to {args.results}")
    return out
