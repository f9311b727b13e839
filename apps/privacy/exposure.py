"""The members a dp-dm release exposes most: the examples its clipping cut hardest.

Every example of a dp-dm release (`datadistill_apps.privacy.release`) contributes a vector of
norm at most C, and the guarantee is the same for all; but an example whose pooled embedding
was far above the clip (an outlier) moved its class sums by the full C, while a typical one
may have moved them by less. A membership audit aimed at those examples (Carlini et al.,
"Membership Inference Attacks From First Principles", S&P 2022, argue that privacy is about
the most vulnerable examples, not the average) checks that the model trained on the summary
does not single them out either. The auditor knows the data, so recomputing the norms is fine.
"""

from __future__ import annotations

import torch

from datadistill.data import Dataset
from datadistill.summary import Summary
from datadistill_apps.privacy import release
from datadistill_apps.privacy.audit import Candidates


def clip_ratios(summary: Summary, data: Dataset, *, split: str = "train", device="cpu"):
    """Each example's pooled embedding norm over the release's bound C_e [n], for the training
    or the test split: above 1, the mechanism scaled (or would scale) it down to the bound."""
    p = summary.extra.get("privacy") or {}
    tensors = {
        k.removeprefix(release.PREFIX): v
        for k, v in summary.preprocess.items()
        if k.startswith(release.PREFIX)
    }
    if "means" not in tensors:
        raise ValueError(f"this {summary.method} summary holds no dp-dm release to audit")
    embedders, _, _ = release.from_tensors(tensors, p)
    if split == "test":  # the test images in the training slot: the same pass embeds them
        data = Dataset(data.spec, data.x_test, data.y_test, data.x_test, data.y_test)
    norms = release.example_norms(data, embedders, device=device)
    return norms / (p["clip"] * (1 - p["count_share"]) ** 0.5)


def exposed_candidates(
    summary: Summary, data: Dataset, n: int, *, device="cpu"
) -> tuple[Candidates, torch.Tensor]:
    """The `n` members clipped hardest and, as non-members, the `n` test images the release
    would have clipped hardest (equally atypical, so that being an outlier is not mistaken for
    being a member), with the members' clip ratios."""
    ratios = clip_ratios(summary, data, device=device)
    order = ratios.argsort(descending=True)[:n]
    outside = clip_ratios(summary, data, split="test", device=device).argsort(descending=True)
    outside = outside[:n]
    cands = Candidates(
        x=torch.cat([data.x_train[order], data.x_test[outside]]),
        y=torch.cat([data.y_train[order], data.y_test[outside]]),
        member=torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)]),
        member_rows=order,
    )
    return cands, ratios[order]
