"""Image distillation: a method's parameterisation and objective through the one outer loop.

`run` builds what a method needs (config, parameterisation, objective, one SGD over the
parameterisation's groups) and hands it to `datadistill.loop.optimise`, which owns progress,
metrics, checkpoints, resume and the time limit for every modality. Selection methods
(coresets) have no loop and return their rows directly. Recommender and text summaries come
through here too, with a `summarise` hook building their own summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from datadistill import accel, loop, methods
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.loop import CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE, RunOptions, Stepper
from datadistill.profile import measure
from datadistill.summary import Summary

__all__ = [
    "CHECKPOINT_FILE",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "RunOptions",
    "ImageStepper",
    "check_ipc",
    "resolve_device",
    "run",
]


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DistillError(f"device '{name}' asked for but CUDA is not available; use --device cpu")
    return torch.device(name)


def check_ipc(data: Dataset, ipc: int) -> None:
    smallest = min(data.class_counts())
    if ipc < 1 or ipc > smallest:
        raise DistillError(
            f"--ipc {ipc} is out of range for {data.spec.name}: use 1 to {smallest} "
            "(the smallest class's number of training images)"
        )


def run(
    method_name: str,
    data: Dataset,
    ipc: int,
    *,
    options: RunOptions = RunOptions(),
    overrides: dict | None = None,
    device: torch.device | str = "cpu",
    out_dir: str | Path | None = None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    evaluator: Callable[[Summary], float] | None = None,
    summarise: Callable | None = None,
) -> Summary:
    """Distil `data` with method `method_name` at `ipc` images per class.

    Args:
        overrides: the method's settings to change (`--set key=value`), typed by its config.
        out_dir: where the summary, checkpoint and metrics go; nothing is written if None.
        callbacks: called as cb(iteration, record) after every step (logging, drawing,
            tests that interrupt a run).
        evaluator: summary -> accuracy, called every `options.eval_every` iterations.
        summarise: (method, cfg, data, ipc, seed, param, objective, state) -> a summary with
            `save(path)`, for modalities whose summary is not images (recommender data,
            text); None builds the image `Summary`. `state` holds iterations and timings.
    """
    accel.tune_allocator()
    method = methods.get(method_name)
    check_ipc(data, ipc)
    cfg = method.config(data.spec.name, overrides)
    if method.learnt and options.iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=options.iterations)
    device = torch.device(device)
    out = Path(out_dir) if out_dir is not None else None
    generator = torch.Generator().manual_seed(options.seed)
    current = summarise or _current

    if not method.learnt:
        with measure(device) as m:
            rows = method.select(cfg, data, ipc, generator, options.seed, device)
        summary = _summary(
            method,
            cfg,
            data,
            ipc,
            options.seed,
            data.x_train[rows],
            data.y_train[rows],
            None,
            objective="selection",
            objective_extra={},
            iterations=0,
            sec_per_iter=None,
            seconds=m.seconds,
            peak_mem_mb=m.peak_mem_mb,
        )
        if out is not None:
            summary.save(out / SUMMARY_FILE)
        return summary

    param, objective = method.build(cfg, data, ipc, generator)
    param = param.to(device)

    def summarise_now(state: dict):
        return current(method, cfg, data, ipc, options.seed, param, objective, state)

    return loop.optimise(
        param=param,
        objective=objective,
        data=data.to(device) if device.type != "cpu" else data,
        generator=generator,
        stepper=ImageStepper(param, optimizer=cfg.optimizer, lr=cfg.lr_img, momentum=cfg.momentum),
        iterations=cfg.iterations,
        summarise=summarise_now,
        options=options,
        describe=f"{method.name} {data.spec.name} ipc{ipc}",
        device=device,
        out=out,
        callbacks=callbacks,
        evaluator=evaluator,
    )


class ImageStepper(Stepper):
    """Images: one optimiser over the parameterisation's groups (a group may carry its own
    rate: learnt labels, MTT's learnt step size). SGD with momentum, as DC, DM, MTT and the
    other gradient- and distribution-matching codes step their synthetic set; or Adam, which
    DD and KIP use and RFAD's AdaBelief and FRePO's LAMB resemble: their kernel losses give
    pixel gradients whose scale drifts by orders of magnitude over a run, which a fixed SGD
    rate cannot follow (see experiments/results/meta_curves_fmnist.png)."""

    OPTIMIZERS = ("sgd", "adam")

    def __init__(self, param: torch.nn.Module, *, lr: float, momentum: float, optimizer="sgd"):
        self.lr = lr
        if optimizer == "sgd":
            self.opt = torch.optim.SGD(param.param_groups(), lr=lr, momentum=momentum)
        elif optimizer == "adam":
            self.opt = torch.optim.Adam(param.param_groups(), lr=lr)
        else:
            raise DistillError(
                f"unknown optimizer '{optimizer}'; use one of {', '.join(self.OPTIMIZERS)} "
                "(--set optimizer=adam)"
            )

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self, it: int) -> dict:
        self.opt.step()
        return {}

    def divergence_fix(self) -> str:
        return (
            f"lower the learning rate (--set lr_img={self.lr / 10:g}) or check the data for NaN/inf"
        )

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, blob: dict) -> None:
        self.opt.load_state_dict(blob["opt"])


def _current(method, cfg, data, ipc, seed, param, objective, state) -> Summary:
    x, y = param.materialize()
    n = max(state["iteration"], 1)
    return _summary(
        method,
        cfg,
        data,
        ipc,
        seed,
        x.cpu(),
        y.cpu(),
        param,
        objective=objective.name,
        objective_extra=objective.summary_extra(),
        iterations=state["iteration"],
        sec_per_iter=state["step_seconds"] / n,
        seconds=state["step_seconds"],
        peak_mem_mb=state["peak_mem_mb"],
    )


def _summary(
    method,
    cfg,
    data,
    ipc,
    seed,
    x,
    y,
    param,
    *,
    objective,
    objective_extra,
    iterations,
    sec_per_iter,
    seconds,
    peak_mem_mb,
) -> Summary:
    return Summary(
        images=x.float().contiguous(),
        labels=y.contiguous(),
        spec=data.spec,
        method=method.name,
        ipc=ipc,
        objective=objective,
        parameterisation=param.name if param is not None else "images",
        stored_bytes=param.stored_bytes() if param is not None else None,
        config=dataclasses.asdict(cfg),
        seed=seed,
        extra={
            **(param.summary_extra() if param is not None else {}),
            **objective_extra,
            "run": {
                "iterations": iterations,
                "sec_per_iter": sec_per_iter,
                "seconds": seconds,
                "peak_mem_mb": peak_mem_mb,
            },
        },
        params={
            k: v.detach().cpu() for k, v in (param.tensors() if param is not None else {}).items()
        },
    )
