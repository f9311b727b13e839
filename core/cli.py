"""`distill`: the command line. Arguments are translated into typed configs here, at the edge.

distill list
distill run  --method dm --dataset fashion-mnist --ipc 10 --iterations 1000 --out runs/x
distill run  --method kfs --dataset fashion-mnist --bytes 31440   (the bytes of IPC 1)
distill eval runs/x/summary.safetensors --arch convnet,mlp,resnet18 --runs 5
distill eval runs/gcond-csbm/summary.safetensors     (graph, recsys, text: their own protocol)
distill show runs/x/summary.safetensors -o grid.png  (other modalities: a description)
distill export runs/x/summary.safetensors --format npz -o summary.npz
distill experts --dataset cifar10 --arch convnet --num 20 --epochs 50
distill generator --dataset fashion-mnist --epochs 10
distill sweep experiments/sweeps/quick.yaml --workers 2 [--address ray://host:10001] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datadistill import budget as budgets
from datadistill import data as datasets
from datadistill import methods, nets, plugins
from datadistill.errors import DistillError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="distill", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="methods, datasets and architectures")

    r = sub.add_parser("run", help="distil a dataset into a summary")
    r.add_argument("--method", required=True)
    run_options(r)

    e = sub.add_parser("eval", help="train fresh models on a summary (any modality) and test them")
    e.add_argument("summary", type=Path)
    e.add_argument(
        "--arch",
        help="comma-separated architectures (recommender models for a recsys summary); "
        "default: the modality's protocol (convnet for images)",
    )
    e.add_argument("--runs", type=int, help="fresh models per architecture (images: 5)")
    e.add_argument("--epochs", type=int, help="images: 300 quick (default), 1000 as published")
    e.add_argument("--no-dsa", action="store_true", help="images: train without augmentation")
    e.add_argument("--results", type=Path, help="append the rows to this JSON results file")
    e.add_argument("--eval-seed", type=int, help="seed of the fresh models (default 0)")
    common_options(e, dataset=True)

    s = sub.add_parser(
        "show", help="draw an image summary as a grid (one row per class); describe any other"
    )
    s.add_argument("summary", type=Path)
    s.add_argument("-o", "--output", type=Path, help="PNG path (default: next to the summary)")
    s.add_argument(
        "--max-per-class", type=int, help="images (default 10) or decoded sentences (2) per class"
    )

    x = sub.add_parser("export", help="write a summary as .npz, .pt or (images) a folder of PNGs")
    x.add_argument("summary", type=Path)
    x.add_argument("--format", choices=("npz", "pt", "png"), default="npz")
    x.add_argument("-o", "--output", type=Path, required=True)

    t = sub.add_parser("experts", help="train expert trajectories for trajectory matching")
    t.add_argument("--dataset", default="digits")
    t.add_argument("--arch", default="convnet")
    t.add_argument("--depth", type=int, default=0, help="network depth (0: the arch's default)")
    t.add_argument("--width", type=int, default=0, help="network width (0: the arch's default)")
    t.add_argument("--num", type=int, default=20, help="experts to train (MTT: 100)")
    t.add_argument("--epochs", type=int, default=50, help="epochs per expert (MTT: 50)")
    t.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (MTT: 0.01)")
    t.add_argument("--out", type=Path, help="folder (default: experts/DATASET-ARCH[-depthN...])")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--precision",
        default="auto",
        help="fp32, bf16 (mixed: bfloat16 compute, float32 weights) or auto (bf16 on a CPU "
        "with bfloat16 units, else fp32)",
    )
    t.add_argument(
        "--only",
        type=int,
        nargs="+",
        metavar="I",
        help="train only these expert indices (spread one folder over processes or machines)",
    )
    common_options(t)

    g = sub.add_parser("generator", help="train the conditional generator IT-GAN decodes with")
    g.add_argument("--dataset", default="digits")
    g.add_argument("--epochs", type=int, help="epochs (default: 100 on digits, else 10)")
    g.add_argument("--out", type=Path, help="file (default generators/DATASET.safetensors)")
    common_options(g)
    sweep_options(sub.add_parser("sweep", help="methods x datasets x IPC x seeds, on Ray"))

    for module in plugins.load().values():  # apps/: `distill privacy ...`, `distill nas ...`
        if hasattr(module, "add_commands"):
            COMMANDS.update(module.add_commands(sub))
    return p


def run_options(p: argparse.ArgumentParser) -> None:
    """`distill run`'s options but --method: apps' run commands (`distill privacy run`) reuse
    them and hand the parsed arguments to `cmd_run`."""
    p.add_argument("--dataset", default="digits")
    p.add_argument("--ipc", type=int, default=10, help="images per class")
    p.add_argument(
        "--bytes",
        type=int,
        help="storage budget in bytes, instead of --ipc (default: IPC real images' bytes)",
    )
    p.add_argument("--iterations", type=int, help="outer iterations (default: the paper's)")
    p.add_argument("--out", type=Path, help="run folder (default runs/METHOD-DATASET-ipcN-sS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--time-limit", type=float, help="stop cleanly after this many seconds")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=0, help="quick 1-model eval every N iters")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of the method's settings (see `distill list`)",
    )
    common_options(p)


def common_options(p: argparse.ArgumentParser, dataset: bool = False) -> None:
    """--device, --data-root, --download, --quiet (and --dataset): apps' commands reuse them."""
    if dataset:
        p.add_argument("--dataset", help="test data (default: the summary's own dataset)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:0 ...")
    p.add_argument("--data-root", type=Path, help="folder with the dataset's files")
    p.add_argument("--download", action="store_true", help="let torchvision fetch missing data")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="a sweep file, e.g. experiments/sweeps/quick.yaml")
    p.add_argument(
        "--workers", type=int, help="parallel cells here (default: CPU count; 0: serial, no Ray)"
    )
    p.add_argument("--address", help="a running Ray cluster's address instead of a local one")
    p.add_argument("--threads", type=int, help="torch threads per cell (default: CPUs/workers)")
    p.add_argument("--gpus-per-task", type=float, help="GPUs per cell (default: 1/workers)")
    p.add_argument("--dry-run", action="store_true", help="list the cells to run, run none")


def _settings(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise DistillError(f"--set expects KEY=VALUE, got '{pair}'")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_list(args) -> None:
    from datadistill import modality

    print(f"methods:\n  {'name':10s} {'modality':8s} {'family':28s} paper")
    for name in methods.available():
        m = methods.get(name)
        cfg = m.config_cls()
        settings = ", ".join(f"{k}={v}" for k, v in vars(cfg).items())
        print(f"  {name:10s} {m.modality:8s} {m.family:28s} {m.paper}")
        print(f"  {'':10s} settings: {settings}")
    print(f"modalities (eval, show, export read each): {', '.join(modality.available())}")
    print("datasets:")
    for name in datasets.available():
        s = datasets.get_spec(name)
        print(f"  {name:14s} {s.num_classes} classes, {s.channels}x{s.size}x{s.size}")
    print("architectures:\n  " + ", ".join(nets.available()))


def cmd_run(args):
    """Run `args.method`; returns the Summary (apps' run commands report from it)."""
    from datadistill.distill import RunOptions, resolve_device, run

    method = methods.get(args.method)
    if method.runner is not None:  # another modality: its own data, loop and evaluation
        return method.runner(method, args)
    data = datasets.load(args.dataset, root=args.data_root, download=args.download)
    device = resolve_device(args.device)
    ipc, budget = budgets.resolve(
        method, data.spec, ipc=args.ipc, nbytes=getattr(args, "bytes", None)
    )
    size = f"ipc{ipc}" if not budget else f"{budget['budget_bytes']}B"
    out = args.out or Path("runs") / f"{method.name}-{args.dataset}-{size}-s{args.seed}"
    evaluator = None
    if args.eval_every:
        from datadistill.evaluate import EvalConfig, evaluate
        from datadistill.train import TrainConfig

        quick = EvalConfig(runs=1, train=TrainConfig(epochs=100))
        evaluator = lambda s: round(
            evaluate(s, data, config=quick, device=device, progress=False)[0]["acc_mean"], 4
        )
    options = RunOptions(
        seed=args.seed,
        iterations=args.iterations,
        resume=args.resume,
        time_limit=args.time_limit,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        progress=not args.quiet,
    )
    summary = run(
        method.name,
        data,
        ipc,
        options=options,
        overrides={**budget, **_settings(args.set)},
        device=device,
        out_dir=out,
        evaluator=evaluator,
    )
    info = summary.extra["run"]
    print(
        f"wrote {out / 'summary.safetensors'}: {summary.n} images, {summary.stored_bytes} bytes, "
        f"{info['iterations']} iterations in {info['seconds']:.1f} s"
    )
    print(
        f"next: distill eval {out / 'summary.safetensors'}  |  distill show "
        f"{out / 'summary.safetensors'}"
    )
    return summary


def cmd_eval(args) -> None:
    """Evaluate a summary of any modality with its own protocol (`datadistill.modality`)."""
    from datadistill import modality
    from datadistill.distill import resolve_device
    from datadistill.results import append_rows

    archs = None
    if args.arch is not None:
        archs = tuple(a.strip() for a in args.arch.split(",") if a.strip())
    request = modality.EvalRequest(
        archs=archs,
        runs=args.runs,
        epochs=args.epochs,
        no_dsa=args.no_dsa,
        seed=args.eval_seed,
        dataset=args.dataset,
        download=args.download,
        data_root=args.data_root,
        device=str(resolve_device(args.device)),
        progress=not args.quiet,
    )
    kind = modality.for_file(args.summary)  # options are checked before the tensors load
    kind.check_eval(request)
    summary = kind.load(args.summary)
    rows = kind.evaluate(summary, request)
    print(kind.table(rows))
    if args.results:
        append_rows(args.results, rows)
        print(f"appended {len(rows)} rows to {args.results}")


def cmd_show(args) -> None:
    """Images: a grid PNG; other modalities: a description on the terminal."""
    from datadistill import modality

    request = modality.ShowRequest(output=args.output, max_per_class=args.max_per_class)
    kind = modality.for_file(args.summary)  # options are checked before the tensors load
    kind.check_show(request)
    summary = kind.load(args.summary)
    print("\n".join(kind.show(summary, args.summary, request)))


def cmd_export(args) -> None:
    from datadistill import modality

    kind = modality.for_file(args.summary)
    kind.check_export(args.format)
    kind.export(kind.load(args.summary), args.output, args.format)
    print(f"wrote {args.output}")


def cmd_experts(args) -> None:
    from datadistill.accel import check_precision
    from datadistill.distill import resolve_device
    from datadistill.experts import ExpertConfig, default_folder, train_experts

    if args.arch not in nets.available():
        raise DistillError(
            f"unknown architecture '{args.arch}'; choose from: {', '.join(nets.available())}"
        )
    net_config = {k: v for k, v in (("depth", args.depth), ("width", args.width)) if v}
    data = datasets.load(args.dataset, root=args.data_root, download=args.download)
    out = args.out or default_folder(args.dataset, args.arch, net_config)
    config = ExpertConfig(
        num=args.num,
        epochs=args.epochs,
        lr=args.lr,
        arch=args.arch,
        net_config=net_config,
        seed=args.seed,
        precision=check_precision("--precision", args.precision),
    )
    paths = train_experts(
        data,
        config=config,
        folder=out,
        device=resolve_device(args.device),
        progress=not args.quiet,
        only=args.only,
    )
    print(f"{len(paths)} experts of {args.epochs} epochs in {out}")


def cmd_generator(args) -> None:
    from datadistill.distill import resolve_device
    from datadistill.generators import default_path, train_generator
    from datadistill.generators.trainer import default_config

    data = datasets.load(args.dataset, root=args.data_root, download=args.download)
    out = args.out or default_path(args.dataset)
    config = default_config(args.dataset, args.epochs)
    train_generator(
        data, config=config, path=out, device=resolve_device(args.device), progress=not args.quiet
    )
    print(f"generator of {config.epochs} epochs in {out}; `distill run --method itgan` uses it")


def cmd_sweep(args) -> None:
    from datadistill import sweep, sweep_config

    outcome = sweep.run_sweep(
        sweep_config.load(args.config),
        workers=args.workers,
        address=args.address,
        threads=args.threads,
        gpus_per_task=args.gpus_per_task,
        dry_run=args.dry_run,
    )
    if outcome.failed:
        names = ", ".join(c.label() for c, _ in outcome.failed)
        raise DistillError(
            f"{len(outcome.failed)} cells failed ({names}); fix the cause printed above and run "
            "the same command again (finished cells are kept)"
        )


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "eval": cmd_eval,
    "show": cmd_show,
    "export": cmd_export,
    "experts": cmd_experts,
    "generator": cmd_generator,
    "sweep": cmd_sweep,
}


def main(argv: list[str] | None = None) -> int:
    from datadistill.results import set_command

    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    set_command(argv)
    try:
        COMMANDS[args.command](args)
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; `distill run ... --resume` continues from the last checkpoint",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
