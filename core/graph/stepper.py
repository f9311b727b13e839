"""How a graph summary's two parameter groups step (GCond, GCDM, DosCond).

GCond and DosCond step Adam on features and structure with their own learning rates; GCond
alternates between them (`objective.groups(step)`); DosCond lowers both x0.1 at 40% of the
run. Registered as the graph presets' `stepper` hook (`datadistill.methods.graph`); the rest
of the run (progress, metrics, checkpoints, resume) is the one outer loop's.
"""

from __future__ import annotations

import torch

from datadistill.loop import Stepper


class GroupAdam(Stepper):
    """Adam per named group ("features": lr_feat, "structure": lr_adj), as GCond's and
    DosCond's reference code keep one optimiser for X' and one for A' (or its MLP). Only the
    groups `objective.groups(it)` names step (all if it names none present); with
    `lr_decay_at` > 0 both rates drop x0.1 once that fraction of the run is done (DosCond)."""

    def __init__(self, param: torch.nn.Module, objective, cfg):
        lrs = {"features": cfg.lr_feat, "structure": cfg.lr_adj}
        self.opts = {
            g["name"]: torch.optim.Adam(g["params"], lr=lrs[g["name"]])
            for g in param.param_groups()
        }
        self.objective = objective
        self.decay_at = round(cfg.lr_decay_at * cfg.iterations) if cfg.lr_decay_at else -1
        self.fix = f"lr_feat={cfg.lr_feat / 10:g} lr_adj={cfg.lr_adj / 10:g}"

    def zero_grad(self) -> None:
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)

    def step(self, it: int) -> dict:
        stepped = [g for g in self.objective.groups(it) if g in self.opts] or list(self.opts)
        for name in stepped:
            self.opts[name].step()
        if it + 1 == self.decay_at:
            for opt in self.opts.values():
                for group in opt.param_groups:
                    group["lr"] *= 0.1
        return {"stepped": stepped}

    def divergence_fix(self) -> str:
        return f"lower the learning rates (--set {self.fix})"

    def state_dict(self) -> dict:
        return {"opts": {k: o.state_dict() for k, o in self.opts.items()}}

    def load_state_dict(self, blob: dict) -> None:
        for k, o in self.opts.items():
            o.load_state_dict(blob["opts"][k])
