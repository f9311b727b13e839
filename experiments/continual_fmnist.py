"""Split-Fashion-MNIST, 5 experiences: distilled memory vs Avalanche's baselines.

Deng & Russakovsky (NeurIPS 2022) setting, survey section 4: memory 10 and 20 images per
class, 3 seeded class orders; Naive, Replay (class-balanced random), herding replay,
GDumb, and the distilled memory (DM and a second method) replayed beside new data or
recalled alone (compress-then-recall). Final stream accuracy and forgetting, mean +- std
over orders, in experiments/results/continual_fmnist.json; one plot per memory of the
average accuracy after each experience, one line per strategy.

Resumable: every (method, strategy, memory, order) run is one row, written as soon as it
ends and skipped when found again. Each row cites the memory its stream ended with, kept
under experiments/results/continual_TAG/ by path and sha256.

    python experiments/continual_fmnist.py [--memory 10 20] [--seeds 3] [--device auto]
    python experiments/continual_fmnist.py --orders 2 --strategies gdumb ...  (one share)
    python experiments/continual_fmnist.py --benchmark split-digits --tag smoke ...  (tiny)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt

from datadistill.distill import resolve_device
from datadistill.plots import save
from datadistill.results import append_rows, key_of, load_rows, table
from datadistill_apps.continual import strategies
from datadistill_apps.continual.bench import split_benchmark
from datadistill_apps.continual.loop import run_stream
from datadistill_apps.continual.memory import DistillMemoryConfig
from datadistill_apps.continual.rows import COLUMNS, aggregate, memoryless_copy, seed_row

BASELINES = ("naive", "replay", "herding", "gdumb")


def plot(means: list[dict], path: Path, *, title: str) -> Path:
    """Average accuracy over seen experiences after each experience, mean +- std."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more series than the default's 10 colours
    epochs = {}  # strategy -> the training epochs its series differ in, if they do
    for r in means:
        epochs.setdefault(r["strategy"], set()).add(r.get("epochs"))
    for r in sorted(means, key=lambda r: (r["strategy"], r["method"], r["iterations"])):
        label = r["strategy"]
        if r["strategy"] not in BASELINES:
            label += f" ({r['method']}, {r['iterations']:,} it"
            differ = len(epochs[r["strategy"]]) > 1 and r["strategy"] not in strategies.RECALL
            label += f", {r['epochs']} ep/exp)" if differ else ")"  # recall retrains anyway
        xs = range(1, len(r["curve_mean"]) + 1)
        ys = [100 * v for v in r["curve_mean"]]
        err = [100 * v for v in r["curve_std"]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xticks(range(1, 1 + max((len(r["curve_mean"]) for r in means), default=0)))
    ax.set_xlabel("experiences trained")
    ax.set_ylabel("avg accuracy on seen classes (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, path)


def naive_row(results: Path, seed: int, epochs: int, arch: str) -> dict | None:
    """A finished naive run of this order (it holds no memory, so any memory's will do)."""
    same = {"strategy": "naive", "seed": seed, "epochs": epochs, "arch": arch}
    return next((r for r in load_rows(results) if same.items() <= r.items()), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="split-fmnist")
    p.add_argument("--memory", type=int, nargs="+", default=[10, 20])
    p.add_argument("--seeds", type=int, default=3, help="class orders 0..N-1")
    p.add_argument(
        "--orders",
        type=int,
        nargs="+",
        help="only these class orders (split a sweep over "
        "processes; each writes its rows to the one results file)",
    )
    p.add_argument("--methods", nargs="+", default=["dm", "dsa"])
    p.add_argument("--iterations", type=int, default=1000, help="distillation steps/experience")
    p.add_argument("--strategies", nargs="+", default=strategies.available())
    p.add_argument("--arch", default="convnet")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--recall-epochs", type=int, default=300)
    p.add_argument("--device", default="auto")
    p.add_argument("--tag", default="fmnist", help="results file continual_TAG.json")
    p.add_argument("--progress", action="store_true", help="distillation progress bars")
    p.add_argument(
        "--cache",
        default="runs/continual_cache",
        help="distillations checkpoint here, so a stopped stream resumes them ('' for none)",
    )
    args = p.parse_args()

    results = Path(f"experiments/results/continual_{args.tag}.json")
    memories = results.with_suffix("")  # each row cites the memory its stream ended with
    device = resolve_device(args.device)
    config = strategies.StrategyConfig(
        arch=args.arch, epochs=args.epochs, recall_epochs=args.recall_epochs
    )
    done = {key_of(r) for r in load_rows(results)}
    data = None
    for seed in args.orders if args.orders is not None else range(args.seeds):
        bench = split_benchmark(args.benchmark, seed=seed, data=data)
        data = bench.data
        for memory in args.memory:
            for name in args.strategies:
                methods = args.methods if name in strategies.DISTILLED else [name]
                for method in methods:
                    distill = DistillMemoryConfig(
                        method=method,
                        iterations=args.iterations,
                        progress=args.progress,
                        cache=args.cache or None,
                    )
                    probe = {
                        "method": method,
                        "dataset": data.spec.name,
                        "ipc": memory,
                        "iterations": args.iterations if name in strategies.DISTILLED else 0,
                        "arch": args.arch,
                        "epochs": args.epochs,
                        "seed": seed,
                        "variant": f"strategy={name},memory={memory},order={seed}",
                    }
                    if key_of(probe) in done:
                        continue
                    if name == "naive" and (
                        earlier := naive_row(results, seed, args.epochs, args.arch)
                    ):
                        append_rows(results, [memoryless_copy(earlier, memory)])
                        print(f"order {seed} m{memory} naive: reused memory-free run", flush=True)
                        continue
                    r = run_stream(
                        bench,
                        strategy=name,
                        memory=memory,
                        seed=seed,
                        config=config,
                        distill=distill,
                        device=device,
                        memory_file=memories / f"{name}-{method}-m{memory}-"
                        f"it{probe['iterations']}-e{args.epochs}-order{seed}.safetensors",
                    )
                    row = seed_row(
                        r,
                        dataset=data.spec.name,
                        method=method,
                        iterations=args.iterations,
                        arch=args.arch,
                    )
                    row.update(epochs=args.epochs, recall_epochs=args.recall_epochs)
                    append_rows(results, [row])
                    print(
                        f"order {seed} m{memory} {name} ({method}): final {r.final_acc:.4f} "
                        f"forgetting {r.forgetting:.4f} in {r.seconds:.0f} s",
                        flush=True,
                    )

    per_seed = [r for r in load_rows(results) if r.get("runs") == 1 and "seed" in r]
    means = aggregate(per_seed)  # derived from the rows, printed and plotted, not stored
    print(table(sorted(means, key=lambda r: (r["ipc"], -r["acc_mean"])), COLUMNS))
    for memory in sorted({r["ipc"] for r in means}):
        out = results.with_name(f"continual_{args.tag}_m{memory}.png")
        shown = [r for r in means if r["ipc"] == memory]
        runs = sorted({r["runs"] for r in shown})  # the file's, not this process's share
        orders = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
        title = f"{args.benchmark}, memory {memory} images/class, {orders} class orders"
        plot(shown, out, title=title)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
