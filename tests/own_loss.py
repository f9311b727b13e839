"""A method's own loss at a summary, for the "each objective lowers its loss" tests."""

import torch

from datadistill import methods


def own_loss_at(name, summary, data, overrides, seeds=4):
    """The preset's loss at `summary`, averaged over fixed generators and a fresh objective
    (fresh networks, a fresh pool for FRePO, temperature 1 for RFAD): no state carried."""
    m = methods.get(name)
    cfg = m.config(data.spec.name, overrides)
    total = 0.0
    for s in range(seeds):
        param, obj = m.build(cfg, data, summary.ipc, torch.Generator().manual_seed(0))
        with torch.no_grad():
            param.images.copy_(summary.params.get("images", summary.images))
            if summary.soft_labels:
                param.label_logits.copy_(summary.labels)
        total += float(obj.loss(param, data, torch.Generator().manual_seed(100 + s), 0).detach())
    return total / seeds
