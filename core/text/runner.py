"""`distill run --method text-bptt --dataset debian --ipc 10`: distil, save, show, evaluate.

`--ipc` counts synthetic sentences per class. The outer loop is `datadistill.distill.run` (with a
`summarise` hook that writes a `TextSummary`); the decoded sentences are printed, and the
summary is evaluated next to a random real subset of the same size.
"""

from __future__ import annotations

import torch

from datadistill import modal_runner
from datadistill.cli import _settings
from datadistill.distill import SUMMARY_FILE, resolve_device, run
from datadistill.results import table
from datadistill.text import data as textdata
from datadistill.text.evaluate import DEFAULT_EVAL, evaluate_text
from datadistill.text.summary import TextSummary


def summariser(text: textdata.TextData):
    """The outer loop's hook, closed over the vocabulary and table of `text`."""

    def summarise(method, cfg, data, ipc, seed, param, objective, state) -> TextSummary:
        x, y = param.materialize()
        return TextSummary(
            embeddings=x.cpu(),
            labels=y.cpu(),
            spec=data.spec,
            method=method.name,
            ipc=ipc,
            table=text.table,
            words=text.vocab.words,
            objective=objective.name,
            parameterisation=param.name,
            stored_bytes=param.stored_bytes(),
            config=modal_runner.config_dict(cfg),
            seed=seed,
            extra={
                **param.summary_extra(),
                **objective.summary_extra(),
                "run": modal_runner.run_info(state),
            },
        )

    return summarise


def random_sentences(text: textdata.TextData, ipc: int, *, seed: int) -> TextSummary:
    """The baseline: `ipc` real training sentences per class, drawn uniformly (seeded)."""
    data = text.dataset
    rows = torch.cat([
        data.class_index(c)[
            torch.randperm(len(data.class_index(c)), generator=torch.Generator().manual_seed(seed))
        ][:ipc]
        for c in range(data.spec.num_classes)
    ])  # fmt: skip
    return TextSummary(
        embeddings=data.x_train[rows],
        labels=data.y_train[rows],
        spec=data.spec,
        method="random",
        ipc=ipc,
        table=text.table,
        words=text.vocab.words,
        objective="selection",
        seed=seed,
    )


def load_for(args, overrides: dict) -> textdata.TextData:
    from datadistill import methods

    cfg = methods.get("text-bptt").config(args.dataset, overrides)
    return textdata.load(
        args.dataset, root=args.data_root, seq_len=cfg.seq_len, dim=cfg.dim,
        max_train=cfg.max_train,
    )  # fmt: skip


def run_text(method, args) -> TextSummary:
    overrides = _settings(args.set)
    text = load_for(args, overrides)
    out = modal_runner.out_dir(args, method.name, args.dataset, f"ipc{args.ipc}")
    device = resolve_device(args.device)
    summary = run(
        method.name,
        text.dataset,
        args.ipc,
        options=modal_runner.options(args),
        overrides=overrides,
        device=device,
        out_dir=out,
        summarise=summariser(text),
    )
    print(f"wrote {out / SUMMARY_FILE}: {summary.n} synthetic sentences")
    labels = summary.hard_labels().tolist()
    for i, sentence in enumerate(summary.sentences()[: 2 * text.spec.num_classes]):
        print(f"  [{text.spec.classes[labels[i]]}] {sentence}")
    config = DEFAULT_EVAL
    rows = evaluate_text(summary, text.dataset, config=config, device=device)
    baseline = random_sentences(text, args.ipc, seed=args.seed)
    rows += evaluate_text(baseline, text.dataset, config=config, device=device)
    print(table(rows))
    return summary
