"""Issue 10, acceptance 1: one-shot summary upload vs FedAvg on Fashion-MNIST, 10 clients.

For each Dirichlet alpha: every client distils its partition with DM at IPC 10 and
uploads it once; the server trains a ConvNet on the union (core's loop, 300 epochs). The
baseline is Flower's FedAvg on the same partitions, model and clients for 20 rounds,
read at rounds 1, 5 and 20. Both run on Flower's simulation engine; bytes are the
payloads Flower counts. Rows go to experiments/results/federated_fmnist.json, the plot
of accuracy against total bytes to federated_fmnist.png, and a note to federated_fmnist.md.
Resumable per (alpha, side): a rerun skips what already has its rows; within a one-shot
run it skips the clients whose summaries are in --cache and resumes a stopped client's
distillation from its checkpoint there, and a FedAvg run goes on from the last complete
round kept there.

    python experiments/federated_fmnist.py                       # the full experiment
    python experiments/federated_fmnist.py --iterations 200      # the committed rows (CPU)
    python experiments/federated_fmnist.py --dataset digits --iterations 5 --epochs 5 \\
        --rounds 2 --clients 3 --results /tmp/fed.json           # a smoke test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from datadistill import atomic, plots, results
from datadistill.distill import resolve_device
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.rows import rows_from_report
from datadistill_apps.federated.simulate import simulate
from datadistill_apps.federated.table import (
    alphas,
    comparison,
    complete_rounds,
    shown_rounds,
    summary_name,
)

RESULTS = Path(__file__).parent / "results" / "federated_fmnist.json"
CACHE = Path(__file__).parents[1] / "runs" / "federated_fmnist"  # git-ignored


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.5])
    p.add_argument("--method", default="dm")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, default=1000, help="clients' DM iterations")
    p.add_argument("--epochs", type=int, default=300, help="server epochs on the union")
    p.add_argument("--rounds", type=int, default=20, help="FedAvg rounds (reported: 1, 5, N)")
    p.add_argument("--local-epochs", type=int, default=1, help="1: a constant client lr")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=("summary", "fedavg"), help="run one side only")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="finished clients' summaries and FedAvg's last round (resume)",
    )
    p.add_argument(
        "--timeout", type=float, default=6 * 3600.0,
        help="seconds the server waits for a round's replies (10 clients share the CPUs)",
    )  # fmt: skip
    args = p.parse_args(argv)

    device = str(resolve_device(args.device))
    for alpha in args.alphas:
        base = FedConfig(
            dataset=args.dataset,
            clients=args.clients,
            alpha=alpha,
            method=args.method,
            ipc=args.ipc,
            iterations=args.iterations,
            epochs=args.epochs,
            local_epochs=args.local_epochs,
            seed=args.seed,
            device=device,
            cache=str(args.cache.resolve()),
            keep=str(args.results.with_suffix("").resolve()),  # what rows cite
            timeout=args.timeout,
        )
        fedavg = FedConfig(**{**base.__dict__, "mode": "fedavg", "rounds": args.rounds})
        if args.only != "fedavg" and not done(args.results, base):
            results.append_rows(args.results, rows_from_report(simulate(base)))
        if args.only != "summary" and not done(args.results, fedavg):
            report = simulate(fedavg)
            results.append_rows(args.results, rows_from_report(report))  # every round
    rows = [r for r in results.load_rows(args.results) if r["dataset"] == args.dataset]
    plot(rows, args.results.with_suffix(".png"), title=f"{args.dataset}, {args.clients} clients")
    note = comparison(rows)
    atomic.write_bytes(args.results.with_suffix(".md"), note.encode())
    print(note)


def done(path: Path, cfg: FedConfig) -> bool:
    """Resume: this side at this alpha already has complete rows (FedAvg: its last round).

    A row that lost clients does not count: the rerun replaces it (a one-shot rerun
    re-distils only the clients missing from --cache).
    """
    for r in results.load_rows(path):
        if r["missing_clients"]:
            continue
        if (r["dataset"], r["alpha"], r["clients"], r["seed"]) != (
            cfg.dataset, cfg.alpha, cfg.clients, cfg.seed
        ):  # fmt: skip
            continue
        if cfg.mode == "summary" and (r["method"], r["ipc"], r["iterations"], r["eval_epochs"]) == (
            cfg.method, cfg.ipc, cfg.iterations, cfg.epochs
        ):  # fmt: skip
            print(f"alpha={cfg.alpha:g}: one-shot {cfg.method} row found, skipped")
            return True
        fedavg = ("fedavg", cfg.rounds, cfg.local_epochs)
        if cfg.mode == "fedavg" and (r["method"], r["rounds"], r["eval_epochs"]) == fedavg:
            print(f"alpha={cfg.alpha:g}: FedAvg {cfg.rounds}-round row found, skipped")
            return True
    return False


def plot(rows: list[dict], path: Path, *, title: str) -> Path:
    """Accuracy against total bytes communicated (log scale), one panel per alpha."""
    seen = alphas(rows)
    methods = sorted({summary_name(r) for r in rows if r["method"] != "fedavg"})
    colour = {m: f"C{i + 1}" for i, m in enumerate(methods)}  # the same in every panel
    fig, axes = plt.subplots(1, len(seen), figsize=(5 * len(seen), 4), squeeze=False)
    for ax, alpha in zip(axes[0], seen, strict=True):
        fed = complete_rounds(rows, alpha)
        ax.plot([r["bytes_total"] for r in fed], [100 * r["acc_mean"] for r in fed], "o-",
                label="FedAvg")  # fmt: skip
        for r in fed:
            if r["rounds"] in shown_rounds(fed):
                ax.annotate(f"{r['rounds']} rnd", (r["bytes_total"], 100 * r["acc_mean"]))
        for r in sorted(rows, key=lambda r: r["method"]):
            if r["alpha"] == alpha and r["method"] != "fedavg":
                lost = f", lost {len(r['missing_clients'])} clients" if r["missing_clients"] else ""
                label = f"one-shot {summary_name(r)}{lost}"
                ax.plot(r["bytes_total"], 100 * r["acc_mean"], "*", markersize=14,
                        color=colour[summary_name(r)], label=label)  # fmt: skip
        ax.set_xscale("log")
        ax.set(xlabel="total bytes communicated", ylabel="test accuracy (%)",
               title=f"alpha={alpha:g}")  # fmt: skip
        ax.legend()
    fig.suptitle(title)
    return plots.save(fig, path)


if __name__ == "__main__":
    main()
