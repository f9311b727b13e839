"""The one outer loop, for every modality: step -> log, checkpoint, resume -> summary.

Every modality comes here through the front door (`datadistill.distill.run`); methods differ
in two things only: how the summary's optimiser(s) step (one SGD; Adam per group, alternating
and decaying for graphs) and what summary the parameters make. Both come in as pieces (a
`Stepper`, a `summarise` hook), so progress, JSONL metrics, the NaN check, checkpoints, the
compute budget and timings exist once. All randomness flows from one `torch.Generator`
whose state is checkpointed, so a stopped and resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from datadistill import atomic, checkpoint, evidence
from datadistill.errors import DistillError, DivergenceWarning
from datadistill.profile import measure

SUMMARY_FILE = "summary.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"
RUNAWAY = 1e3  # |value| no normalised image set reaches (real pixels lie within about +-5)
LONG_RUN = 600.0  # seconds: a projected run longer than this gets a one-line estimate
TIMED_STEPS = 4  # steps measured for the estimate (the first, which warms up, is left out)
TIMED_SECONDS = 20.0  # or fewer steps, when they are this slow
BUDGET_CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class RunOptions:
    """How the outer loop runs (not what it optimises: that is the method's config)."""

    seed: int = 0
    iterations: int | None = None  # None: the method's default
    checkpoint_every: int = 100
    time_limit: float | None = None  # seconds of optimisation before stopping cleanly
    budget: float | None = None  # seconds of steps in all, across resumes (equal-compute runs)
    # what `budget` counts: "wall" seconds, or this process's "cpu" seconds, which other
    # work sharing the cores does not eat into (one thread's are an idle core's wall seconds)
    budget_clock: str = "wall"
    # earlier budgets on the way to `budget`: the summary is kept when each is spent, so one
    # run answers several budgets (a stop is what a run of that budget alone would have made)
    budget_stops: tuple[float, ...] = ()
    eval_every: int = 0  # 0: never; needs `evaluator`
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        """Refuse impossible settings here, below every front door (CLI, sweeps, apps), before
        anything is written."""
        checks = (
            ("--iterations", self.iterations, self.iterations is None or self.iterations >= 0,
             ">= 0 (0 saves the initial summary)"),
            ("--checkpoint-every", self.checkpoint_every, self.checkpoint_every >= 1, ">= 1"),
            ("--time-limit", self.time_limit, self.time_limit is None or self.time_limit >= 0,
             ">= 0 seconds"),
            ("--eval-every", self.eval_every, self.eval_every >= 0, ">= 0 (0: never)"),
            ("budget", self.budget, self.budget is None or self.budget > 0, "> 0 seconds"),
        )  # fmt: skip
        for flag, value, ok, want in checks:
            if not ok:
                raise DistillError(f"{flag} must be {want}, got {value}; pass e.g. {flag} 100")
        if self.budget_clock not in BUDGET_CLOCKS:
            raise DistillError(
                f"budget_clock must be one of {', '.join(BUDGET_CLOCKS)}, got "
                f"'{self.budget_clock}'; use cpu to count this process's CPU seconds"
            )
        if self.budget_stops and not (
            self.budget is not None and all(0 < s < self.budget for s in self.budget_stops)
        ):
            raise DistillError(
                f"budget stops {list(self.budget_stops)} need a budget above each of them, got "
                f"{self.budget}; give budget the largest number of seconds"
            )


class Stepper:
    """Owns the summary's optimiser(s): the one thing methods' outer loops really differ in."""

    def zero_grad(self) -> None:
        raise NotImplementedError

    def step(self, it: int) -> dict:
        """Step after iteration `it`'s backward pass; returns fields for its metrics line."""
        raise NotImplementedError

    def divergence_fix(self) -> str:
        """What to tell a user whose loss became NaN/inf (which learning rates to lower)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Checkpoint entries (top-level keys of the checkpoint file)."""
        raise NotImplementedError

    def load_state_dict(self, blob: dict) -> None:
        """Restore from the whole checkpoint `blob` (reads the keys `state_dict` wrote)."""
        raise NotImplementedError


def optimise(
    *,
    param: torch.nn.Module,
    objective,
    data,
    generator: torch.Generator,
    stepper: Stepper,
    iterations: int,
    summarise: Callable[[dict], object],
    options: RunOptions,
    describe: str,
    device: torch.device,
    out: Path | None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    evaluator: Callable[[object], float] | None = None,
):
    """Run `objective` on `param` up to `iterations` steps and return (and save) its summary.

    Args:
        data: what `objective.loss` reads, already on `device`.
        summarise: counters -> the current summary (with `save(path)`); counters are
            iteration, step_seconds, step_cpu_seconds and peak_mem_mb.
        describe: the progress bar's label.
        out: the run folder for the summary, checkpoint and metrics; None writes nothing.
        callbacks: cb(iteration, record) after every step (logging, tests that interrupt).
        evaluator: summary -> accuracy, every `options.eval_every` iterations.
    """
    if options.budget_clock == "cpu" and device.type != "cpu":
        raise DistillError(
            f"budget_clock cpu counts CPU seconds, which miss the work of {device.type}; "
            "use budget_clock wall on an accelerator"
        )
    state = {"iteration": 0, "step_seconds": 0.0, "step_cpu_seconds": 0.0, "peak_mem_mb": 0.0}
    pieces = dict(param=param, stepper=stepper, objective=objective, generator=generator)
    if options.resume and out is not None:
        checkpoint.refuse_pickled(out, CHECKPOINT_FILE)
        if (out / CHECKPOINT_FILE).exists():
            # a checkpoint written before CPU time was counted: its wall seconds bound it
            state = {"step_cpu_seconds": None} | checkpoint.load(out / CHECKPOINT_FILE, **pieces)
            if state["step_cpu_seconds"] is None:
                state["step_cpu_seconds"] = state["step_seconds"]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        keep_metrics_upto(out, state["iteration"])
    log = open(out / METRICS_FILE, "a") if out is not None else None
    started = time.monotonic()
    estimate = Estimate(state["iteration"], iterations, options)
    bar = tqdm(total=iterations, initial=state["iteration"], disable=not options.progress,
               desc=describe, dynamic_ncols=True)  # fmt: skip
    try:
        for it in range(state["iteration"], iterations):
            if not objective.can_step():
                break
            one_off = objective.one_off_steps(it)
            with measure(device) as m:
                loss = objective.loss(param, data, generator, it)
                if not torch.isfinite(loss):
                    raise DistillError(
                        f"loss became {float(loss.detach())} at iteration {it}; "
                        + stepper.divergence_fix()
                    )
                stepper.zero_grad()
                loss.backward()
                extra = stepper.step(it)
            before = spent(state, options.budget_clock)
            state["iteration"] = it + 1
            state["step_seconds"] += m.seconds
            state["step_cpu_seconds"] += m.cpu_seconds
            estimate.step(it, m.seconds, one_off)
            state["peak_mem_mb"] = max(state["peak_mem_mb"], m.peak_mem_mb)
            now = spent(state, options.budget_clock)
            record = {"iteration": it + 1, "loss": float(loss.detach()), "sec": m.seconds, **extra}
            if evaluator is not None and options.eval_every and (it + 1) % options.eval_every == 0:
                record["acc"] = evaluator(summarise(state))
            if log is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.update(1)
            shown = {"acc": record["acc"]} if "acc" in record else {}
            bar.set_postfix(loss=f"{record['loss']:.4g}", **shown)
            out_of_time = (
                options.time_limit is not None and time.monotonic() - started > options.time_limit
            ) or (options.budget is not None and now >= options.budget)
            crossed = [s for s in options.budget_stops if before < s <= now]
            if out is not None and crossed:  # kept before the checkpoint that passes them
                summarise(state).save(out / SUMMARY_FILE)
                latest = (out / SUMMARY_FILE).read_bytes()
                for stop in crossed:
                    evidence.keep_as(out / evidence.budget_name(stop, options.budget_clock), latest)
            if out is not None and (
                it + 1 == iterations or out_of_time or (it + 1) % options.checkpoint_every == 0
            ):
                checkpoint.save(out / CHECKPOINT_FILE, **pieces, state=state)
            for cb in callbacks:
                cb(it + 1, record)
            if out_of_time:
                break
    finally:
        bar.close()
        if log is not None:
            log.close()
    summary = summarise(state)
    if out is not None:
        summary.save(out / SUMMARY_FILE)
        evidence.keep(out / SUMMARY_FILE, state["iteration"])  # rows cite it: never replaced
    warn_if_runaway(summary, stepper)
    return summary


def spent(counters: dict, clock: str) -> float:
    """Seconds of steps so far on `clock` ("wall" or "cpu"; see `RunOptions.budget_clock`)."""
    return counters["step_cpu_seconds" if clock == "cpu" else "step_seconds"]


class Estimate:
    """One line before a long run goes on: its projected time and how to shorten it.

    Defaults come from the papers, sized for a GPU; on a laptop they can take hours, which
    a newcomer should learn in the first seconds rather than from a progress bar's ETA. The
    first step (warm-up: compilation, caches) is left out of the timing, and so are the
    objective's one-off steps (filling a pool), unless the whole run is made of them."""

    def __init__(self, first: int, iterations: int, options: RunOptions) -> None:
        self.first, self.iterations, self.options = first, iterations, options
        self.started = time.monotonic()
        self.timed = 0.0
        self.steps = 0
        self.done = False

    def step(self, it: int, seconds: float, one_off: int = 0) -> None:
        """Time step `it`; `one_off`: the objective's one-off steps from `it` on."""
        if self.done or it == self.first:
            return
        left = self.iterations - it - 1
        if 0 < one_off <= left:  # steadier steps follow: time those
            return
        self.timed += seconds
        self.steps += 1
        if self.steps >= TIMED_STEPS or self.timed > TIMED_SECONDS:
            self.done = True
            self.report(self.timed / self.steps, left)

    def report(self, per_step: float, left: int) -> None:
        seconds = per_step * left
        if self.options.budget is not None:  # an equal-compute run stops there, not at `left`
            seconds = min(seconds, self.options.budget)
        if self.options.time_limit is not None:
            spent = time.monotonic() - self.started
            seconds = min(seconds, max(self.options.time_limit - spent, 0.0))
        if seconds <= LONG_RUN:
            return
        fits = max(int(LONG_RUN / per_step), 1) if per_step > 0 else left
        tqdm.write(
            f"about {duration(seconds)} on this machine; --iterations {fits} or --time-limit "
            f"{int(LONG_RUN)} to shorten",
            file=sys.stderr,
        )


def duration(seconds: float) -> str:
    """`2 h 50 min`, `12 min`."""
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def run_metrics(folder: str | Path) -> list[dict]:
    """A run folder's metrics (one record per iteration); [] when it has none."""
    path = Path(folder) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def keep_metrics_upto(folder: Path, iteration: int) -> None:
    """Drop the metric records of iterations after `iteration` (all of them on a fresh start).

    They belong to steps that will run again: a run that crashed after its last checkpoint,
    or an earlier run in the same folder started afresh. Kept, they would draw two curves
    in one file."""
    records = run_metrics(folder)
    kept = [r for r in records if r.get("iteration", 0) <= iteration]
    if len(kept) < len(records):
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic.write_bytes(folder / METRICS_FILE, text.encode())


def runaway_peak(summary) -> float | None:
    """The summary's largest |value| when it ran away past RUNAWAY, else None."""
    values = getattr(summary, "images", None)
    if not isinstance(values, torch.Tensor) or not values.is_floating_point() or not values.numel():
        return None
    peak = float(values.detach().abs().max())
    return peak if peak > RUNAWAY else None


def warn_if_runaway(summary, stepper: Stepper) -> None:
    """Warn when the summary's values ran away without becoming NaN.

    Multiplicative parameterisations (hallucinators, decoders) can compound a too-large
    step into pixels of ~1e5 while the loss stays finite, most easily under an objective
    blind to an image's scale (DM's embedder starts with instance norm): a ConvNet, whose
    instance norm removes the scale too, still trains on such a summary, but a network
    without normalisation (MLP, LeNet) stays at chance, and nothing else would say why."""
    peak = runaway_peak(summary)
    if peak is not None:
        warnings.warn(
            f"the summary's values reached |x| = {peak:.3g} (normalised data stays within "
            "about 5): the optimisation diverged and networks without normalisation layers "
            "are unlikely to train on it; "
            + stepper.divergence_fix()
            + " (factorised summaries have their own rates, e.g. lr_halluc, lr_decoder)",
            DivergenceWarning,
            stacklevel=2,
        )
