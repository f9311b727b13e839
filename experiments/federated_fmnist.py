"""Issue 10, acceptance 1: one-shot summary upload vs FedAvg on Fashion-MNIST, 10 clients.

For each Dirichlet alpha: every client distils its partition with DM at IPC 10 and
uploads it once; the server trains a ConvNet on the union (core's loop, 300 epochs). The
baseline is Flower's FedAvg on the same partitions, model and clients for 20 rounds,
read at rounds 1, 5 and 20. Both run on Flower's simulation engine; bytes are the
payloads Flower counts. Rows go to experiments/results/federated_fmnist.json, the plot
of accuracy against total bytes to federated_fmnist.png, and a note to federated_fmnist.md.
Resumable per (alpha, side): a rerun skips what already has its rows; within a one-shot
run it skips the clients whose summaries are in --cache, and a FedAvg run goes on from
the last complete round kept there.

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

from datadistill import plots, results
from datadistill.distill import resolve_device
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.rows import rows_from_report
from datadistill_apps.federated.simulate import simulate

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
    note = verdict(rows)
    args.results.with_suffix(".md").write_text(note)
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


def _alphas(rows):
    return sorted({r["alpha"] for r in rows})


def _fedavg(rows: list[dict], alpha: float) -> list[dict]:
    """FedAvg's rounds at `alpha` up to the first that lacked a client's update.

    A round without every update is not the baseline any more (after a lost client the
    model may not move at all), so neither the table nor the verdict reads past it.
    """
    fed = sorted(
        (r for r in rows if r["alpha"] == alpha and r["method"] == "fedavg"),
        key=lambda r: r["rounds"],
    )
    cut = next((i for i, r in enumerate(fed) if r["missing_clients"]), len(fed))
    return fed[:cut]


def _shown(fed: list[dict]) -> set[int]:
    """The rounds the table and plot label: 1, 5 and the last."""
    return {1, 5, max((r["rounds"] for r in fed), default=1)}


def _matching_round(fed: list[dict], one: dict) -> str:
    """Where FedAvg first reaches the one-shot accuracy, and its bytes there."""
    fed = sorted(fed, key=lambda r: r["rounds"])
    hit = next((r for r in fed if r["acc_mean"] >= one["acc_mean"]), None)
    if hit is None:
        return f"FedAvg never reaches {100 * one['acc_mean']:.2f}% in {fed[-1]['rounds']} rounds."
    before = [r["rounds"] for r in fed if r["rounds"] < hit["rounds"]]
    gap = before and before[-1] != hit["rounds"] - 1  # rounds in between were not recorded
    where = (
        f"between rounds {before[-1] + 1} and {hit['rounds']}"
        if gap
        else f"at round {hit['rounds']}"
    )
    ratio = hit["bytes_total"] / max(one["bytes_total"], 1)
    return (
        f"FedAvg first reaches it {where} ({100 * hit['acc_mean']:.2f}%, "
        f"{results.fmt_bytes(hit['bytes_total'])}: {ratio:.0f}x the one-shot's bytes)."
    )


def plot(rows: list[dict], path: Path, *, title: str) -> Path:
    """Accuracy against total bytes communicated (log scale), one panel per alpha."""
    alphas = _alphas(rows)
    methods = sorted({r["method"] for r in rows if r["method"] != "fedavg"})
    colour = {m: f"C{i + 1}" for i, m in enumerate(methods)}  # the same in every panel
    fig, axes = plt.subplots(1, len(alphas), figsize=(5 * len(alphas), 4), squeeze=False)
    for ax, alpha in zip(axes[0], alphas, strict=True):
        fed = _fedavg(rows, alpha)
        ax.plot([r["bytes_total"] for r in fed], [100 * r["acc_mean"] for r in fed], "o-",
                label="FedAvg")  # fmt: skip
        for r in fed:
            if r["rounds"] in _shown(fed):
                ax.annotate(f"{r['rounds']} rnd", (r["bytes_total"], 100 * r["acc_mean"]))
        for r in sorted(rows, key=lambda r: r["method"]):
            if r["alpha"] == alpha and r["method"] != "fedavg":
                lost = f", lost {len(r['missing_clients'])} clients" if r["missing_clients"] else ""
                label = f"one-shot {r['method']} IPC {r['ipc']}{lost}"
                ax.plot(r["bytes_total"], 100 * r["acc_mean"], "*", markersize=14,
                        color=colour[r["method"]], label=label)  # fmt: skip
        ax.set_xscale("log")
        ax.set(xlabel="total bytes communicated", ylabel="test accuracy (%)",
               title=f"alpha={alpha:g}")  # fmt: skip
        ax.legend()
    fig.suptitle(title)
    return plots.save(fig, path)


def verdict(rows: list[dict]) -> str:
    """Does the one-shot summary reach FedAvg's last-round accuracy with >= 10x fewer bytes?"""
    lines = ["# One-shot summary upload vs FedAvg", ""]
    lines.append("| alpha | run | rounds | accuracy | total bytes | missing |")
    lines.append("|---|---|---|---|---|---|")
    complete = {a: _fedavg(rows, a) for a in _alphas(rows)}
    # the rounds to show, only from the complete prefix
    shown = {a: _shown(fed) & {r["rounds"] for r in fed} for a, fed in complete.items()}
    for r in sorted(rows, key=lambda r: (r["alpha"], r["method"] != "fedavg", r["rounds"])):
        if r["method"] == "fedavg" and r["rounds"] not in shown[r["alpha"]]:
            continue
        name = "FedAvg" if r["method"] == "fedavg" else f"{r['method']} IPC {r['ipc']}"
        lines.append(
            f"| {r['alpha']:g} | {name} | {r['rounds']} | {100 * r['acc_mean']:.2f} | "
            f"{results.fmt_bytes(r['bytes_total'])} | {r['missing_clients'] or '-'} |"
        )
    lines.append("")
    for alpha in _alphas(rows):
        fed = complete[alpha]
        every = sorted(
            (r for r in rows if r["alpha"] == alpha and r["method"] == "fedavg"),
            key=lambda r: r["rounds"],
        )  # every[len(fed)] is the first lossy round
        if len(fed) < len(every):
            lines.append(
                f"- alpha={alpha:g}: FedAvg lost client updates from round "
                f"{every[len(fed)]['rounds']} on; read up to round "
                f"{fed[-1]['rounds'] if fed else 0} only."
            )
        one = [r for r in rows if r["alpha"] == alpha and r["method"] != "fedavg"]
        if not fed:
            continue
        last = fed[-1]
        for s in one:
            head = f"- alpha={alpha:g}, one-shot {s['method']}: {100 * s['acc_mean']:.2f}%"
            if s["missing_clients"]:
                lines.append(f"{head} without clients {s['missing_clients']}: incomplete, rerun.")
                continue
            ratio = last["bytes_total"] / max(s["bytes_total"], 1)
            ok = s["acc_mean"] >= last["acc_mean"] and ratio >= 10
            lines.append(
                f"{head} with {ratio:.1f}x fewer bytes than FedAvg at {last['rounds']} rounds "
                f"({100 * last['acc_mean']:.2f}%): {'reached' if ok else 'not reached'}."
            )
            lines.append(f"  {_matching_round(fed, s)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
