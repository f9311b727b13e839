"""A text summary: synthetic sentences in embedding space, saved in the one summary format.

Tensors: ``embeddings`` float32 [n, seq_len, dim] (what a classifier trains on),
``labels`` (int64 [n] or float32 [n, K] learnt soft labels), ``tokens`` int64 [n, seq_len]
(each position's nearest word, for display) and ``preprocess.embedding`` [V, dim], the
frozen table that maps real text into the same space (preprocessing travels with the
summary, DESIGN.md; it is not charged to ``stored_bytes``). Metadata: the block of
`datadistill.summary_file` with ``modality: "text"``, plus classes, seq_len, dim, soft_labels
and the vocabulary (the words of the table's rows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datadistill import summary_file
from datadistill.errors import DistillError
from datadistill.text.data import TextData, TextSpec
from datadistill.text.decode import decode, nearest_tokens

MODALITY = "text"


@dataclass
class TextSummary:
    embeddings: torch.Tensor
    labels: torch.Tensor
    spec: TextSpec
    method: str
    ipc: int
    table: torch.Tensor
    words: list[str]
    objective: str = ""
    parameterisation: str = "sequences"
    stored_bytes: int | None = None
    config: dict = field(default_factory=dict)
    seed: int = 0
    extra: dict = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        x, y, k = self.embeddings, self.labels, self.spec.num_classes
        if x.dim() != 3 or tuple(x.shape[1:]) != self.spec.shape or len(x) == 0:
            raise DistillError(
                f"embeddings have shape {tuple(x.shape)}, expected [n >= 1, "
                f"{self.spec.seq_len}, {self.spec.dim}] for {self.spec.name}"
            )
        if len(y) != len(x) or (y.dim() == 2 and y.shape[1] != k) or y.dim() not in (1, 2):
            raise DistillError(
                f"labels have shape {tuple(y.shape)}; pass [n] class ids or [n, {k}] soft labels"
            )
        if len(self.words) != len(self.table):
            raise DistillError(f"{len(self.words)} words for a table of {len(self.table)} rows")
        self.embeddings = x.detach().float().cpu()
        self.labels = (y.float() if y.dim() == 2 else y.long()).detach().cpu()
        self.table = self.table.detach().float().cpu()
        if self.stored_bytes is None:
            self.stored_bytes = self.embeddings.numel() * 4 + self.labels.numel() * 4

    @property
    def n(self) -> int:
        return len(self.embeddings)

    @property
    def soft_labels(self) -> bool:
        return self.labels.dim() == 2

    def hard_labels(self) -> torch.Tensor:
        return self.labels.argmax(1) if self.soft_labels else self.labels

    def sentences(self) -> list[str]:
        """Each synthetic sentence read as its nearest words."""
        return decode(self.embeddings, self.table, self.words)

    def metadata(self) -> dict:
        meta = summary_file.base_metadata(self, modality=MODALITY, dataset=self.spec.name)
        return {
            **meta,
            "num_classes": self.spec.num_classes,
            "classes": list(self.spec.classes),
            "seq_len": self.spec.seq_len,
            "dim": self.spec.dim,
            "soft_labels": self.soft_labels,
            "vocabulary": list(self.words),
        }

    def save(self, path: str | os.PathLike) -> Path:
        meta = self.metadata()
        self.created = meta["created"]
        tensors = {
            "embeddings": self.embeddings,
            "labels": self.labels,
            "tokens": nearest_tokens(self.embeddings, self.table),
            "preprocess.embedding": self.table,
        }
        return summary_file.write(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextSummary:
        required = ("embeddings", "labels", "preprocess.embedding")
        tensors, meta = summary_file.read(path, modality=MODALITY, required=required)
        try:
            spec = TextSpec(
                meta["dataset"],
                int(meta["num_classes"]),
                int(meta["seq_len"]),
                int(meta["dim"]),
                tuple(meta["classes"]),
            )
            return cls(
                embeddings=tensors["embeddings"],
                labels=tensors["labels"],
                spec=spec,
                method=meta["method"],
                ipc=meta["ipc"],
                table=tensors["preprocess.embedding"],
                words=list(meta["vocabulary"]),
                objective=meta.get("objective", ""),
                parameterisation=meta.get("parameterisation", "sequences"),
                stored_bytes=meta.get("stored_bytes"),
                config=meta.get("config", {}),
                seed=meta.get("seed", 0),
                extra=meta.get("extra", {}),
                created=meta.get("created", ""),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DistillError(f"summary file '{path}' has malformed metadata ({e})") from None


def summarise(state) -> TextSummary:
    """Text BPTT's `summarise` hook: the current sentences from a
    `datadistill.distill.RunState` whose data is the `TextData` (its table and vocabulary
    travel with the summary)."""
    x, y = state.param.materialize()
    text = state.data
    return TextSummary(
        embeddings=x.cpu(),
        labels=y.cpu(),
        spec=text.dataset.spec,
        ipc=state.ipc,
        table=text.table,
        words=text.vocab.words,
        **state.made(),
        extra={
            **state.param.summary_extra(),
            **state.objective.summary_extra(),
            "run": state.run_info(),
        },
    )


def random_sentences(text: TextData, ipc: int, *, seed: int) -> TextSummary:
    """The baseline a summary is compared with: `ipc` real training sentences per class,
    drawn uniformly (seeded)."""
    data = text.dataset
    rows = torch.cat([
        data.class_index(c)[
            torch.randperm(len(data.class_index(c)), generator=torch.Generator().manual_seed(seed))
        ][:ipc]
        for c in range(data.spec.num_classes)
    ])  # fmt: skip
    return TextSummary(
        embeddings=data.x_train[rows],
        labels=data.y_train[rows],
        spec=data.spec,
        method="random",
        ipc=ipc,
        table=text.table,
        words=text.vocab.words,
        objective="selection",
        seed=seed,
    )
