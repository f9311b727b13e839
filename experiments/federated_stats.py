"""Issue 39, acceptance 1: one round of DM's class statistics vs the union of summaries and FedAvg.

For each Dirichlet alpha and each per-client epsilon (0: the exact upload), on Flower's
simulation engine with 10 clients: the server broadcasts a pool of `--pool` embedders and a
sample rate q; each member reads a public Bernoulli(q) sample of a client's rows, and the
client uploads its class counts and per-member class means over those samples, exact or
through dp-dm's release at `--client-epsilons` (delta 1e-5); the server distils a global
summary at each `--ipcs` against the aggregated statistics (DM's pooled objective, from
noise at `--server-lr`) and trains a ConvNet on it (core's loop, `--epochs`). The first
IPC's exact run goes on with `--warm-rounds` FedAvg rounds started from that model, every
round's bytes counted (a private upload's warm start would spend privacy FedAvg does not
account, so it has none). Today's union-of-summaries and FedAvg rows are read from
experiments/results/federated_fmnist.json and drawn beside them.

Sampling: q defaults to DM's real batch in expectation, batch_real x classes / training
examples (Fashion-MNIST: 256 x 10 / 60,000 = 0.0427, i.e. 256 images a class summed over
all clients for each member, as central pooled DM reads). Costs on the 2-core CPU (one
thread, measured 2026-12-07 at alpha 0.1): embedding every row (q = 1) takes about 190 s a
member over the 10 clients, 2.6 h for pool 50 a cell; at the default q, 9.8 s a member
(2,535 rows), so about 8 min of client work per (alpha, epsilon), 10 min for a private
upload (its
second pass reuses the embeddings; each client calibrates sigma with Opacus's PRV once).
The server's DM runs `--iterations` 2000 by default (DM's 20,000 are for a GPU; central
pooled DM at pool 50 took 0.36 s an iteration at IPC 10 on this CPU, so about 12 min, and
a few times that at IPC 50), then 300 epochs on the summary.

Bytes: a client's upload is pool x classes x embedding float32s (Fashion-MNIST's ConvNet
embeds in 1,152 floats: 46 KB a member), so pool 50 is 2.3 MB a client; one FedAvg round
moves 2.5 MB a client. FedAvg's 20 rounds total 495 MB, so 10x fewer is under 49 MB.

Rows go to experiments/results/federated_stats.json, the plot of accuracy against total
bytes to federated_stats.png, a note to federated_stats.md; central DM on all the data at the
same pool and iterations (`CENTRAL`: from real images, and from noise as the server starts)
is drawn beside them, the bound of the exact upload. Resumable per (alpha, epsilon,
IPC): a rerun skips what already has complete rows, and the clients' uploads are kept in
`--cache`, so the second IPC of an (alpha, epsilon) and a rerun skip the client work (a
private upload is released once and reused, at no further privacy cost).

    python experiments/federated_stats.py                      # the full experiment
    python experiments/federated_stats.py --dataset digits --clients 3 --pool 2 --ipcs 2 \\
        --iterations 20 --epochs 5 --warm-rounds 1 --sample-rate 0.5 \\
        --results /tmp/stats.json                                # a smoke (about a minute)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from datadistill import atomic, plots, results
from datadistill import data as datasets
from datadistill.distill import resolve_device
from datadistill_apps.federated import statistics, stats_server
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.rows import rows_from_report
from datadistill_apps.federated.simulate import simulate

HERE = Path(__file__).parent / "results"
RESULTS = HERE / "federated_stats.json"
BASELINE = HERE / "federated_fmnist.json"
# central DM on all the training data at the server's pool and iterations: from real images
# (issue 37's pool sizes) and from noise at the server's rate, the server's own start
CENTRAL = (HERE / "pool_fmnist.json", HERE / "dm_init.json")
NEW = ("dm-statistics", "fedavg-warm")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.5])
    p.add_argument("--ipcs", type=int, nargs="+", default=[10, 50], help="server's summary")
    p.add_argument("--pool", type=int, default=50, help="embedders broadcast to the clients")
    p.add_argument("--iterations", type=int, default=2000, help="server's DM; 0: DM's 20,000")
    p.add_argument("--server-lr", type=float, default=100.0, help="server's lr_img (noise start)")
    p.add_argument("--epochs", type=int, default=300, help="server epochs on its summary")
    p.add_argument("--warm-rounds", type=int, default=3, help="FedAvg after the first IPC")
    p.add_argument(
        "--sample-rate", type=float, default=0.0, help="q; 0: DM's batch_real a class in all"
    )
    p.add_argument(
        "--client-epsilons", type=float, nargs="+", default=[0.0, 10.0],
        help="per-client epsilon of the upload (dp-dm's release); 0: the exact upload",
    )  # fmt: skip
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--baseline", type=Path, default=BASELINE, help="union and FedAvg rows")
    p.add_argument("--timeout", type=float, default=6 * 3600.0)
    p.add_argument(
        "--cache", type=Path, default=Path("runs/federated-stats-cache"),
        help="clients' uploads, computed once for every IPC of an (alpha, epsilon)",
    )  # fmt: skip
    args = p.parse_args(argv)

    device = str(resolve_device(args.device))
    q = args.sample_rate or default_sample_rate(args.dataset)
    for alpha in args.alphas:
        for epsilon in args.client_epsilons:
            for i, ipc in enumerate(args.ipcs):
                cfg = FedConfig(
                    dataset=args.dataset,
                    clients=args.clients,
                    alpha=alpha,
                    mode="statistics",
                    ipc=ipc,
                    iterations=args.iterations,
                    epochs=args.epochs,
                    pool=args.pool,
                    server_lr=args.server_lr,
                    warm_rounds=args.warm_rounds if i == 0 and epsilon == 0 else 0,
                    sample_rate=q,
                    client_epsilon=epsilon,
                    seed=args.seed,
                    device=device,
                    timeout=args.timeout,
                    cache=str(args.cache.resolve()),
                    keep=str(args.results.with_suffix("").resolve()),  # what rows cite
                )
                if not done(args.results, cfg):
                    results.append_rows(args.results, rows_from_report(simulate(cfg)))
    rows = [r for r in results.load_rows(args.results) if r["dataset"] == args.dataset]
    rows += [
        r
        for r in results.load_rows(args.baseline)
        if r["dataset"] == args.dataset and r["clients"] == args.clients
    ]
    central = central_rows(args.dataset, args.pool, args.iterations)
    title = f"{args.dataset}, {args.clients} clients, pool {args.pool}"
    plot(rows, args.results.with_suffix(".png"), title=title, central=central)
    note = verdict(rows, central)
    atomic.write_bytes(args.results.with_suffix(".md"), note.encode())
    print(note)


def default_sample_rate(dataset: str) -> float:
    """The app's rule (`statistics.default_sample_rate`), resolved here so rows record q."""
    data = datasets.load(dataset)
    return statistics.default_sample_rate(
        batch_real=stats_server.dm_batch_real(data.spec),
        num_classes=data.spec.num_classes,
        examples=len(data.y_train),
    )


def done(path: Path, cfg: FedConfig) -> bool:
    """Resume: complete rows for this (alpha, IPC, pool) exist, warm rounds included."""
    want = {("dm-statistics", 1)} | {("fedavg-warm", r + 1) for r in range(1, cfg.warm_rounds + 1)}
    have = {
        (r["method"], r["rounds"])
        for r in results.load_rows(path)
        if not r["missing_clients"] and _same_run(r, cfg)
    }
    if want <= have:
        print(
            f"alpha={cfg.alpha:g} epsilon={cfg.client_epsilon:g} IPC {cfg.ipc}: rows found, skipped"
        )
        return True
    return False


def _same_run(r: dict, cfg: FedConfig) -> bool:
    where = (r["dataset"], r["alpha"], r["clients"], r["seed"], r["ipc"], r.get("pool"))
    where += (r.get("server_lr"), r.get("sample_rate"), r.get("client_epsilon") or 0.0)
    asked = (cfg.dataset, cfg.alpha, cfg.clients, cfg.seed, cfg.ipc, cfg.pool, cfg.server_lr)
    asked += (cfg.sample_rate, cfg.client_epsilon)
    if not _close(where, asked):
        return False
    if r["method"] == "dm-statistics":
        return (r["iterations"], r["eval_epochs"]) == (cfg.iterations, cfg.epochs)
    return f"server_iterations={cfg.iterations}," in r["variant"]


def _close(a: tuple, b: tuple) -> bool:
    """Equal, floats to 2% (the recorded epsilon is Opacus's answer, just under the budget)."""
    return all(
        x == y or (isinstance(x, float) and isinstance(y, float) and abs(x - y) <= 0.02 * abs(y))
        for x, y in zip(a, b, strict=True)
    )


def central_rows(dataset: str, pool: int, iterations: int) -> list[dict]:
    """Central DM's rows (`CENTRAL`) at this pool and iterations: the exact upload hands the
    server the statistics central DM computes on the union, so these bound what it can do."""
    return [
        r
        for path in CENTRAL
        if path.exists()
        for r in results.load_rows(path)
        if (r["dataset"], r["method"], r["iterations"]) == (dataset, "dm", iterations)
        and (r.get("variant") or "").split("-")[0] == f"pool{pool}"
    ]


def _central_label(r: dict) -> str:
    start = "from noise (the server's start)" if "noise" in r["variant"] else "from real images"
    return f"central DM, IPC {r['ipc']}, all data, {start}"


def _label(r: dict) -> str:
    if r["method"] == "dm-statistics":
        private = f", eps {r['client_epsilon']:.3g}" if r.get("client_epsilon") else ""
        return f"statistics, IPC {r['ipc']}, pool {r['pool']}, q {r['sample_rate']:.3g}{private}"
    if r["method"] == "fedavg-warm":
        return f"warm FedAvg from IPC {r['ipc']}"
    steps = f", {r['iterations']:,} it" if r.get("iterations") else ""
    return f"union of {r['method']} IPC {r['ipc']} summaries{steps}"


def plot(rows: list[dict], path: Path, *, title: str, central: list[dict] = ()) -> Path:
    """Accuracy against total bytes (log scale), one panel per alpha; central DM's rows as
    dotted lines (no bytes: nothing is communicated)."""
    alphas = sorted({r["alpha"] for r in rows if r["method"] in NEW})
    fig, axes = plt.subplots(1, len(alphas), figsize=(6 * len(alphas), 4.5), squeeze=False)
    for ax, alpha in zip(axes[0], alphas, strict=True):
        here = [r for r in rows if r["alpha"] == alpha]
        for method, style in (("fedavg", "o-"), ("fedavg-warm", "s-")):
            curve = sorted((r for r in here if r["method"] == method), key=lambda r: r["rounds"])
            if curve:
                label = "FedAvg" if method == "fedavg" else _label(curve[0])
                ax.plot([r["bytes_total"] for r in curve], [100 * r["acc_mean"] for r in curve],
                        style, label=label)  # fmt: skip
        for i, r in enumerate(r for r in here if r["method"] not in ("fedavg", "fedavg-warm")):
            marker = "*" if r["method"] == "dm-statistics" else "^"
            lost = f", lost {r['missing_clients']}" if r["missing_clients"] else ""
            ax.plot(r["bytes_total"], 100 * r["acc_mean"], marker, markersize=12,
                    color=f"C{i + 2}", label=_label(r) + lost)  # fmt: skip
        for i, r in enumerate(central):
            ax.axhline(100 * r["acc_mean"], ls=":", color=f"C{7 + i}", label=_central_label(r))
        ax.set_xscale("log")
        ax.set(xlabel="total bytes communicated", ylabel="test accuracy (%)",
               title=f"alpha={alpha:g}")  # fmt: skip
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return plots.save(fig, path)


BOUND = (
    "What bounds the statistics upload: the exact upload gives the server the statistics "
    "central DM computes on the union of the partitions (the app's test), so at the same IPC "
    "its summary is at best central DM's with the same pool and iterations on all the data:"
)


def verdict(rows: list[dict], central: list[dict] = ()) -> str:
    """Does a new run reach FedAvg's last-round accuracy with >= 10x fewer total bytes? And
    what bounds the statistics upload (`central_rows`)?"""
    lines = ["# One round of class statistics vs FedAvg and the union of summaries", ""]
    lines += [
        "| alpha | run | rounds | accuracy | total bytes | missing |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["alpha"], r["method"], r["ipc"], r["rounds"])):
        lines.append(
            f"| {r['alpha']:g} | {_label(r) if r['method'] != 'fedavg' else 'FedAvg'} | "
            f"{r['rounds']} | {100 * r['acc_mean']:.2f} | {results.fmt_bytes(r['bytes_total'])} | "
            f"{r['missing_clients'] or '-'} |"
        )
    lines.append("")
    for alpha in sorted({r["alpha"] for r in rows if r["method"] in NEW}):
        fed = sorted((r for r in rows if r["alpha"] == alpha and r["method"] == "fedavg"),
                     key=lambda r: r["rounds"])  # fmt: skip
        if not fed:
            lines.append(f"- alpha={alpha:g}: no FedAvg rows to compare with.")
            continue
        last = fed[-1]
        new = [r for r in rows if r["alpha"] == alpha and r["method"] in NEW]
        hits = [
            r
            for r in new
            if not r["missing_clients"]
            and r["acc_mean"] >= last["acc_mean"]
            and last["bytes_total"] >= 10 * r["bytes_total"]
        ]
        best = max(new, key=lambda r: r["acc_mean"])
        lines.append(
            f"- alpha={alpha:g}: FedAvg at {last['rounds']} rounds {100 * last['acc_mean']:.2f}% "
            f"with {results.fmt_bytes(last['bytes_total'])}; "
            + (
                f"reached by {_label(hits[0])} (round {hits[0]['rounds']}, "
                f"{100 * hits[0]['acc_mean']:.2f}%, "
                f"{last['bytes_total'] / hits[0]['bytes_total']:.1f}x fewer bytes)."
                if hits
                else f"not reached; the best new run, {_label(best)} round {best['rounds']}, "
                f"{100 * best['acc_mean']:.2f}% with {results.fmt_bytes(best['bytes_total'])} "
                f"({last['bytes_total'] / best['bytes_total']:.1f}x fewer bytes)."
            )
        )
    if central:
        lines += ["", BOUND, ""]
        for r in sorted(central, key=lambda r: -r["acc_mean"]):
            lines.append(
                f"- {_central_label(r)}: {100 * r['acc_mean']:.2f} +- {100 * r['acc_std']:.2f}% "
                f"({r['runs']} models, {r['iterations']:,} iterations)"
            )
        uploads = sorted(
            (r for r in rows if r["method"] == "dm-statistics"),
            key=lambda r: (r["alpha"], r["ipc"], r.get("client_epsilon") or 0),
        )
        for r in uploads:
            lines.append(f"- alpha={r['alpha']:g}, {_label(r)}: {100 * r['acc_mean']:.2f}%")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
