"""The one outer loop: init -> step -> log, checkpoint, resume -> Summary.

Every learnt method runs through `run`; it owns the optimiser, seeds, progress bar, JSONL
metrics, checkpoints, the wall-clock budget and periodic evaluation, so objectives stay
pure functions of (parameterisation, data, generator). All randomness flows from one
`torch.Generator` whose state is checkpointed, so a run stopped and resumed produces the
same summary, bit for bit on one device, as a run that never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from core import accel, methods
from core.data import Dataset
from core.errors import DistillError
from core.profile import measure
from core.summary import Summary

SUMMARY_FILE = "summary.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DistillError(f"device '{name}' asked for but CUDA is not available; use --device cpu")
    return torch.device(name)


@dataclass(frozen=True)
class RunOptions:
    """How the outer loop runs (not what it optimises: that is the method's config)."""

    seed: int = 0
    iterations: int | None = None  # None: the method's default
    checkpoint_every: int = 100
    time_limit: float | None = None  # seconds of optimisation before stopping cleanly
    eval_every: int = 0  # 0: never; needs `evaluator`
    resume: bool = False
    progress: bool = True


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
    data_dev = data.to(device) if device.type != "cpu" else data
    opt = torch.optim.SGD(param.param_groups(), lr=cfg.lr_img, momentum=cfg.momentum)
    state = {"iteration": 0, "step_seconds": 0.0, "peak_mem_mb": 0.0}
    if options.resume and out is not None and (out / CHECKPOINT_FILE).exists():
        state = _load_checkpoint(out / CHECKPOINT_FILE, param, opt, objective, generator, device)

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    log = open(out / METRICS_FILE, "a") if out is not None else None
    started = time.monotonic()
    bar = tqdm(
        total=cfg.iterations,
        initial=state["iteration"],
        disable=not options.progress,
        desc=f"{method.name} {data.spec.name} ipc{ipc}",
        dynamic_ncols=True,
    )
    try:
        for it in range(state["iteration"], cfg.iterations):
            if not objective.can_step():
                break
            with measure(device) as m:
                loss = objective.loss(param, data_dev, generator, it)
                if not torch.isfinite(loss):
                    raise DistillError(
                        f"loss became {float(loss.detach())} at iteration {it}; lower the "
                        f"learning rate (--set lr_img={cfg.lr_img / 10:g}) or check the data "
                        "for NaN/inf"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            state["iteration"] = it + 1
            state["step_seconds"] += m.seconds
            state["peak_mem_mb"] = max(state["peak_mem_mb"], m.peak_mem_mb)
            record = {"iteration": it + 1, "loss": float(loss.detach()), "sec": m.seconds}
            if evaluator is not None and options.eval_every and (it + 1) % options.eval_every == 0:
                record["acc"] = evaluator(
                    current(method, cfg, data, ipc, options.seed, param, objective, state)
                )
            if log is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.update(1)
            bar.set_postfix(
                loss=f"{record['loss']:.4g}", **({"acc": record["acc"]} if "acc" in record else {})
            )
            done = it + 1 == cfg.iterations
            out_of_time = (
                options.time_limit is not None and time.monotonic() - started > options.time_limit
            )
            if out is not None and (
                done or out_of_time or (it + 1) % options.checkpoint_every == 0
            ):
                _save_checkpoint(out / CHECKPOINT_FILE, param, opt, objective, generator, state)
            for cb in callbacks:
                cb(it + 1, record)
            if out_of_time:
                break
    finally:
        bar.close()
        if log is not None:
            log.close()
    summary = current(method, cfg, data, ipc, options.seed, param, objective, state)
    if out is not None:
        summary.save(out / SUMMARY_FILE)
    return summary


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


def _save_checkpoint(path: Path, param, opt, objective, generator, state) -> None:
    blob = {
        "param": param.state_dict(),
        "opt": opt.state_dict(),
        "objective": objective.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "state": dict(state),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, param, opt, objective, generator, device) -> dict:
    try:
        # on the CPU: RNG states must stay there; modules and optimisers copy to their device
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise DistillError(
            f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to start afresh"
        ) from e
    param.load_state_dict(blob["param"])
    opt.load_state_dict(blob["opt"])
    objective.load_state_dict(blob["objective"])
    generator.set_state(blob["generator"])
    torch.set_rng_state(blob["torch_rng"])
    return blob["state"]
