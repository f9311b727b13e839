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
distill --threads 2 --plugin my_nets.py run --config exp.yaml --dataset my_images/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datadistill.cli import config_file
from datadistill.cli.options import common_options, run_options, sweep_options
from datadistill.cli.parser import Parser, add_shared, command_path, option_strings
from datadistill.cli.quiet import silence_third_party
from datadistill.errors import DistillError

CORE = ("list", "run", "eval", "show", "export", "experts", "generator", "sweep")


def build(argv: list[str]) -> tuple[argparse.ArgumentParser, dict]:
    """The parser and {command: handler} for `argv`.

    The apps' commands are imported only when `argv` names one that is not core's (they
    import torch and their libraries at load); `distill --help` lists them from the catalogue.
    """
    from datadistill import catalog

    p = Parser(prog="distill", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, help="torch threads, intra- and inter-op (default: all)")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE|FILE.py",
        help="import this first: it may register datasets, networks or methods (repeatable)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    core_commands(sub)
    handlers = dict(COMMANDS)
    named = first_command(argv)
    stored = catalog.stored()
    if named is None and stored is not None:
        for name, text in stored["commands"].items():
            sub.add_parser(name, help=text, add_help=False)
    elif named not in CORE:
        from datadistill import plugins

        for module in plugins.load().values():  # apps/: `distill privacy ...`, `distill nas ...`
            if hasattr(module, "add_commands"):
                handlers.update(module.add_commands(sub))
    add_shared(p)
    return p, handlers


def first_command(argv: list[str]) -> str | None:
    """The first word of `argv` that is not an option or the value of a global option."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in ("--threads", "--plugin"):
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def core_commands(sub) -> None:

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
    x.add_argument(
        "--format",
        choices=("npz", "pt", "png"),
        help="default: from -o (.pt: pt; an existing folder: png; else npz)",
    )
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


def cmd_list(args) -> None:
    """From the catalogue (`datadistill.catalog`): no torch, no apps imported."""
    from datadistill import catalog

    c = catalog.current()
    print(f"methods:\n  {'name':10s} {'modality':8s} {'family':28s} paper")
    for m in c["methods"]:
        print(f"  {m['name']:10s} {m['modality']:8s} {m['family']:28s} {m['paper']}")
        print(f"  {'':10s} settings: {m['settings']}")
    print(f"modalities (eval, show, export read each): {', '.join(c['modalities'])}")
    print("datasets (or --dataset PATH: a folder of class folders of images, or an .npz):")
    for s in c["datasets"]:
        shape = "x".join(map(str, s["shape"]))
        print(f"  {s['name']:14s} {s['classes']} classes, {shape}")
    print("architectures:\n  " + ", ".join(c["architectures"]))


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

    fmt = args.format or format_of(args.output)
    kind = modality.for_file(args.summary)
    kind.check_export(fmt)
    written = kind.export(kind.load(args.summary), args.output, fmt)
    print(f"wrote {written} ({fmt})")


def format_of(output: Path) -> str:
    """`distill export`'s format when --format is not given: the one -o's name asks for."""
    suffix = output.suffix.lower()
    if suffix == ".pt":
        return "pt"
    if output.is_dir():
        return "png"
    return "npz"


def cmd_experts(args) -> None:
    from datadistill import data as datasets
    from datadistill import nets
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
    from datadistill import data as datasets
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
    from datadistill.bench import config as sweep_config
    from datadistill.bench import sweep

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


def cmd_run(args):
    from datadistill.cli.run import run_method

    return run_method(args)


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


def parse(argv: list[str]) -> tuple[argparse.Namespace, dict]:
    """`argv` -> (arguments, handlers); `--config FILE` fills the command's defaults first."""
    parser, handlers = build(argv)
    _, leaf = command_path(parser, argv)
    path = config_file.find(argv)
    if path is not None and leaf is not None and "--config" in option_strings(leaf):
        config_file.apply(leaf, path)
    args = parser.parse_args(argv)
    if leaf is not None:
        args.effective_options = config_file.effective(args, leaf)
    return args, handlers


def set_threads(n: int | None) -> None:
    """--threads: a fair share of a shared machine (torch's own default is every core)."""
    if n is None:
        return
    if n < 1:
        raise DistillError(f"--threads must be >= 1, got {n}; e.g. --threads 2")
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set in this process (tests call main twice)
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    silence_third_party()
    try:
        args, handlers = parse(argv)
        set_threads(args.threads)
        if args.plugin:
            from datadistill import plugins

            for name in args.plugin:
                plugins.import_user(name)
        from datadistill.results import set_command

        set_command(argv)
        handlers[args.command](args)
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
