"""`distill federated simulate | deploy`: the app's commands, added through core's plugins."""

from __future__ import annotations

import argparse
from pathlib import Path

from datadistill.cli.options import common_options


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--alpha", type=float, default=0.0, help="Dirichlet alpha; 0: IID")
    p.add_argument("--partition-seed", type=int, default=0)
    p.add_argument("--mode", choices=("summary", "fedavg", "statistics"), default="summary")
    p.add_argument("--method", default="dm", help="clients' distillation method")
    p.add_argument("--ipc", type=int, default=10, help="images per class per client")
    p.add_argument("--iterations", type=int, default=0, help="0: the method's default")
    p.add_argument("--rounds", type=int, default=1, help="FedAvg rounds")
    p.add_argument("--local-epochs", type=int, default=1, help="1: a constant client lr")
    p.add_argument("--arch", default="convnet")
    p.add_argument("--epochs", type=int, default=300, help="server epochs on the union")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for clients")
    p.add_argument("--pool", type=int, default=50, help="statistics mode: embedders")
    p.add_argument("--warm-rounds", type=int, default=0, help="statistics mode: FedAvg after")
    p.add_argument(
        "--sample-rate",
        type=float,
        default=0.0,
        help="statistics mode: each embedder reads this share of a client's rows (1: all; "
        "0: DM's batch_real a class in expectation over all clients)",
    )
    p.add_argument(
        "--client-epsilon",
        type=float,
        default=0.0,
        help="statistics mode: privatise each upload with dp-dm at this epsilon (0: exact)",
    )
    p.add_argument("--client-delta", type=float, default=1e-5, help="with --client-epsilon")
    p.add_argument("--fail-clients", default="", help="partition ids that fail (testing)")
    p.add_argument(
        "--out",
        type=Path,
        help="folder for rows.json, report.json and the clients' cache (a rerun skips finished "
        "clients; default runs/federated-DATASET-MODE-cCLIENTS-PARTITION-sSEED)",
    )
    p.add_argument("--results", type=Path, help="also append the result rows to this JSON file")
    p.add_argument("--report", type=Path, help="the server's full report (default OUT/report.json)")
    p.add_argument("--cache", type=Path, help="each client's summary (default OUT/cache)")
    common_options(p)


def add_commands(subparsers) -> dict:
    fed = subparsers.add_parser("federated", help="clients upload distilled summaries (Flower)")
    sub = fed.add_subparsers(dest="federated_command", required=True)
    _options(sub.add_parser("simulate", help="on Flower's simulation engine (one machine)"))
    d = sub.add_parser("deploy", help="on a loopback SuperLink with one SuperNode per client")
    _options(d)
    d.add_argument("--logs", type=Path, help="folder for the Flower processes' logs")
    return {"federated": cmd_federated}


def out_folder(args) -> Path:
    part = f"a{args.alpha:g}" if args.alpha > 0 else "iid"
    name = f"federated-{args.dataset}-{args.mode}-c{args.clients}-{part}-s{args.seed}"
    return args.out or Path("runs") / name


def config_from_args(args):
    from datadistill.distill import resolve_device
    from datadistill_apps.federated.config import FedConfig

    out = out_folder(args)
    report = args.report or out / "report.json"
    cache = args.cache or out / "cache"

    return FedConfig(
        dataset=args.dataset,
        clients=args.clients,
        alpha=args.alpha,
        partition_seed=args.partition_seed,
        mode=args.mode,
        method=args.method,
        ipc=args.ipc,
        iterations=args.iterations,
        rounds=args.rounds,
        local_epochs=args.local_epochs,
        arch=args.arch,
        epochs=args.epochs,
        seed=args.seed,
        device=str(resolve_device(args.device)),
        timeout=args.timeout,
        fail_clients=args.fail_clients,
        pool=args.pool,
        warm_rounds=args.warm_rounds,
        sample_rate=args.sample_rate,
        client_epsilon=args.client_epsilon,
        client_delta=args.client_delta,
        report=str(report.resolve()),
        cache=str(cache.resolve()),
    )


def cmd_federated(args) -> None:
    from datadistill import results
    from datadistill_apps.federated.rows import rows_from_report
    from datadistill_apps.federated.table import runs

    cfg = config_from_args(args)
    if args.federated_command == "simulate":
        from datadistill_apps.federated.simulate import simulate

        report = simulate(cfg)
    else:
        from datadistill_apps.federated.deploy import deploy

        report = deploy(cfg, logs=args.logs, timeout=cfg.timeout + 300)
    rows = rows_from_report(report)
    out = out_folder(args) / "rows.json"
    results.append_rows(out, rows)
    if args.results:
        results.append_rows(args.results, rows)
    print(runs(rows))
    print(f"rows in {out}; the server's report in {cfg.report}")
    if report["missing_clients"]:
        print(f"missing clients (no summary/update received): {report['missing_clients']}")
