"""The text evaluation protocol: fresh classifiers trained on a summary, tested on real text.

Exactly the image protocol (`datadistill.evaluate.fresh_models`, which also counts and warns
about diverged models) with text classifiers: K fresh models per architecture, trained by the
one training loop (`datadistill.train.train`, no augmentation) with
the summary's own hyperparameters (its learnt `syn_lr`, through
`datadistill.evaluate.train_config_for`), tested on the real test split; one row per architecture
in `datadistill.results`' schema, where `images` counts synthetic sentences.
"""

from __future__ import annotations

import torch

from datadistill.data import Dataset
from datadistill.evaluate import EvalConfig, fresh_models, train_config_for
from datadistill.text import models
from datadistill.train import TrainConfig

# the protocol of `distill run --method text-bptt` and `distill eval`: both classifiers, 3 fresh
# models each, 300 epochs (sized for a CPU)
DEFAULT_EVAL = EvalConfig(archs=tuple(models.ARCHS), runs=3, train=TrainConfig(epochs=300))


def evaluate_text(
    summary, data: Dataset, *, config: EvalConfig, device="cpu", variant: str = ""
) -> list[dict]:
    """Rows for `summary` (a `TextSummary`, or anything with embeddings/labels/extra/...)."""
    tcfg = train_config_for(summary, config.train).with_(dsa=False)

    def build(arch: str, seed: int) -> torch.nn.Module:
        return models.fresh(arch, data.spec, torch.Generator().manual_seed(seed), device)

    rows = fresh_models(summary, summary.embeddings, data, dataset=data.spec.name, config=config,
                        tcfg=tcfg, build=build, dsa_strategy="", device=device,
                        progress=False)  # fmt: skip
    return [{**row, "metric": "accuracy", "eval_lr": tcfg.lr, "variant": variant} for row in rows]
