"""One stream in Avalanche's own loop: train on each experience, evaluate on all of them.

Accuracy and forgetting come from Avalanche's `EvaluationPlugin` (top-1 accuracy per
experience and on the stream, experience and stream forgetting); its loggers print or
write them. From the per-experience accuracies after each training experience we read
the curve the experiments plot: average accuracy over the experiences seen so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.logging import InteractiveLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin

from datadistill_apps.continual.bench import SplitBenchmark
from datadistill_apps.continual.memory import DistillMemoryConfig, keep, usage
from datadistill_apps.continual.strategies import StrategyConfig, build

ACC_EXP = "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{:03d}"
ACC_STREAM = "Top1_Acc_Stream/eval_phase/test_stream/Task000"
FORGETTING = "StreamForgetting/eval_phase/test_stream"


class TimeLimitReached(Exception):
    """The deadline passed between two experiences; the stream's finished distillations are
    on disk (when cached), its training is not, so a rerun starts this stream again."""


@dataclass
class StreamResult:
    """What one strategy did on one class order."""

    strategy: str
    memory: int
    seed: int
    order: list[int]
    acc_matrix: list[list[float]]  # [after experience i][on experience j]
    curve: list[float]  # average accuracy over experiences 0..i, after training on i
    final_acc: float  # Avalanche's stream accuracy on the whole test set at the end
    forgetting: float  # Avalanche's stream forgetting at the end
    buffer_sizes: list[dict] = field(default_factory=list)  # usage() after each experience
    stored_bytes: int = 0  # bytes the memory is charged for at the end
    seconds: float = 0.0
    memory_file: str | None = None  # the final memory, kept for rows to cite


def run_stream(
    bench: SplitBenchmark,
    *,
    strategy: str,
    memory: int,
    seed: int,
    config: StrategyConfig = StrategyConfig(),
    distill: DistillMemoryConfig = DistillMemoryConfig(),
    device: torch.device | str = "cpu",
    progress: bool = False,
    log_file: str | Path | None = None,
    deadline: float | None = None,
    memory_file: Path | None = None,
) -> StreamResult:
    """Train `strategy` through `bench`'s experiences with Avalanche and measure it.

    `deadline` (a `time.monotonic()` value) is checked before each experience; past it,
    `TimeLimitReached` is raised. `memory_file`: where the final memory is kept (a strategy
    that holds one), so the row can cite what the last model was trained with.
    """
    loggers = [InteractiveLogger()] if progress else []
    handle = open(log_file, "a") if log_file else None
    if handle:
        loggers.append(TextLogger(handle))
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        loggers=loggers,
    )
    from avalanche.training.determinism.rng_manager import RNGManager

    RNGManager.set_random_seeds(seed)  # Avalanche's data-loader shuffles draw from it
    built = build(
        strategy,
        spec=bench.data.spec,
        memory=memory,
        config=config,
        distill=distill,
        evaluator=evaluator,
        seed=seed,
        device=device,
    )
    started = time.monotonic()
    matrix, sizes, metrics = [], [], {}
    try:
        for exp in bench.scenario.train_stream:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeLimitReached(f"{strategy}, order {seed}")
            built.strategy.train(exp)
            metrics = built.strategy.eval(bench.scenario.test_stream)
            matrix.append([metrics[ACC_EXP.format(j)] for j in range(bench.num_experiences)])
            if built.buffer is not None:
                sizes.append(usage(built.buffer))
    finally:
        if handle:
            handle.close()
    curve = [sum(row[: i + 1]) / (i + 1) for i, row in enumerate(matrix)]
    stored = getattr(built.buffer, "stored_bytes", sizes[-1]["bytes"] if sizes else 0)
    kept = None
    if memory_file is not None and built.buffer is not None and sizes and sizes[-1]["images"]:
        kept = keep(
            built.buffer, Path(memory_file), spec=bench.data.spec, strategy=strategy,
            seed=seed, memory=memory,
        )  # fmt: skip
    return StreamResult(
        strategy=strategy,
        memory=memory,
        seed=seed,
        order=bench.order,
        acc_matrix=matrix,
        curve=curve,
        final_acc=float(metrics[ACC_STREAM]),
        forgetting=float(metrics.get(FORGETTING, 0.0)),
        buffer_sizes=sizes,
        stored_bytes=int(stored),
        seconds=time.monotonic() - started,
        memory_file=None if kept is None else str(kept),
    )
