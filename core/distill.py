"""The one front door: `run(method, data, ipc, config, options)` -> a summary, for every modality.

`run` builds what a method needs (config, parameterisation, objective, the stepper over the
parameterisation's groups) and hands it to `datadistill.loop.optimise`, which owns progress,
metrics, checkpoints, resume and the time limit. Images need no hooks; graphs, recommender
data and text name theirs on their `Method` (a stepper, a `summarise` hook building their
summary from one `RunState`). Selection methods (coresets) have no loop and return their rows
directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from datadistill import accel, loop, methods
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.loop import SUMMARY_FILE, RunOptions, Stepper
from datadistill.methods.registry import Method
from datadistill.profile import measure
from datadistill.summary import Summary


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


@dataclass(frozen=True)
class RunState:
    """What a modality's `summarise` hook sees, as one typed object: the run's method, typed
    config, the data given to `run`, ipc and seed, the parameterisation and objective, and the
    outer loop's counters (iteration, step_seconds, step_cpu_seconds, peak_mem_mb)."""

    method: Method
    config: object
    data: object
    ipc: int
    seed: int
    param: torch.nn.Module
    objective: object
    counters: dict

    def run_info(self) -> dict:
        """The loop's counters as every summary records them under `extra["run"]`."""
        n = max(self.counters["iteration"], 1)
        return {
            "iterations": self.counters["iteration"],
            "sec_per_iter": self.counters["step_seconds"] / n,
            "seconds": self.counters["step_seconds"],
            "cpu_seconds": self.counters["step_cpu_seconds"],
            "peak_mem_mb": self.counters["peak_mem_mb"],
        }

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    def made(self) -> dict:
        """How the summary was made, as every summary class takes it: method, objective,
        parameterisation, stored_bytes, config, seed."""
        return {
            "method": self.method.name,
            "objective": self.objective.name,
            "parameterisation": self.param.name,
            "stored_bytes": self.param.stored_bytes(),
            "config": self.config_dict(),
            "seed": self.seed,
        }


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def dataset_name(data) -> str:
    """The name a method's per-dataset defaults are keyed by (graphs carry it as `name`)."""
    spec = getattr(data, "spec", None)
    return spec.name if spec is not None else data.name


def run(
    method: Method | str,
    data,
    ipc: int,
    config=None,
    options: RunOptions | None = None,
    *,
    overrides: dict | None = None,
    device: torch.device | str = "cpu",
    out_dir: str | Path | None = None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    evaluator: Callable[[object], float] | None = None,
):
    """Distil `data` with `method` at `ipc` examples per class; returns the summary.

    Args:
        method: a registered `Method`, or its name.
        data: the modality's data: a `datadistill.data.Dataset` (images), a graph
            (`datadistill.graph.data.load`), a `RecData` (`ipc` counts synthetic users) or a
            `TextData`.
        config: the method's typed config (`method.config(dataset, overrides)`); None gives
            the paper's defaults for this dataset with `overrides` applied.
        options: how the loop runs (seed, iterations, resume, ...); None: the defaults.
        overrides: the method's settings to change (`--set key=value`), typed by its config;
            only without `config`.
        out_dir: where the summary, checkpoint and metrics go; nothing is written if None.
        callbacks: called as cb(iteration, record) after every step (logging, drawing,
            tests that interrupt a run).
        evaluator: summary -> accuracy, called every `options.eval_every` iterations.
    """
    accel.tune_allocator()
    method = methods.get(method) if isinstance(method, str) else method
    options = options or RunOptions()
    kind = getattr(data, "modality", "image")  # images are `datadistill.data.Dataset`s
    if method.modality != kind:
        same = [n for n in methods.available() if methods.get(n).modality == kind]
        raise DistillError(
            f"'{method.name}' is a {method.modality} method, not {_a(kind)} one; {kind} methods: "
            f"{', '.join(same)}"
        )
    examples = method.examples(data) if method.examples else data
    if hasattr(examples, "class_counts"):  # graph presets check their own sizes
        check_ipc(examples, ipc)
    if config is None:
        config = method.config(dataset_name(data), overrides)
    elif overrides:
        raise DistillError("pass the method's settings in `config` or in `overrides`, not both")
    elif not isinstance(config, method.config_cls):
        raise DistillError(
            f"method '{method.name}' takes a {method.config_cls.__name__}, got "
            f"{type(config).__name__}; build it with methods.get('{method.name}').config(...)"
        )
    cfg = config
    if method.learnt and options.iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=options.iterations)
    device = torch.device(device)
    out = Path(out_dir) if out_dir is not None else None
    generator = torch.Generator().manual_seed(options.seed)

    if not method.learnt:
        with measure(device) as m:
            rows = method.select(cfg, data, ipc, generator, options.seed, device)
        summary = image_summary(
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
            run={"iterations": 0, "sec_per_iter": None, "seconds": m.seconds,
                 "cpu_seconds": m.cpu_seconds, "peak_mem_mb": m.peak_mem_mb},
        )  # fmt: skip
        if out is not None:
            summary.save(out / SUMMARY_FILE)
        return summary

    param, objective = method.build(cfg, data, ipc, generator)
    param = param.to(device)
    summarise = method.summarise or _image_summarise
    if method.stepper is not None:
        stepper = method.stepper(param, objective, cfg)
    else:
        stepper = ImageStepper(
            param,
            optimizer=cfg.optimizer,
            lr=cfg.lr_img,
            momentum=cfg.momentum,
            schedule=cfg.lr_schedule,
            iterations=cfg.iterations,
        )

    def summarise_now(counters: dict):
        return summarise(RunState(method, cfg, data, ipc, options.seed, param, objective, counters))

    if device.type != "cpu" and hasattr(examples, "to"):
        examples = examples.to(device)
    return loop.optimise(
        param=param,
        objective=objective,
        data=examples,
        generator=generator,
        stepper=stepper,
        iterations=cfg.iterations,
        summarise=summarise_now,
        options=options,
        describe=f"{method.name} {dataset_name(data)} ipc{ipc}",
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
    rate cannot follow (see experiments/results/meta_curves_fmnist.png). The rate is constant,
    as in those codes, or annealed by a cosine over the run (`lr_schedule=cosine`), a choice
    for validation searches of how fast a method gets to its accuracy."""

    OPTIMIZERS = ("sgd", "adam")
    SCHEDULES = ("constant", "cosine")

    def __init__(
        self,
        param: torch.nn.Module,
        *,
        lr: float,
        momentum: float,
        optimizer="sgd",
        schedule="constant",
        iterations: int = 1,
    ):
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
        if schedule not in self.SCHEDULES:
            raise DistillError(
                f"unknown lr_schedule '{schedule}'; use one of {', '.join(self.SCHEDULES)} "
                "(--set lr_schedule=cosine)"
            )
        # cosine: every group's rate (learnt labels' too) falls to 0 at the last iteration
        self.sched = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(iterations, 1))
            if schedule == "cosine"
            else None
        )

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self, it: int) -> dict:
        self.opt.step()
        if self.sched is None:
            return {}
        self.sched.step()
        return {"lr_img": self.opt.param_groups[0]["lr"]}

    def divergence_fix(self) -> str:
        return (
            f"lower the learning rate (--set lr_img={self.lr / 10:g}) or check the data for NaN/inf"
        )

    def state_dict(self) -> dict:
        sched = {"sched": self.sched.state_dict()} if self.sched is not None else {}
        return {"opt": self.opt.state_dict(), **sched}

    def load_state_dict(self, blob: dict) -> None:
        self.opt.load_state_dict(blob["opt"])
        if self.sched is not None:
            saved, now = blob["sched"]["T_max"], self.sched.T_max
            if saved != now:  # the annealing would restart its curve part-way
                raise DistillError(
                    f"this run's cosine schedule spans {saved} iterations, not {now}; resume it "
                    f"with --iterations {saved}, or start a new run folder for {now}"
                )
            self.sched.load_state_dict(blob["sched"])


def _image_summarise(state: RunState) -> Summary:
    x, y = state.param.materialize()
    return image_summary(
        state.method,
        state.config,
        state.data,
        state.ipc,
        state.seed,
        x.cpu(),
        y.cpu(),
        state.param,
        objective=state.objective.name,
        objective_extra=state.objective.summary_extra(),
        run=state.run_info(),
    )


def image_summary(
    method, cfg, data, ipc, seed, x, y, param, *, objective, objective_extra, run
) -> Summary:
    """The image `Summary` of a run (`param` None for a selection of real rows)."""
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
            "run": run,
        },
        params={
            k: v.detach().cpu() for k, v in (param.tensors() if param is not None else {}).items()
        },
    )
