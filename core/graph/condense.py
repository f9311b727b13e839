"""The outer loop for graph summaries: init -> step -> log, checkpoint, resume -> GraphSummary.

It keeps `core.distill`'s conventions (one seeded generator whose state is checkpointed, a
progress bar, JSONL metrics, a wall-clock budget, the same file names) but not its code path:
that loop materialises images and a `Summary`, and optimises one SGD group, while GCond and
DosCond step Adam on two groups (features, structure) with their own learning rates, and GCond
alternates between them. Which groups step is the objective's call (`objective.groups(step)`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from core import methods
from core.distill import CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE
from core.errors import DistillError
from core.graph.data import GraphData
from core.graph.summary import GraphSummary
from core.profile import measure


@dataclass(frozen=True)
class CondenseOptions:
    """How the loop runs (not what it optimises: that is the method's config)."""

    seed: int = 0
    iterations: int | None = None  # None: the method's default
    checkpoint_every: int = 100
    time_limit: float | None = None  # seconds of optimisation before stopping cleanly
    resume: bool = False
    progress: bool = True


def condense(
    method_name: str,
    data: GraphData,
    ipc: int,
    *,
    options: CondenseOptions = CondenseOptions(),
    overrides: dict | None = None,
    device: torch.device | str = "cpu",
    out_dir: str | Path | None = None,
) -> GraphSummary:
    """Condense `data` with graph method `method_name` at `ipc` nodes (or graphs) per class.

    Args:
        overrides: the method's settings to change (`--set key=value`), typed by its config;
            `reduction=r` > 0 replaces `ipc` with r * N synthetic nodes (node methods).
        out_dir: where the summary, checkpoint and metrics go; nothing is written if None.
    """
    from core.methods.graph import BUILDERS

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
    out = Path(out_dir) if out_dir is not None else None
    generator = torch.Generator().manual_seed(options.seed)
    param, objective, ipc = BUILDERS[method.name](cfg, data, ipc, generator)
    param = param.to(device)
    lrs = {"features": cfg.lr_feat, "structure": cfg.lr_adj}
    opts = {
        g["name"]: torch.optim.Adam(g["params"], lr=lrs[g["name"]]) for g in param.param_groups()
    }
    state = {"iteration": 0, "step_seconds": 0.0, "peak_mem_mb": 0.0}
    if options.resume and out is not None and (out / CHECKPOINT_FILE).exists():
        state = _load_checkpoint(out / CHECKPOINT_FILE, param, opts, objective, generator)
    decay_at = round(cfg.lr_decay_at * cfg.iterations) if cfg.lr_decay_at else -1

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    log = open(out / METRICS_FILE, "a") if out is not None else None
    started = time.monotonic()
    bar = tqdm(total=cfg.iterations, initial=state["iteration"], disable=not options.progress,
               desc=f"{method.name} {data.name} ipc{ipc}", dynamic_ncols=True)  # fmt: skip
    try:
        for it in range(state["iteration"], cfg.iterations):
            with measure(device) as m:
                loss = objective.loss(param, data, generator, it)
                if not torch.isfinite(loss):
                    raise DistillError(
                        f"loss became {float(loss.detach())} at iteration {it}; lower the learning "
                        f"rates (--set lr_feat={cfg.lr_feat / 10:g} lr_adj={cfg.lr_adj / 10:g})"
                    )
                for opt in opts.values():
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                stepped = [g for g in objective.groups(it) if g in opts] or list(opts)
                for name in stepped:
                    opts[name].step()
            if it + 1 == decay_at:  # DosCond: learning rates x0.1 at 40% of the run
                for opt in opts.values():
                    for group in opt.param_groups:
                        group["lr"] *= 0.1
            state["iteration"] = it + 1
            state["step_seconds"] += m.seconds
            state["peak_mem_mb"] = max(state["peak_mem_mb"], m.peak_mem_mb)
            record = {"iteration": it + 1, "loss": float(loss.detach()), "sec": m.seconds,
                      "stepped": stepped}  # fmt: skip
            if log is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4g}")
            done = it + 1 == cfg.iterations
            out_of_time = (
                options.time_limit is not None and time.monotonic() - started > options.time_limit
            )
            if out is not None and (
                done or out_of_time or (it + 1) % options.checkpoint_every == 0
            ):
                _save_checkpoint(out / CHECKPOINT_FILE, param, opts, objective, generator, state)
            if out_of_time:
                break
    finally:
        bar.close()
        if log is not None:
            log.close()
    summary = _summary(method, cfg, data, ipc, options.seed, param, objective, state)
    if out is not None:
        summary.save(out / SUMMARY_FILE)
    return summary


def _summary(method, cfg, data, ipc, seed, param, objective, state) -> GraphSummary:
    x, adj, y = param.materialize()
    n = max(state["iteration"], 1)
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
            "run": {
                "iterations": state["iteration"],
                "sec_per_iter": state["step_seconds"] / n,
                "seconds": state["step_seconds"],
                "peak_mem_mb": state["peak_mem_mb"],
            },
        },
    )


def _save_checkpoint(path: Path, param, opts, objective, generator, state) -> None:
    blob = {
        "param": param.state_dict(),
        "opts": {k: o.state_dict() for k, o in opts.items()},
        "objective": objective.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "state": dict(state),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, param, opts, objective, generator) -> dict:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise DistillError(
            f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to start afresh"
        ) from e
    param.load_state_dict(blob["param"])
    for k, o in opts.items():
        o.load_state_dict(blob["opts"][k])
    objective.load_state_dict(blob["objective"])
    generator.set_state(blob["generator"])
    torch.set_rng_state(blob["torch_rng"])
    return blob["state"]
