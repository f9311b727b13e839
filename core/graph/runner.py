"""`distill run --method gcond|gcdm|doscond`: condense a graph dataset, save, score it once.

The run ends with a quick check: one GCN trained on the summary and tested on the real data,
printed beside the summary's storage against the original graph's. `distill eval FILE` runs
the full protocol (`datadistill.graph.evaluate`, through `datadistill.graph.modality`).
"""

from __future__ import annotations

from pathlib import Path


def run(method, args):
    """The runner registered with the graph presets: args are `distill run`'s parsed options."""
    from datadistill import modal_runner
    from datadistill.cli import _settings
    from datadistill.distill import SUMMARY_FILE, resolve_device
    from datadistill.graph import data as graph_data
    from datadistill.graph.condense import condense
    from datadistill.graph.evaluate import default_config, evaluate_summary

    data = graph_data.load(args.dataset, root=args.data_root)
    device = resolve_device(args.device)
    out = args.out or Path("runs") / f"{method.name}-{args.dataset}-ipc{args.ipc}-s{args.seed}"
    options = modal_runner.options(args)
    summary = condense(method.name, data, args.ipc, options=options,
                       overrides=_settings(args.set), device=device, out_dir=out)  # fmt: skip
    info = summary.extra["run"]
    unit = "nodes" if summary.task == "node" else "graphs"
    print(
        f"wrote {out / SUMMARY_FILE}: {summary.n} {unit} ({summary.extra['reduction']:.2%} of the "
        f"data), {summary.stored_bytes} bytes vs {data.stored_bytes()} for the original, "
        f"{info['iterations']} iterations in {info['seconds']:.1f} s"
    )
    quick = default_config(summary.task).__class__(
        **{**vars(default_config(summary.task)), "runs": 1}
    )
    row = evaluate_summary(summary, data, config=quick, device=device)[0]
    print(f"a GCN trained on it scores {row['acc_mean']:.1%} on {data.name}'s test set (1 run)")
    return summary
