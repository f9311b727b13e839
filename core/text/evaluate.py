"""The text evaluation protocol: fresh classifiers trained on a summary, tested on real text.

Exactly the image protocol of `core.evaluate` with text classifiers: K fresh models per
architecture, trained by the one training loop (`core.train.train`, no augmentation) with
the summary's own hyperparameters (its learnt `syn_lr`, through
`core.evaluate.train_config_for`), tested on the real test split; one row per architecture
in `core.results`' schema, where `images` counts synthetic sentences.
"""

from __future__ import annotations

import statistics

import torch

from core.data import Dataset
from core.evaluate import EvalConfig, device_name, train_config_for
from core.profile import measure
from core.results import command_line
from core.text import models
from core.train import test, train


def evaluate_text(
    summary, data: Dataset, *, config: EvalConfig, device="cpu", variant: str = ""
) -> list[dict]:
    """Rows for `summary` (a `TextSummary`, or anything with embeddings/labels/extra/...)."""
    tcfg = train_config_for(summary, config.train).with_(dsa=False)
    x, y = summary.embeddings.to(device), summary.labels.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    run_info = summary.extra.get("run", {})
    rows = []
    for arch in config.archs:
        accs = []
        with measure(device) as m:
            for r in range(config.runs):
                seed = config.seed * 1000 + r
                net = models.fresh(arch, data.spec, torch.Generator().manual_seed(seed), device)
                gen = torch.Generator().manual_seed(seed)
                train(net, x, y, config=tcfg, dsa_strategy="", generator=gen)
                accs.append(test(net, x_test, y_test))
        rows.append({
            "method": summary.method,
            "dataset": data.spec.name,
            "ipc": summary.ipc,
            "iterations": run_info.get("iterations", 0),
            "arch": arch,
            "runs": config.runs,
            "acc_mean": statistics.fmean(accs),
            "acc_std": statistics.pstdev(accs),
            "images": summary.n,
            "stored_bytes": summary.stored_bytes,
            "sec_per_iter": run_info.get("sec_per_iter"),
            "peak_mem_mb": run_info.get("peak_mem_mb"),
            "command": command_line(),
            "metric": "accuracy",
            "accs": accs,
            "eval_epochs": tcfg.epochs,
            "eval_lr": tcfg.lr,
            "eval_seconds": m.seconds,
            "distill_seconds": run_info.get("seconds"),
            "seed": summary.seed,
            "variant": variant,
            "objective": summary.objective,
            "parameterisation": summary.parameterisation,
            "device": device_name(device),
        })  # fmt: skip
    return rows
