"""dp-dm on Fashion-MNIST: the validation search, the privacy-utility curve, the plot, the audit.

search  dp-dm on a validation split (`--validation N` training images a class held out, never
        the test set) over pool sizes, embedding widths and clip norms, at each epsilon
        -> <out>/privacy_dm_search.json (variants `val<N>-epsilon=E-pool=P-w=W-clip=C`)
curve   dp-dm at each epsilon and IPC (delta 1e-5), quick protocol (ConvNet, 300 epochs, DSA,
        5 models a summary), with the search's best setting for that epsilon and IPC 10 (the
        dp-dm defaults when there is no search) -> <out>/privacy_dm.json
plot    dp-dm's curves beside dp-dsa and DP-SGD (experiments/results/privacy_fmnist.json),
        an epsilon `inf` row (clipping, no noise) as a dashed line -> <out>/privacy_dm.png
audit   loss and LiRA membership inference against a model trained on the dp-dm summary
        (IPC 10) at each epsilon of `--audit-epsilons`: 2,000 random members, and the
        `--exposed` members the release clipped hardest (`datadistill_apps.privacy.exposure`)
        -> <out>/privacy_dm_audit.json

Run folders go under <out>/privacy_dm/ (committed: rows cite the summaries there). Every
part is resumable: finished cells are read back from the results files, distillations
resume from their checkpoints (which hold the release: a resumed run never reads the data
again). Rows are the engine's (`datadistill.results.append_rows`), each with its command.

    python experiments/privacy_dm.py search --epsilons 1 10 --pools 20 50 200 --widths 32 128
    python experiments/privacy_dm.py curve --ipc 10 50 --epsilons 0.5 1 2 5 10
    python experiments/privacy_dm.py curve --ipc 10 50 --epsilons inf  # the ceiling noise lowers
    python experiments/privacy_dm.py plot
    python experiments/privacy_dm.py audit --audit-epsilons 1 10
    # the smoke test on scikit-learn's digits (nothing committed):
    python experiments/privacy_dm.py curve --dataset digits --out runs/privacy_dm_smoke \
        --ipc 10 --epsilons 1 10 --iterations 100 --runs 2 --epochs 50 --set pool=20
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import torch

from datadistill import data as datasets
from datadistill.bench.cells import Cell, run_cell
from datadistill.distill import resolve_device
from datadistill.evaluate import EvalConfig
from datadistill.loop import SUMMARY_FILE
from datadistill.results import append_rows, load_rows
from datadistill.summary import Summary
from datadistill.train import QUICK, TrainConfig
from datadistill_apps.privacy import audit, exposure

DELTA = 1e-5
SEARCHED = ("pool", "net_width", "clip")
BASELINES = Path("experiments/results/privacy_fmnist.json")  # dp-dsa and DP-SGD rows
RUNS = "privacy_dm"  # run folders under --out, committed: rows cite their summaries


def variant(eps: float, settings: dict, prefix: str = "") -> str:
    """`epsilon=E` first (the plot reads it), then the settings that differ from the
    defaults."""
    parts = [f"epsilon={eps:g}"] + [f"{k}={v}" for k, v in sorted(settings.items())]
    return "-".join(([prefix] if prefix else []) + parts)


def epsilon_of(row: dict) -> float:
    part = next(p for p in row["variant"].split("-") if p.startswith("epsilon="))
    return float(part.split("=", 1)[1])


def cell(eps: float, ipc: int, settings: dict, args, prefix: str = "") -> Cell:
    overrides = {"epsilon": f"{eps:g}", "delta": f"{DELTA:g}", **settings}
    return Cell(
        "dp-dm",
        ipc,
        iterations=args.iterations,
        seed=args.seed,
        overrides=tuple(sorted(overrides.items())),
        variant=variant(eps, settings, prefix),
    )


def search(args, data, device) -> None:
    data = datasets.holdout(data, args.validation)
    prefix = f"val{args.validation}"
    results = args.out / "privacy_dm_search.json"
    config = EvalConfig(archs=("convnet",), runs=args.runs, train=train_config(args))
    grid = itertools.product(args.epsilons, args.pools, args.widths, args.clips)
    for eps, pool, width, clip in grid:
        settings = {"pool": str(pool), "net_width": str(width), "clip": f"{clip:g}", **args.set}
        c = cell(eps, args.search_ipc, settings, args, prefix)
        rows = run_cell(c, data, config=config, results=results, runs_dir=args.out / RUNS,
                        device=device, time_limit=args.time_limit)  # fmt: skip
        print(f"{c.variant}: {rows[0]['acc_mean']:.4f}" if rows else f"{c.variant}: paused")


def best_setting(args, eps: float) -> dict:
    """The search's best (pool, width, clip) at `eps` on the validation split, or {}."""
    path = args.out / "privacy_dm_search.json"
    rows = [r for r in load_rows(path) if epsilon_of(r) == eps] if path.exists() else []
    if not rows:
        return {}
    best = max(rows, key=lambda r: r["acc_mean"])
    folder = (
        f"{best['method']}-{best['dataset']}-ipc{best['ipc']}-s{best['seed']}-{best['variant']}"
    )
    config = Summary.load(args.out / RUNS / folder / SUMMARY_FILE).config
    return {k: str(config[k]) for k in SEARCHED}


def curve(args, data, device) -> None:
    config = EvalConfig(archs=("convnet",), runs=args.runs, train=train_config(args))
    for ipc, eps in itertools.product(args.ipc, args.epsilons):
        settings = {**best_setting(args, eps), **args.set}
        c = cell(eps, ipc, settings, args)
        rows = run_cell(c, data, config=config, results=args.out / "privacy_dm.json",
                        runs_dir=args.out / RUNS, device=device,
                        time_limit=args.time_limit)  # fmt: skip
        if rows:
            p = Summary.load(args.out / RUNS / c.folder(data) / SUMMARY_FILE).extra["privacy"]
            print(
                f"dp-dm ipc{ipc} {c.variant}: {100 * rows[0]['acc_mean']:.2f} +- "
                f"{100 * rows[0]['acc_std']:.2f}% (epsilon {p['epsilon']}, sigma "
                f"{p['noise_multiplier']:.3g}, snr {p['snr_estimate']})",
                flush=True,
            )
        else:
            print(f"dp-dm ipc{ipc} {c.variant}: paused (run again to resume)", flush=True)


def plot(args, data, device) -> None:
    from datadistill.plots import plt, save

    rows = load_rows(args.out / "privacy_dm.json")
    others = load_rows(BASELINES) if BASELINES.exists() else []
    fig, ax = plt.subplots(figsize=(6.5, 4))
    series = {}
    baselines = [r for r in others if r["method"] in ("dp-dsa", "dp-sgd")]
    limits = []  # epsilon inf: clipping without noise, the ceiling the noise lowers
    for r in rows + [r for r in baselines if r["dataset"] == data.spec.name]:
        eps = epsilon_of(r)
        name = r["method"] + (f" ipc{r['ipc']}" if r["method"] != "dp-sgd" else "")
        if math.isfinite(eps):
            series.setdefault(name, []).append((eps, 100 * r["acc_mean"], 100 * r["acc_std"]))
        else:
            limits.append((name, 100 * r["acc_mean"]))
    colours = {}
    for name, pts in sorted(series.items()):
        pts.sort()
        xs, ys, errs = zip(*pts, strict=True)
        bars = ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=name)
        colours[name] = bars.lines[0].get_color()
    for name, acc in limits:
        ax.axhline(acc, ls="--", lw=1, color=colours.get(name, "grey"),
                   label=f"{name}, no noise (clipping only)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(f"epsilon (delta {DELTA:g})")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{data.spec.name}: dp-dm beside dp-dsa and DP-SGD (quick protocol)")
    save(fig, args.out / "privacy_dm.png")


def run_audit(args, data, device) -> None:
    path = args.out / "privacy_dm_audit.json"
    done = {r["target"] for r in load_rows(path)} if path.exists() else set()
    tcfg = train_config(args)
    size = 10 * data.spec.num_classes
    random = audit.draw_candidates(data, args.candidates, torch.Generator().manual_seed(0))
    for eps in args.audit_epsilons:
        c = cell(eps, 10, {**best_setting(args, eps), **args.set}, args)
        file = args.out / RUNS / c.folder(data) / SUMMARY_FILE
        if not file.exists():
            print(f"skip epsilon {eps:g}: {file} not found (run `curve` first)")
            continue
        summary = Summary.load(file)
        target, acc = audit.summary_target(summary, data, config=tcfg, seed=0, device=device)
        exposed, ratios = exposure.exposed_candidates(summary, data, args.exposed, device=device)
        for label, cands in ((f"dp-dm {c.variant}", random),
                             (f"dp-dm {c.variant}, most exposed", exposed)):  # fmt: skip
            if label in done:
                continue
            refs = audit.reference_models(data, size=size, exclude=cands.member_rows,
                                          count=args.references, config=tcfg, seed=0,
                                          device=device)  # fmt: skip
            result = audit.audit(target, cands, refs)
            extra = {}
            if cands is exposed:
                extra["members"] = (
                    f"the {args.exposed} training examples the release clipped hardest "
                    f"(norm / bound {float(ratios.min()):.3g} to {float(ratios.max()):.3g}); "
                    "non-members: the test images it would have clipped hardest"
                )
            row = audit.audit_row(
                label, acc, result, cands=cands, references=len(refs), config=tcfg,
                summary=summary, dataset=data.spec.name, seed=0, device=device,
                summary_file=str(file), **extra,
            )  # fmt: skip
            append_rows(path, [row])
            print(f"audit {label}: {result}", flush=True)


def train_config(args) -> TrainConfig:
    return QUICK if args.epochs is None else QUICK.with_(epochs=args.epochs)


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes key=value, got '{item}'")
        out[key] = value
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=("search", "curve", "plot", "audit"))
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--out", type=Path, default=Path("experiments/results"))
    p.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 2.0, 5.0, 10.0])
    p.add_argument("--ipc", type=int, nargs="+", default=[10, 50])
    p.add_argument("--iterations", type=int, help="dp-dm's optimisation steps (its default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=5, help="models trained per summary")
    p.add_argument("--epochs", type=int, help="training epochs (the quick protocol's 300)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dp-dm settings")
    p.add_argument("--validation", type=int, default=1000, help="held-out images a class")
    p.add_argument("--search-ipc", type=int, default=10)
    p.add_argument("--pools", type=int, nargs="+", default=[20, 50, 200])
    p.add_argument("--widths", type=int, nargs="+", default=[32, 128])
    p.add_argument("--clips", type=float, nargs="+", default=[0.6])
    p.add_argument("--audit-epsilons", type=float, nargs="+", default=[1.0, 10.0])
    p.add_argument("--candidates", type=int, default=2000, help="members (and non-members)")
    p.add_argument("--exposed", type=int, default=100, help="most exposed members audited")
    p.add_argument("--references", type=int, default=4, help="LiRA reference models")
    p.add_argument("--time-limit", type=float, help="seconds per distillation before it pauses")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    args.set = parse_sets(args.set)
    data = datasets.load(args.dataset)
    parts = {"search": search, "curve": curve, "plot": plot, "audit": run_audit}
    parts[args.part](args, data, resolve_device(args.device))


if __name__ == "__main__":
    main()
