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
    p.add_argument(
        "--epochs", type=int,
        help="epochs per experience (stream; default 20 on split-digits, 5 on split-fmnist)",
    )  # fmt: skip
    p.add_argument("--recall-epochs", type=int, default=300, help="epochs on memory (recall)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, help="default 32 on split-digits, 128 on split-fmnist")
    p.add_argument("--experiences", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="method setting")
    p.add_argument(
        "--out",
        type=Path,
        help="run folder: rows, settings, distillation checkpoints; a rerun resumes it "
        "(default runs/continual-BENCHMARK-mMEMORY)",
    )
    p.add_argument("--time-limit", type=float, help="stop cleanly after this many seconds")
    p.add_argument("--results", type=Path, help="also append the rows to this JSON file")
    p.add_argument("--log-dir", type=Path, help="Avalanche TextLogger files, one per run")
    common_options(p)
    # `distill report` reads every app's rows; it rides on this plugin's entry point
    from datadistill_apps import report

    return {"continual": cmd_continual, **report.add_commands(subparsers)}


def cmd_continual(args) -> list[dict]:
    import time

    from datadistill.cli.options import parse_settings
    from datadistill.distill import resolve_device
    from datadistill.results import append_rows, table
    from datadistill_apps.continual import run_folder, strategies
    from datadistill_apps.continual.bench import STREAM_DEFAULTS, split_benchmark
    from datadistill_apps.continual.loop import TimeLimitReached, run_stream
    from datadistill_apps.continual.memory import DistillMemoryConfig
    from datadistill_apps.continual.rows import COLUMNS, aggregate, seed_row

    names = strategies.available() if args.strategies == "all" else args.strategies.split(",")
    names = [n.strip() for n in names if n.strip()]
    for n in names:
        if n not in strategies.available():
            raise DistillError(f"unknown strategy '{n}'; {STRATEGY_HELP}")
    if args.seeds < 1:
        raise DistillError("--seeds must be at least 1")
    if args.time_limit is not None and not args.time_limit >= 0:
        raise DistillError(f"--time-limit must be >= 0 seconds, got {args.time_limit}")
    if args.benchmark not in STREAM_DEFAULTS:
        raise DistillError(f"unknown benchmark '{args.benchmark}'; choose one of: "
                           f"{', '.join(STREAM_DEFAULTS)}")  # fmt: skip
    epochs, batch_size = STREAM_DEFAULTS[args.benchmark]
    epochs = epochs if args.epochs is None else args.epochs
    batch_size = batch_size if args.batch_size is None else args.batch_size
    config = strategies.StrategyConfig(
        arch=args.arch,
        epochs=epochs,
        recall_epochs=args.recall_epochs,
        lr=args.lr,
        batch_size=batch_size,
    )
    overrides = parse_settings(args.set)
    out = args.out or run_folder.default_out(args.benchmark, args.memory)
    settings = {
        "benchmark": args.benchmark, "method": args.method, "memory": args.memory,
        "iterations": args.iterations, "experiences": args.experiences, "set": overrides,
        "arch": args.arch, "epochs": epochs, "recall_epochs": args.recall_epochs,
        "lr": args.lr, "batch_size": batch_size,
    }  # fmt: skip
    run_folder.claim(out, settings)
    distill = DistillMemoryConfig(
        method=args.method,
        memory=args.memory,
        iterations=args.iterations,
        progress=not args.quiet,
        overrides=overrides,
        cache=out / run_folder.DISTILLATIONS,
    )
    device = resolve_device(args.device)
    deadline = None if args.time_limit is None else time.monotonic() + args.time_limit
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    done = run_folder.finished(out)
    todo = [(seed, name) for seed in seeds for name in names if (name, seed) not in done]
    if len(todo) < len(seeds) * len(names):
        print(f"{out}: {len(seeds) * len(names) - len(todo)} finished runs kept, {len(todo)} to go")
    data, stopped = None, False
    for seed, name in todo:
        if deadline is not None and time.monotonic() > deadline:
            stopped = True
            break
        bench = split_benchmark(
            args.benchmark,
            seed=seed,
            num_experiences=args.experiences,
            data=data,
            data_root=args.data_root,
            download=args.download,
        )
        data = bench.data
        log = None
        if args.log_dir:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            log = args.log_dir / f"{args.benchmark}-{name}-m{args.memory}-s{seed}.log"
        try:
            r = run_stream(
                bench, strategy=name, memory=args.memory, seed=seed, config=config,
                distill=distill, device=device, progress=False, log_file=log, deadline=deadline,
                memory_file=run_folder.memory_file(out, name, seed),
            )  # fmt: skip
        except TimeLimitReached:
            stopped = True
            break
        row = seed_row(
            r, dataset=data.spec.name, method=args.method, iterations=args.iterations,
            arch=args.arch,
        )  # fmt: skip
        row.update(epochs=epochs, recall_epochs=args.recall_epochs, lr=args.lr, batch=batch_size)
        run_folder.record(out, [row])
        done[(name, seed)] = row
        if not args.quiet:
            curve = " ".join(f"{c:.3f}" for c in r.curve)
            print(
                f"order {seed} {name:15s} final {r.final_acc:.4f} forgetting "
                f"{r.forgetting:.4f} curve [{curve}] ({r.seconds:.0f} s)"
            )
    per_seed = [done[(n, s)] for s in seeds for n in names if (n, s) in done]
    rows = per_seed + aggregate(per_seed)
    run_folder.record(out, rows)
    print(table([r for r in rows if "seeds" in r], COLUMNS))
    print(f"rows in {out / run_folder.ROWS_FILE}")
    if stopped:
        print(
            f"time limit reached: {len(per_seed)} of {len(seeds) * len(names)} runs finished; "
            "rerun the same command to continue"
        )
    if args.results:
        append_rows(args.results, rows)
        print(f"appended {len(rows)} rows to {args.results}")
    return rows
