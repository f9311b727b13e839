"""What a client does with its partition, as plain functions (no Flower).

A client distils only the classes it holds: classes with more than `ipc` examples are
distilled with a core method (remapped to contiguous ids, because core's methods expect
every class of the spec to be present), and a class with at most `ipc` examples is
uploaded as is, since a summary of it could not be smaller. Under strong label skew
(Dirichlet alpha 0.1) most clients hold a few classes, so this keeps uploads at most
`ipc` images per class held.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from datadistill import distill
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.loop import RunOptions
from datadistill.summary import Summary, count_bytes
from datadistill.train import TrainConfig, train

CHECKPOINT_EVERY = 50  # steps; a pooled DM checkpoint holds the pool's means (MBs)


def resumable(*, seed: int, iterations: int | None, out_dir: Path | None, progress: bool):
    """Run options that checkpoint in `out_dir` every `CHECKPOINT_EVERY` steps and resume
    from it (a client's or the server's distillation: hours on a CPU); None: neither."""
    return RunOptions(
        seed=seed,
        iterations=iterations,
        progress=progress,
        resume=out_dir is not None,
        checkpoint_every=CHECKPOINT_EVERY,
    )


def client_data(data: Dataset, rows: torch.Tensor) -> Dataset:
    """The partition `rows` of the training set as a Dataset with the global spec.

    The test split is left empty: evaluation happens on the server's central test set.
    """
    x, y = data.x_train[rows], data.y_train[rows]
    return Dataset(data.spec, x, y, x[:0], y[:0])


def distil_partition(
    data: Dataset,
    rows: torch.Tensor,
    *,
    method: str = "dm",
    ipc: int = 10,
    iterations: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    overrides: dict | None = None,
    progress: bool = False,
    out_dir: Path | None = None,
) -> Summary:
    """Distil the client's partition into a Summary over the global classes.

    Returns a Summary with the global spec; `extra` records which classes were
    distilled, which were sent as real examples, and the partition's size. With `out_dir`
    the distillation checkpoints there and a rerun resumes it (an interrupted client loses
    at most `CHECKPOINT_EVERY` steps).
    """
    if len(rows) == 0:
        raise DistillError("this client's partition is empty; use fewer clients or larger alpha")
    y = data.y_train[rows]
    counts = torch.bincount(y, minlength=data.spec.num_classes)
    rich = torch.nonzero(counts > ipc).flatten()
    poor = torch.nonzero((counts > 0) & (counts <= ipc)).flatten()
    images, labels, stored, run_info = [], [], 0, {}
    if len(rich):
        keep = rows[torch.isin(y, rich)]
        remap = torch.full((data.spec.num_classes,), -1, dtype=torch.long)
        remap[rich] = torch.arange(len(rich))
        spec = dataclasses.replace(data.spec, num_classes=len(rich))
        x_k = data.x_train[keep]
        local = Dataset(spec, x_k, remap[data.y_train[keep]], x_k[:0], y[:0])
        options = resumable(seed=seed, iterations=iterations, out_dir=out_dir, progress=progress)
        s = distill.run(
            method, local, ipc, options=options, overrides=overrides, device=device, out_dir=out_dir
        )
        images.append(s.images)
        labels.append(_to_global(s.labels, rich, data.spec.num_classes))
        stored += int(s.stored_bytes)
        run_info = s.extra.get("run", {})
    if len(poor):
        real = rows[torch.isin(y, poor)]
        images.append(data.x_train[real].float())
        labels.append(data.y_train[real])
        stored += count_bytes(images[-1], labels[-1])
    labels = _same_label_form(labels, data.spec.num_classes)
    return Summary(
        images=torch.cat(images),
        labels=torch.cat(labels),
        spec=data.spec,
        method=method,
        ipc=ipc,
        stored_bytes=stored,
        seed=seed,
        extra={
            "run": run_info,
            "examples": len(rows),
            "distilled_classes": rich.tolist(),
            "real_classes": poor.tolist(),
        },
    )


def local_fit(
    net: torch.nn.Module,
    data: Dataset,
    rows: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
) -> torch.nn.Module:
    """FedAvg's client update: `epochs` of core's training loop on the partition.

    No augmentation (FedAvg as in McMahan et al. 2017). Core's loop divides the learning
    rate by 10 after epoch max(1, epochs // 2): with epochs=1 the round runs at the
    constant client learning rate of FedAvg; with 2 its second epoch runs at a tenth.
    """
    device = next(net.parameters()).device
    x, y = data.x_train[rows].to(device), data.y_train[rows].to(device)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, dsa=False)
    gen = torch.Generator().manual_seed(seed)
    return train(net, x, y, config=config, dsa_strategy=data.spec.dsa_strategy, generator=gen)


def _to_global(labels: torch.Tensor, classes: torch.Tensor, k: int) -> torch.Tensor:
    """Local class ids (or soft-label columns) back to the global classes."""
    if labels.dim() == 1:
        return classes[labels.cpu()]
    out = torch.zeros(len(labels), k, dtype=labels.dtype)
    out[:, classes] = labels.cpu()
    return out


def _same_label_form(parts: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Hard labels stay hard; if any part is soft, every part becomes [n, K] float."""
    if all(p.dim() == 1 for p in parts):
        return parts
    return [p if p.dim() == 2 else torch.nn.functional.one_hot(p, k).float() for p in parts]
