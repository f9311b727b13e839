"""Class-incremental benchmarks built with Avalanche from this project's datasets.

Split-digits and Split-Fashion-MNIST: the 10 classes in a seeded random order, 5
experiences of 2 classes each, one shared task label (class-incremental, no task ids at
test time). Images stay in core's normalised tensors, so a distilled summary and a raw
buffer hold the very same kind of data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

from datadistill import data as datasets
from datadistill.data import Dataset
from datadistill.errors import DistillError

BENCHMARKS = {"split-digits": "digits", "split-fmnist": "fashion-mnist"}
# (epochs, batch size) per experience for the stream strategies, at lr 0.01. An experience of
# digits holds about 290 images: 5 epochs of batches of 128 are 15 SGD steps, too few for the
# network to learn two new classes once it has learnt others, so every stream strategy ended
# near chance. Chosen on a validation split of the training data by
# experiments/continual_defaults.py (rows in experiments/results/stream_defaults_digits.json);
# Fashion-MNIST's 12,000 images per experience give hundreds of steps at 5 x 128.
STREAM_DEFAULTS = {"split-digits": (20, 32), "split-fmnist": (5, 128)}


class _Tensors(TensorDataset):
    """A TensorDataset with the `targets` field Avalanche reads class labels from."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__(x, y)
        self.targets = y


def as_avalanche(x: torch.Tensor, y: torch.Tensor):
    """Tensors -> an Avalanche classification dataset with task label 0 on every example.

    Without task labels Avalanche's class-balanced replay fails to collate (see
    shared/notes/DEPENDENCIES.md), so every dataset here carries them.
    """
    from avalanche.benchmarks.utils import ConstantSequence, TaskLabels, as_classification_dataset
    from avalanche.benchmarks.utils.classification_dataset import ClassificationDataset

    base = as_classification_dataset(_Tensors(x, y.long()))
    return ClassificationDataset([base], data_attributes=[TaskLabels(ConstantSequence(0, len(y)))])


def class_order(*, num_classes: int, seed: int) -> list[int]:
    """The seeded class order: seed s gives the same order on every machine."""
    return torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()


@dataclass
class SplitBenchmark:
    """An Avalanche scenario plus the core dataset and class order it was built from."""

    name: str
    data: Dataset
    order: list[int]
    scenario: object  # avalanche CLScenario with train_stream / test_stream

    @property
    def num_experiences(self) -> int:
        return len(self.scenario.train_stream)


def split_benchmark(
    name: str,
    *,
    seed: int,
    num_experiences: int = 5,
    data: Dataset | None = None,
    data_root=None,
    download: bool = False,
) -> SplitBenchmark:
    """Build `split-digits` or `split-fmnist` with Avalanche's `class_incremental_benchmark`.

    Args:
        seed: picks the class order (the "class orders" of the experiments are seeds 0..n-1).
        data: an already loaded core dataset (tests pass digits to skip re-loading).
    """
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    if name not in BENCHMARKS:
        raise DistillError(f"unknown benchmark '{name}'; choose one of: {', '.join(BENCHMARKS)}")
    if data is None:
        data = datasets.load(BENCHMARKS[name], root=data_root, download=download)
    k = data.spec.num_classes
    if num_experiences < 1 or k % num_experiences:
        raise DistillError(
            f"--experiences {num_experiences} must divide the {k} classes of {data.spec.name}"
        )
    order = class_order(num_classes=k, seed=seed)
    streams = {
        "train": as_avalanche(data.x_train, data.y_train),
        "test": as_avalanche(data.x_test, data.y_test),
    }
    scenario = with_task_labels(
        class_incremental_benchmark(streams, class_order=order, num_experiences=num_experiences)
    )
    return SplitBenchmark(name, data, order, scenario)
