"""`distill run`: the parsed arguments become a typed config and options, the engine's one front
door (`datadistill.distill.run`) distils, and the modality's quick report is printed.

Every modality goes through `run_method`: what differs is how its data load and what is
printed after the summary is written (images: the paths to eval and show; graphs: one GCN on
the summary; recommender data: both models next to random users; text: decoded sentences and
an evaluation next to random sentences).
"""

from __future__ import annotations

import os
from pathlib import Path

from datadistill import methods
from datadistill.cli import run_folder
from datadistill.cli.options import parse_settings
from datadistill.distill import resolve_device
from datadistill.distill import run as distill_run
from datadistill.errors import DistillError
from datadistill.loop import SUMMARY_FILE, RunOptions


def run_options(args) -> RunOptions:
    """How the outer loop runs, from `distill run`'s flags."""
    return RunOptions(
        seed=args.seed,
        iterations=args.iterations,
        resume=args.resume,
        time_limit=args.time_limit,
        checkpoint_every=args.checkpoint_every,
        eval_every=getattr(args, "eval_every", 0),
        progress=not args.quiet,
    )


def out_dir(args, method: str, dataset: str, size: str, *, safe: bool = False) -> Path:
    """--out, or runs/METHOD-DATASET-SIZE-sSEED (`safe`: a dataset given as a path, as
    recommender and text data may be, is flattened into the folder's name)."""
    if args.out is not None:
        return args.out
    if not safe and (Path(dataset).suffix == ".npz" or Path(dataset).is_dir()):
        dataset = Path(dataset).stem  # your own data: --dataset my/images or data.npz
    if safe:
        dataset = dataset.replace(":", "-").replace("/", "-")
    return Path("runs") / f"{method}-{dataset}-{size}-s{args.seed}"


def checked(out: Path, args, method) -> Path:
    """`out`, unless it holds another run (`run_folder`); `run` records this one in it."""
    run_folder.check(out, args, method.name)
    return out


def run_method(args):
    """`distill run` (and apps' run commands, e.g. `distill privacy run`): distil
    `args.method` and report; returns the summary."""
    method = methods.get(args.method)
    settings = parse_settings(args.set)
    return MODALITIES[method.modality](method, args, settings)


def recorded_run(method, data, ipc, config, options, *, out_dir, args, **kw):
    """The front door, once the folder holds this run's `run_config.yaml`; a run refused
    before it wrote anything else takes the folder it created with it."""
    new = [p for p in (out_dir, *out_dir.parents) if not p.exists()]  # innermost first
    run_folder.record(out_dir, args, method.name)
    try:
        return distill_run(method, data, ipc, config, options, out_dir=out_dir, **kw)
    except DistillError:
        if new and os.listdir(out_dir) == [run_folder.RUN_CONFIG]:
            (out_dir / run_folder.RUN_CONFIG).unlink()
            for folder in new:  # those left empty; another run's folder stays
                if any(folder.iterdir()):
                    break
                folder.rmdir()
        raise


def _image(method, args, settings: dict):
    from datadistill import budget as budgets
    from datadistill import data as datasets

    data = datasets.load(args.dataset, root=args.data_root, download=args.download)
    device = resolve_device(args.device)
    ipc, budget = budgets.resolve(
        method, data.spec, ipc=args.ipc, nbytes=getattr(args, "bytes", None)
    )
    size = f"ipc{ipc}" if not budget else f"{budget['budget_bytes']}B"
    out = checked(out_dir(args, method.name, args.dataset, size), args, method)
    evaluator = None
    if args.eval_every:
        from datadistill.evaluate import EvalConfig, evaluate
        from datadistill.train import TrainConfig

        quick = EvalConfig(runs=1, train=TrainConfig(epochs=100))
        evaluator = lambda s: round(
            evaluate(s, data, config=quick, device=device, progress=False)[0]["acc_mean"], 4
        )
    config = method.config(data.spec.name, {**budget, **settings})
    summary = recorded_run(method, data, ipc, config, run_options(args), device=device,
                           out_dir=out, args=args, evaluator=evaluator)  # fmt: skip
    info = summary.extra["run"]
    print(
        f"wrote {out / SUMMARY_FILE}: {summary.n} images, {summary.stored_bytes} bytes, "
        f"{info['iterations']} iterations in {info['seconds']:.1f} s"
    )
    pool = summary.extra.get("pool")
    if pool:  # DM's reusable real-side statistics: kept in memory and in the checkpoint
        print(
            f"embedder pool: {pool['filled']} of {pool['size']} members filled, "
            f"{pool['cache_bytes'] / 1e6:.1f} MB of real class means (in memory and on disk)"
        )
    print(f"next: distill eval {out / SUMMARY_FILE}  |  distill show {out / SUMMARY_FILE}")
    return summary


def _graph(method, args, settings: dict):
    """The run ends with a quick check: one GCN trained on the summary and tested on the real
    data, printed beside the summary's storage against the original graph's. `distill eval
    FILE` runs the full protocol (`datadistill.graph.evaluate`)."""
    import dataclasses

    from datadistill.graph import data as graph_data
    from datadistill.graph.evaluate import default_config, evaluate_summary

    data = graph_data.load(args.dataset, root=args.data_root)
    device = resolve_device(args.device)
    out = checked(out_dir(args, method.name, args.dataset, f"ipc{args.ipc}"), args, method)
    config = method.config(data.name, settings)
    summary = recorded_run(
        method, data, args.ipc, config, run_options(args), device=device, out_dir=out, args=args
    )
    info = summary.extra["run"]
    unit = "nodes" if summary.task == "node" else "graphs"
    print(
        f"wrote {out / SUMMARY_FILE}: {summary.n} {unit} ({summary.extra['reduction']:.2%} of the "
        f"data), {summary.stored_bytes} bytes vs {data.stored_bytes()} for the original, "
        f"{info['iterations']} iterations in {info['seconds']:.1f} s"
    )
    quick = dataclasses.replace(default_config(summary.task), runs=1)
    row = evaluate_summary(summary, data, config=quick, device=device)[0]
    print(f"a GCN trained on it scores {row['acc_mean']:.1%} on {data.name}'s test set (1 run)")
    return summary


def _recsys(method, args, settings: dict):
    """`--ipc` (or `--set users=N`) is the number of synthetic users; the summary is evaluated
    with the infinity-AE it was distilled for and with EASE (transfer), next to a random
    subset of as many real users."""
    from datadistill.recsys import data as recdata
    from datadistill.recsys.evaluate import MODELS, evaluate_support

    users = int(settings.pop("users", args.ipc))
    data = recdata.load(args.dataset, root=args.data_root)
    out = checked(out_dir(args, method.name, args.dataset, f"u{users}", safe=True), args, method)
    config = method.config(data.spec.name, settings)
    summary = recorded_run(method, data, users, config, run_options(args),
                  device=resolve_device(args.device), out_dir=out, args=args)  # fmt: skip
    print(f"wrote {out / SUMMARY_FILE}: {summary.n} synthetic users x {data.spec.num_items} items")
    baseline = recdata.random_users(data, users, seed=args.seed).cpu()
    for model in MODELS:
        for name, support in (("summary", summary.interactions), ("random users", baseline)):
            m = evaluate_support(support, data.to("cpu"), model=model)
            print(
                f"{model:12s} {name:13s} HR@10 {m['hr@10']:.4f}  nDCG@10 {m['ndcg@10']:.4f}  "
                f"AUC {m['auc']:.4f}  (ridge {m['reg']:g})"
            )
    return summary


def _text(method, args, settings: dict):
    """`--ipc` counts synthetic sentences per class; the decoded sentences are printed, and
    the summary is evaluated next to a random real subset of the same size."""
    from datadistill.results import table
    from datadistill.text import data as textdata
    from datadistill.text.evaluate import DEFAULT_EVAL, evaluate_text
    from datadistill.text.summary import random_sentences

    config = method.config(args.dataset, settings)
    text = textdata.load(args.dataset, root=args.data_root, seq_len=config.seq_len,
                         dim=config.dim, max_train=config.max_train)  # fmt: skip
    out = checked(
        out_dir(args, method.name, args.dataset, f"ipc{args.ipc}", safe=True), args, method
    )
    device = resolve_device(args.device)
    summary = recorded_run(
        method, text, args.ipc, config, run_options(args), device=device, out_dir=out, args=args
    )
    print(f"wrote {out / SUMMARY_FILE}: {summary.n} synthetic sentences")
    labels = summary.hard_labels().tolist()
    for i, sentence in enumerate(summary.sentences()[: 2 * text.spec.num_classes]):
        print(f"  [{text.spec.classes[labels[i]]}] {sentence}")
    rows = evaluate_text(summary, text.dataset, config=DEFAULT_EVAL, device=device)
    baseline = random_sentences(text, args.ipc, seed=args.seed)
    rows += evaluate_text(baseline, text.dataset, config=DEFAULT_EVAL, device=device)
    print(table(rows))
    return summary


MODALITIES = {"image": _image, "graph": _graph, "recsys": _recsys, "text": _text}
