"""`distill sweep`: run a sweep's cells in parallel through Ray, resumable at every cell.

Each cell is one `datadistill.bench.cells.run_cell` (distil or select -> save -> evaluate -> append
rows). Rows are appended atomically the moment a cell finishes, so killing a sweep loses
only the cells in flight; starting it again skips every cell whose rows are in the results
(`datadistill.bench.cells.done_rows`) and resumes interrupted distillations from their checkpoints.

Ray runs the cells as tasks: on this machine (`ray.init(num_cpus=workers)`, torch using
cpus / workers threads in each) or on a running cluster (`address`). Rows always travel
back to the driver, which writes them too, so a cluster whose nodes do not share a disk
still fills the driver's results file. `workers=0` runs the cells in this process, one
after another, without Ray (debugging, tests).
"""

from __future__ import annotations

import functools
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from datadistill import data as datasets
from datadistill import methods
from datadistill.bench.cells import at_each_budget, done_rows, run_cell
from datadistill.bench.config import SweepCell, SweepConfig
from datadistill.distill import resolve_device
from datadistill.errors import DistillError
from datadistill.experts import ExpertBank, ExpertConfig, train_experts
from datadistill.results import append_rows, command_line, set_command_line

Log = Callable[[str], None]


@dataclass(frozen=True)
class ExpertJob:
    """Expert trajectories that trajectory-matching cells need and that do not exist yet."""

    dataset: str
    folder: str
    config: ExpertConfig


@dataclass
class SweepOutcome:
    """What a sweep did: cells finished now, already done before, stopped, failed."""

    total: int = 0
    skipped: int = 0
    finished: list[tuple[SweepCell, list[dict], float]] = field(default_factory=list)
    stopped: list[SweepCell] = field(default_factory=list)  # by the time limit: resumable
    failed: list[tuple[SweepCell, str]] = field(default_factory=list)
    pending: list[SweepCell] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def _dataset(name: str) -> datasets.Dataset:
    """Each process (driver or Ray worker) reads a dataset once."""
    return datasets.load(name)


def pending_cells(config: SweepConfig) -> tuple[list[SweepCell], int]:
    """(cells still to run, number already in the results) of the sweep."""
    cells = config.cells()
    todo = [c for c in cells if not is_done(c)]
    return todo, len(cells) - len(todo)


def is_done(task: SweepCell) -> bool:
    """Every evaluation of the cell has its rows in the results file."""
    data = _dataset(task.dataset)
    cells = at_each_budget(task.cell)
    return all(done_rows(task.results, data, cell, ev) for ev in task.evals for cell in cells)


def expert_jobs(config: SweepConfig, cells: list[SweepCell]) -> list[ExpertJob]:
    """The expert folders the pending trajectory-matching cells need but cannot read yet."""
    from datadistill.methods.trajectory import MTTConfig, expert_needs

    needs: dict[tuple[str, str], tuple[str, dict, int]] = {}
    for c in cells:
        cfg = methods.get(c.cell.method).config(c.dataset, dict(c.cell.overrides))
        if not isinstance(cfg, MTTConfig):
            continue
        folder, net_config, epochs = expert_needs(cfg, c.dataset, c.cell.ipc)
        key = (c.dataset, str(folder))
        before = needs.get(key, (cfg.arch, net_config, 0))
        needs[key] = (cfg.arch, net_config, max(epochs, before[2]))
    jobs = []
    for (dataset, folder), (arch, net_config, epochs) in sorted(needs.items()):
        try:
            bank = ExpertBank(folder)
            if bank.epochs >= epochs:
                continue
        except DistillError:
            pass  # missing or incomplete: train (train_experts keeps the finished files)
        expert = ExpertConfig(
            num=config.experts.num,
            epochs=max(config.experts.epochs, epochs),
            arch=arch,
            net_config=net_config,
        )
        jobs.append(ExpertJob(dataset, folder, expert))
    return jobs


def run_expert(job: ExpertJob, index: int, *, device: str, threads: int, env: dict) -> int:
    """Train expert `index` of `job` (skipped when its file exists)."""
    _setup(threads, env)
    train_experts(
        _dataset(job.dataset),
        config=job.config,
        folder=job.folder,
        device=resolve_device(device),
        progress=False,
        only=[index],
    )
    return index


def run_one(
    task: SweepCell,
    *,
    device: str,
    threads: int,
    env: dict,
    time_limit: float | None,
    command: str,
) -> tuple[list[dict], float]:
    """One cell, in whichever process runs it; returns (rows, seconds)."""
    _setup(threads, env)
    set_command_line(command)  # rows record the sweep's command, not Ray's worker
    start = time.monotonic()
    rows = []
    for ev in task.evals:  # the first distils (or resumes); the next ones reuse the summary
        got = run_cell(
            task.cell,
            _dataset(task.dataset),
            config=ev,
            results=task.results,
            runs_dir=task.runs_dir,
            device=resolve_device(device),
            time_limit=time_limit,
            progress=False,
        )
        if not got:
            return [], time.monotonic() - start  # stopped by the time limit: resumes later
        rows += got
    return rows, time.monotonic() - start


def _setup(threads: int, env: dict) -> None:
    os.environ.update(env)
    torch.set_num_threads(threads)


def run_sweep(
    config: SweepConfig,
    *,
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
    gpus_per_task: float | None = None,
    dry_run: bool = False,
    log: Log = print,
) -> SweepOutcome:
    """Run every missing cell of `config`; see the module docstring.

    Args:
        workers: parallel cells on this machine (default: its CPU count); 0: no Ray, serial.
        address: a running Ray cluster's address (`ray start --head` prints it).
        threads: torch threads per cell (default: CPUs / workers here, 1 on a cluster).
        gpus_per_task: GPUs Ray gives each cell (default: 1 / workers when the sweep's
            device is CUDA here, else 0).
        dry_run: list the cells to run and do nothing else.
    """
    cpus = os.cpu_count() or 1
    workers = cpus if workers is None else workers
    if workers < 0:
        raise DistillError("--workers must be 0 (no Ray) or more")
    if threads is None:
        threads = 1 if address else max(1, cpus // max(workers, 1))
    device = config.device
    if gpus_per_task is None:
        on_gpu = device != "cpu" and torch.cuda.is_available() and not address
        gpus_per_task = 1 / max(workers, 1) if on_gpu else 0
    todo, skipped = pending_cells(config)
    outcome = SweepOutcome(total=len(todo) + skipped, skipped=skipped, pending=todo)
    log(f"sweep {config.name}: {outcome.total} cells, {skipped} already done, {len(todo)} to run")
    if dry_run:
        for c in todo:
            it = c.cell.iterations if c.cell.iterations is not None else "default"
            evals = "; ".join(f"{','.join(e.archs)} x{e.runs} {e.train.epochs} ep" for e in c.evals)
            budgets = ", ".join(f"{b.budget:g}" for b in at_each_budget(c.cell))
            clock = f"; budget {budgets} {c.cell.budget_clock} s" if c.cell.budget else ""
            log(f"  {c.label()}: iterations {it}{clock}; eval {evals} -> {c.results}")
        return outcome
    if not todo:
        return outcome
    jobs = expert_jobs(config, todo)
    env = dict(config.env)
    common = {"device": device, "threads": threads, "env": env}
    if workers == 0 and not address:
        _serial(config, todo, jobs, outcome, common, log)
    else:
        _on_ray(config, todo, jobs, outcome, common, workers, address, gpus_per_task, log)
    log(
        f"sweep {config.name}: {len(outcome.finished)} finished, {skipped} were done, "
        f"{len(outcome.stopped)} stopped at the time limit, {len(outcome.failed)} failed"
        + ("; run the same command again to resume" if outcome.stopped or outcome.failed else "")
    )
    return outcome


def _serial(config, todo, jobs, outcome, common, log) -> None:
    for job in jobs:
        log(f"experts: {job.config.num} x {job.config.epochs} epochs into {job.folder}")
        for i in range(job.config.num):
            run_expert(job, i, **common)
    for n, task in enumerate(todo, 1):
        try:
            rows, seconds = run_one(
                task, **common, time_limit=config.time_limit, command=command_line()
            )
        except Exception as e:  # a failed cell is reported; the others still run
            _record(outcome, task, None, 0.0, f"{type(e).__name__}: {e}", len(todo) - n, log)
            log(traceback.format_exc().rstrip())
            continue
        _record(outcome, task, rows, seconds, None, len(todo) - n, log)


def _on_ray(config, todo, jobs, outcome, common, workers, address, gpus, log) -> None:
    import ray

    env = {**common["env"], "OMP_NUM_THREADS": str(common["threads"])}
    env["MKL_NUM_THREADS"] = env["OMP_NUM_THREADS"]
    runtime_env = {"env_vars": env}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(
            num_cpus=workers * common["threads"],
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=runtime_env,
        )
    try:
        opts = {"num_cpus": common["threads"], "num_gpus": gpus, "max_retries": 0}
        if jobs:
            expert = ray.remote(run_expert).options(**opts)
            refs = [expert.remote(j, i, **common) for j in jobs for i in range(j.config.num)]
            for j in jobs:
                log(f"experts: {j.config.num} x {j.config.epochs} epochs into {j.folder}")
            ray.get(refs)
        cell = ray.remote(run_one).options(**opts)
        command = command_line()
        refs = {
            cell.remote(t, **common, time_limit=config.time_limit, command=command): t for t in todo
        }
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            task = refs.pop(ready[0])
            try:
                rows, seconds = ray.get(ready[0])
            except ray.exceptions.RayError as e:
                _record(outcome, task, None, 0.0, _ray_message(e), len(refs), log)
                continue
            if rows:  # written by the task already; again here for nodes without a shared disk
                append_rows(task.results, rows)
            _record(outcome, task, rows, seconds, None, len(refs), log)
    finally:
        ray.shutdown()


def _ray_message(e: Exception) -> str:
    cause = getattr(e, "cause", None)
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(e).splitlines()[0]


def _record(outcome, task, rows, seconds, error, left, log) -> None:
    if error is not None:
        outcome.failed.append((task, error))
        log(f"FAILED {task.label()}: {error} ({left} left)")
    elif not rows:
        outcome.stopped.append(task)
        log(f"stopped {task.label()} at the time limit after {seconds:.0f} s ({left} left)")
    else:
        outcome.finished.append((task, rows, seconds))
        first = rows[0]
        accs = ", ".join(
            f"{r['arch']} {100 * r['acc_mean']:.1f}±{100 * r['acc_std']:.1f}" for r in rows
        )
        log(
            f"done {task.label()} ({first['iterations']} it): {accs} % "
            f"in {seconds:.0f} s ({left} left)"
        )
