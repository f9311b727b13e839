"""One benchmark cell: distil (or select) -> save -> evaluate -> result rows. Resumable.

Experiments, the demo and sweeps are lists of cells. A cell whose rows are already in
the results file is skipped; a learnt summary whose run was interrupted resumes from its
checkpoint. So killing a benchmark and starting it again loses no finished work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from datadistill import evidence, methods
from datadistill.data import Dataset
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.evaluate import EvalConfig, evaluate
from datadistill.loop import SUMMARY_FILE, RunOptions
from datadistill.plots import summary_grid
from datadistill.results import append_rows, load_rows
from datadistill.summary import Summary


@dataclass(frozen=True)
class Cell:
    method: str
    ipc: int
    iterations: int | None = None  # None: the method's default
    seed: int = 0
    overrides: tuple[tuple[str, str], ...] = ()
    variant: str | None = None  # tells apart cells of one method that differ in `overrides`
    budget: float | None = None  # seconds of distillation steps in all; see `run_cell`
    budget_clock: str = "wall"  # what the budget counts (`datadistill.loop.RunOptions`)
    budget_stops: tuple[float, ...] = ()  # smaller budgets answered on the way (same run)

    def folder(self, data: Dataset) -> str:
        name = f"{self.method}-{data.spec.name}-ipc{self.ipc}-s{self.seed}"
        name = f"{name}-{self.variant}" if self.variant else name
        if self.budget is None:
            return name
        return f"{name}-budget{self.budget:g}{'cpu' if self.budget_clock == 'cpu' else ''}s"

    def budget_fields(self) -> dict:
        """What a row of this cell records of its budget (nothing without one)."""
        if self.budget is None:
            return {}
        return {"budget_seconds": self.budget, "budget_clock": self.budget_clock}


def at_each_budget(cell: Cell) -> list[Cell]:
    """The cell at each of its budget stops, smallest first, then the cell itself."""
    stops = sorted(cell.budget_stops)
    return [replace(cell, budget=b, budget_stops=()) for b in stops] + [cell]


HARD_LABELS = "hard-labels"  # the variant of rows trained on the argmax of learnt labels


def row_variant(cell: Cell, config: EvalConfig) -> str | None:
    """What tells a row of `cell` under `config` apart: the cell's variant, and whether its
    learnt labels were replaced by hard ones."""
    parts = [p for p in (cell.variant, HARD_LABELS if config.hard_labels else None) if p]
    return ",".join(parts) or None


def done_rows(results: Path, data: Dataset, cell: Cell, config: EvalConfig) -> list[dict]:
    """Rows of `results` that already answer this cell (same method, IPC, seed, eval setup)."""
    rows = []
    for r in load_rows(results):
        if (
            r["method"],
            r["dataset"],
            r["ipc"],
            r.get("seed"),
            r.get("eval_epochs"),
            r.get("eval_max_steps"),
            r["runs"],
            r.get("variant"),
        ) != (
            cell.method,
            data.spec.name,
            cell.ipc,
            cell.seed,
            config.train.epochs,
            config.train.max_steps,
            config.runs,
            row_variant(cell, config),
        ) or r["arch"] not in config.archs:
            continue
        if r.get("budget_seconds") != cell.budget:
            continue
        if cell.budget is not None and r.get("budget_clock") != cell.budget_clock:
            continue
        if cell.budget is None and methods.get(cell.method).learnt and cell.iterations is not None:
            if r["iterations"] != cell.iterations:
                continue
        rows.append(r)
    return rows if len(rows) == len(config.archs) else []


def budget_spent(summary: Summary, clock: str) -> float:
    """Seconds of distillation steps a saved summary spent on `clock` (wall or cpu)."""
    run_info = summary.extra.get("run", {})  # a coreset's selection has no steps
    return run_info.get("cpu_seconds" if clock == "cpu" else "seconds", 0.0)


def run_cell(
    cell: Cell,
    data: Dataset,
    *,
    config: EvalConfig,
    results: Path,
    runs_dir: Path,
    device: torch.device,
    time_limit: float | None = None,
    progress: bool = True,
    evaluate_partial: bool = False,
) -> list[dict]:
    """Produce (or reuse) the summary of `cell`, evaluate it, append its rows to `results`;
    each row cites the immutable copy of the summary it evaluated (`datadistill.evidence`).

    A run stopped by `time_limit` is left to resume, unevaluated; with `evaluate_partial`
    it is evaluated as it stands (its rows record the iterations reached, so a later call
    that reaches `cell.iterations` adds a row instead of hiding this one). A cell with a
    `budget` (seconds of distillation steps in all, across resumes) stops there and is
    evaluated as it stands: an equal-compute comparison; its rows record `budget_seconds`
    and `budget_clock`. Its `budget_stops` are smaller budgets answered by the same run:
    the loop keeps the summary as each is spent, and each gets its own rows.
    """
    budget = cell.budget
    *stops, _ = at_each_budget(cell)
    answered = [done_rows(results, data, stop, config) for stop in stops]
    existing = done_rows(results, data, cell, config)
    if existing and all(answered):
        return [r for rows in answered for r in rows] + existing
    out = runs_dir / cell.folder(data)
    path = out / SUMMARY_FILE
    summary = Summary.load(path) if path.exists() else None
    finished = summary is not None and (
        not methods.get(cell.method).learnt
        or cell.iterations is None
        or summary.extra["run"]["iterations"] >= cell.iterations
        or (budget is not None and budget_spent(summary, cell.budget_clock) >= budget)
    )
    if not finished:
        options = RunOptions(
            seed=cell.seed,
            iterations=cell.iterations,
            resume=True,
            time_limit=time_limit,
            budget=budget,
            budget_clock=cell.budget_clock,
            budget_stops=cell.budget_stops,
            progress=progress,
        )
        summary = run(
            cell.method,
            data,
            cell.ipc,
            options=options,
            overrides=dict(cell.overrides),
            device=device,
            out_dir=out,
        )
        summary_grid(summary, out / "grid.png")
        short = summary.extra["run"]["iterations"] < (cell.iterations or 0) and (
            budget is None or budget_spent(summary, cell.budget_clock) < budget
        )
        if short and not evaluate_partial:
            return []  # stopped by the time limit; the next call resumes it
    kept = evidence.keep(path, summary.extra.get("run", {}).get("iterations", 0))
    rows = []
    for stop, done in zip(stops, answered, strict=True):
        if done:
            rows += done
            continue
        at_stop = out / evidence.budget_name(stop.budget, cell.budget_clock)
        if budget_spent(summary, cell.budget_clock) < stop.budget:
            at_stop = kept  # the run ended before it: what a run of that budget would make
        elif not at_stop.exists():
            raise DistillError(
                f"{out} ran past {stop.budget:g} {cell.budget_clock} seconds without keeping "
                "its summary there; delete the folder to distil the cell again with its stops"
            )
        stop_summary = Summary.load(at_stop)
        rows += evaluated(stop, stop_summary, at_stop, data, config, results, device, progress)
    return rows + (
        existing or evaluated(cell, summary, kept, data, config, results, device, progress)
    )


def evaluated(
    cell: Cell,
    summary: Summary,
    kept: Path,
    data: Dataset,
    config: EvalConfig,
    results: Path,
    device: torch.device,
    progress: bool,
) -> list[dict]:
    """Evaluate `summary` (kept at `kept`) for `cell`; its rows, appended to `results`, cite
    the kept file (`datadistill.evidence`) and record the cell's variant and budget."""
    rows = evaluate(summary, data, config=config, device=device, progress=progress)
    cited = {"summary": str(kept)}
    if row_variant(cell, config):
        cited["variant"] = row_variant(cell, config)
    rows = [{**r, **cited, **cell.budget_fields()} for r in rows]
    append_rows(results, rows)  # with the cited file's sha256 (datadistill.evidence.with_hash)
    return rows
