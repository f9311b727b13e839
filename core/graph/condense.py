"""Graph condensation through the one outer loop (`datadistill.loop.optimise`) -> GraphSummary.

What is graph-specific lives here: building the parameterisation and objective
(`datadistill.methods.graph.BUILDERS`), the `GraphSummary`, and how the summary's two parameter
groups step. GCond and DosCond step Adam on features and structure with their own learning
rates; GCond alternates between them (`objective.groups(step)`); DosCond lowers both x0.1
at 40% of the run. Progress, metrics, checkpoints and resume are the loop's, as for images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from datadistill import loop, methods, modal_runner
from datadistill.errors import DistillError
from datadistill.graph.data import GraphData
from datadistill.graph.summary import GraphSummary
from datadistill.loop import RunOptions, Stepper

# graph runs take the same options as image runs (the name stays for existing callers)
CondenseOptions = RunOptions


def condense(
    method_name: str,
    data: GraphData,
    ipc: int,
    *,
    options: RunOptions = RunOptions(),
    overrides: dict | None = None,
    device: torch.device | str = "cpu",
    out_dir: str | Path | None = None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    evaluator: Callable[[GraphSummary], float] | None = None,
) -> GraphSummary:
    """Condense `data` with graph method `method_name` at `ipc` nodes (or graphs) per class.

    Args:
        overrides: the method's settings to change (`--set key=value`), typed by its config;
            `reduction=r` > 0 replaces `ipc` with r * N synthetic nodes (node methods).
        out_dir: where the summary, checkpoint and metrics go; nothing is written if None.
        callbacks: called as cb(iteration, record) after every step.
        evaluator: summary -> accuracy, called every `options.eval_every` iterations.
    """
    from datadistill.methods.graph import BUILDERS

    method = methods.get(method_name)
    if method.name not in BUILDERS:
        raise DistillError(
            f"'{method_name}' is a {method.modality} method, not a graph one; graph methods: "
            f"{', '.join(sorted(BUILDERS))}"
        )
    cfg = method.config(data.name, overrides)
    if options.iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=options.iterations)
    device = torch.device(device)
    generator = torch.Generator().manual_seed(options.seed)
    param, objective, ipc = BUILDERS[method.name](cfg, data, ipc, generator)
    param = param.to(device)

    def summarise_now(state: dict) -> GraphSummary:
        return _summary(method, cfg, data, ipc, options.seed, param, objective, state)

    return loop.optimise(
        param=param,
        objective=objective,
        data=data,
        generator=generator,
        stepper=GroupAdam(param, objective, cfg),
        iterations=cfg.iterations,
        summarise=summarise_now,
        options=options,
        describe=f"{method.name} {data.name} ipc{ipc}",
        device=device,
        out=Path(out_dir) if out_dir is not None else None,
        callbacks=callbacks,
        evaluator=evaluator,
    )


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


def _summary(method, cfg, data, ipc, seed, param, objective, state) -> GraphSummary:
    x, adj, y = param.materialize()
    size = data.num_nodes if data.task == "node" else len(data.train_idx)
    return GraphSummary(
        features=x.cpu(),
        adjacency=adj.cpu(),
        labels=y.cpu(),
        task=data.task,
        dataset=data.name,
        num_classes=data.num_classes,
        method=method.name,
        ipc=ipc,
        objective=objective.name,
        parameterisation=param.name,
        config=dataclasses.asdict(cfg),
        seed=seed,
        extra={
            "reduction": len(y) / size,
            "run": modal_runner.run_info(state),
        },
    )
