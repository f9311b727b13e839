"""The distilled memory: an Avalanche storage policy that compresses each experience.

Deng & Russakovsky (NeurIPS 2022) keep, per experience, a distilled summary instead of
raw exemplars. Avalanche separates *what is stored* (an `ExemplarsBuffer`) from *how it
is used* (`ReplayPlugin` replays it beside new data; `GDumbPlugin` retrains a fresh model
on it alone), so the distilled memory is only a buffer: both modes reuse Avalanche's own
plugins unchanged.

Accounting is one function for every buffer (`usage`): images and bytes of the tensors
actually held, so a raw-image buffer and a distilled one are compared on equal terms.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from avalanche.training.storage_policy import ExemplarsBuffer
from torch.utils.data import DataLoader

from datadistill import evidence, methods
from datadistill.data import Dataset
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.loop import RunOptions
from datadistill.spec import DataSpec
from datadistill.summary import Summary, count_bytes
from datadistill_apps.continual.bench import as_avalanche


@dataclass(frozen=True)
class DistillMemoryConfig:
    """How each experience is compressed.

    Attributes:
        method: any core method (`distill list`); DM by default, as it is cheap per step.
        memory: images per class kept for every class seen.
        iterations: outer iterations per experience (None: the method's default).
        overrides: the method's settings to change (as `distill run --set`).
        cache: a folder where each experience's distillation checkpoints and keeps its
            summary, so a stream stopped mid-way (a memory-20 DSA stream is over an hour
            on a CPU) redoes only its training, not its distillations; None keeps nothing.
    """

    method: str = "dm"
    memory: int = 10
    iterations: int | None = 1000
    seed: int = 0
    progress: bool = False
    overrides: dict = field(default_factory=dict)
    cache: str | Path | None = None


def tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All (x, y) of an Avalanche dataset, in its order, as two tensors."""
    if len(dataset) == 0:
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    xs, ys = [], []
    collate = getattr(dataset, "collate_fn", None)
    for x, y, *_ in DataLoader(dataset, batch_size=1024, collate_fn=collate):
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys).long()


def usage(buffer: ExemplarsBuffer) -> dict:
    """Images, bytes and per-class counts a buffer holds now (raw or distilled alike)."""
    x, y = tensors(buffer.buffer)
    per_class = {int(c): int(n) for c, n in zip(*torch.unique(y, return_counts=True), strict=True)}
    return {"images": len(y), "bytes": count_bytes(x, y), "per_class": per_class}


def keep(
    buffer: ExemplarsBuffer, path: Path, *, spec: DataSpec, strategy: str, seed: int, memory: int
) -> Path:
    """The memory a stream ends with, as a summary file a row can cite by path and sha256.

    Written once and never replaced (`evidence.keep_summary`): a rerun whose memory differs is
    kept beside it. Raw and distilled buffers alike, charged the bytes the row reports.
    """
    x, y = tensors(buffer.buffer)
    stored = getattr(buffer, "stored_bytes", count_bytes(x, y))
    summary = Summary(
        images=x, labels=y, spec=spec, method=strategy, ipc=memory, stored_bytes=int(stored),
        seed=seed, config={"strategy": strategy, "memory_per_class": memory},
    )  # fmt: skip
    return evidence.keep_summary(summary, path)


def restrict(x: torch.Tensor, y: torch.Tensor, spec: DataSpec) -> tuple[Dataset, torch.Tensor]:
    """One experience as a core Dataset of its own classes, relabelled 0..k-1.

    Core methods distil every class of a dataset, so an experience's 2 classes become a
    2-class dataset; the returned `classes` maps the summary's labels back. The name
    carries the classes, because core caches per dataset name (herding's feature network)
    and a subset must never reuse another subset's cache.
    """
    classes = torch.unique(y)
    local = torch.searchsorted(classes, y)
    name = f"{spec.name}-classes-{'-'.join(str(int(c)) for c in classes)}"
    sub_spec = dataclasses.replace(spec, name=name, num_classes=len(classes))
    empty_x, empty_y = x[:0], local[:0]
    return Dataset(sub_spec, x, local, empty_x, empty_y), classes


# (method, iterations, overrides, memory, seed, experience, classes) -> Summary: the replay
# and recall modes of one class order distil the same data the same way, so once is enough
_SUMMARIES: dict[tuple, Summary] = {}


class DistilledBuffer(ExemplarsBuffer):
    """Keeps one distilled summary per experience: `memory` images for each of its classes.

    Updated by Avalanche (`post_adapt`) after `ReplayPlugin` finishes an experience, or
    before `GDumbPlugin` retrains on memory; the buffer is the concatenation of all
    summaries so far and `summaries` keeps them (with their stored bytes) for reporting.
    """

    def __init__(
        self, *, spec: DataSpec, config: DistillMemoryConfig, device: torch.device | str = "cpu"
    ) -> None:
        if config.memory < 1:
            raise DistillError(f"--memory must be at least 1 image per class, got {config.memory}")
        methods.get(config.method)  # unknown names fail before any training
        super().__init__(max_size=config.memory * spec.num_classes)
        self.spec = spec
        self.config = config
        self.device = device
        self.summaries: list[Summary] = []

    @property
    def stored_bytes(self) -> int:
        """Bytes the method is charged for (a factorised summary may store fewer)."""
        return sum(s.stored_bytes for s in self.summaries)

    def post_adapt(self, agent_state, exp) -> None:
        x, y = tensors(exp.dataset)
        sub, classes = restrict(x, y, self.spec)
        cfg = self.config
        seed = cfg.seed * 1000 + len(self.summaries)
        # the parent dataset's published settings: the subset's own name is in no table
        overrides = {**methods.get(cfg.method).per_dataset.get(self.spec.name, {}), **cfg.overrides}
        key = (
            cfg.method, cfg.iterations, tuple(sorted(overrides.items())), cfg.memory,
            seed, sub.spec.name, len(y), str(self.device),
        )  # fmt: skip
        if key not in _SUMMARIES:
            # readable, and unique by a hash of the whole key
            digest = hashlib.sha1(repr(key).encode()).hexdigest()[:10]
            name = f"{cfg.method}-m{cfg.memory}-{sub.spec.name}-s{seed}-{digest}"
            folder = None if cfg.cache is None else Path(cfg.cache) / name
            _SUMMARIES[key] = run(
                cfg.method,
                sub,
                cfg.memory,
                options=RunOptions(
                    seed=seed,
                    iterations=cfg.iterations,
                    progress=cfg.progress,
                    resume=folder is not None,
                    checkpoint_every=10,
                ),
                overrides=overrides,
                device=self.device,
                out_dir=folder,
            )
        summary = _SUMMARIES[key]
        if summary.soft_labels:
            raise DistillError(
                f"method '{cfg.method}' learns soft labels, which class-incremental replay "
                "cannot mix with hard ones; pick a hard-label method (dm, dc, dsa, herding ...)"
            )
        images = summary.images.detach().cpu()
        labels = classes[summary.labels.cpu()]
        self.summaries.append(summary)
        new = as_avalanche(images, labels)
        self.buffer = new if len(self.buffer) == 0 else self.buffer.concat(new)

    def resize(self, strategy, new_size: int) -> None:
        """A summary cannot shrink without re-distilling; only growth is accepted."""
        if new_size < len(self.buffer):
            raise DistillError(
                f"distilled memory holds {len(self.buffer)} images and cannot shrink to "
                f"{new_size}; keep the per-class memory fixed"
            )
        self.max_size = new_size
