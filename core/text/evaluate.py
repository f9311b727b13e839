"""The text evaluation protocol: fresh classifiers trained on a summary, tested on real text.

Exactly the image protocol of `datadistill.evaluate` with text classifiers: K fresh models per
architecture, trained by the one training loop (`datadistill.train.train`, no augmentation) with
the summary's own hyperparameters (its learnt `syn_lr`, through
`datadistill.evaluate.train_config_for`), tested on the real test split; one row per architecture
in `datadistill.results`' schema, where `images` counts synthetic sentences.
"""

from __future__ import annotations

import torch

from datadistill.data import Dataset
from datadistill.evaluate import EvalConfig, summary_row, train_config_for
from datadistill.profile import measure
from datadistill.text import models
from datadistill.train import TrainConfig, test, train

# the protocol of `distill run --method text-bptt` and `distill eval`: both classifiers, 3 fresh
# models each, 300 epochs (sized for a CPU)
DEFAULT_EVAL = EvalConfig(archs=tuple(models.ARCHS), runs=3, train=TrainConfig(epochs=300))


def evaluate_text(
    summary, data: Dataset, *, config: EvalConfig, device="cpu", variant: str = ""
) -> list[dict]:
    """Rows for `summary` (a `TextSummary`, or anything with embeddings/labels/extra/...)."""
    tcfg = train_config_for(summary, config.train).with_(dsa=False)
    x, y = summary.embeddings.to(device), summary.labels.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
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
        row = summary_row(summary, data.spec.name, arch, accs, tcfg, m.seconds, device)
        rows.append({**row, "metric": "accuracy", "eval_lr": tcfg.lr, "variant": variant})
    return rows
