"""A recommender summary: synthetic users' rows, saved in the one summary file format.

Tensors: ``interactions`` float32 [n_users, items] (the matrix a model trains on, values in
[0, 1]) and, for a learnt prior, ``param.logits`` (Distill-CF's Omega). Metadata: the block
of `datadistill.summary_file` with ``modality: "recsys"`` plus ``num_items`` and the real
dataset's ``num_users``; ``ipc`` is the number of synthetic users.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datadistill import summary_file
from datadistill.errors import DistillError
from datadistill.recsys.data import RecSpec

MODALITY = "recsys"


@dataclass
class RecSummary:
    interactions: torch.Tensor
    spec: RecSpec
    method: str
    objective: str = ""
    parameterisation: str = "rows"
    stored_bytes: int | None = None
    config: dict = field(default_factory=dict)
    seed: int = 0
    extra: dict = field(default_factory=dict)
    params: dict[str, torch.Tensor] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        x = self.interactions
        if x.dim() != 2 or x.shape[1] != self.spec.num_items or len(x) == 0:
            raise DistillError(
                f"interactions have shape {tuple(x.shape)}, expected [n >= 1, "
                f"{self.spec.num_items}] for {self.spec.name}"
            )
        self.interactions = x.detach().float().cpu()
        if self.stored_bytes is None:
            self.stored_bytes = self.interactions.numel() * 4

    @property
    def n(self) -> int:
        return len(self.interactions)

    @property
    def ipc(self) -> int:
        return self.n

    def metadata(self) -> dict:
        meta = summary_file.base_metadata(self, modality=MODALITY, dataset=self.spec.name)
        return {**meta, "num_items": self.spec.num_items, "num_users": self.spec.num_users}

    def save(self, path: str | os.PathLike) -> Path:
        meta = self.metadata()
        self.created = meta["created"]
        tensors = {"interactions": self.interactions}
        tensors |= {f"param.{k}": v for k, v in self.params.items()}
        return summary_file.write(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecSummary:
        tensors, meta = summary_file.read(path, modality=MODALITY, required=("interactions",))
        try:
            spec = RecSpec(meta["dataset"], int(meta["num_users"]), int(meta["num_items"]))
            return cls(
                interactions=tensors["interactions"],
                spec=spec,
                method=meta["method"],
                objective=meta.get("objective", ""),
                parameterisation=meta.get("parameterisation", "rows"),
                stored_bytes=meta.get("stored_bytes"),
                config=meta.get("config", {}),
                seed=meta.get("seed", 0),
                extra=meta.get("extra", {}),
                params={k[6:]: v for k, v in tensors.items() if k.startswith("param.")},
                created=meta.get("created", ""),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DistillError(f"summary file '{path}' has malformed metadata ({e})") from None


def summarise(state) -> RecSummary:
    """Distill-CF's `summarise` hook: the current prior as a recommender summary, from a
    `datadistill.distill.RunState`."""
    x, _ = state.param.materialize()
    return RecSummary(
        interactions=x.cpu(),
        spec=state.data.spec,
        **state.made(),
        extra={**state.objective.summary_extra(), "run": state.run_info()},
        params={k: v.cpu() for k, v in state.param.tensors().items()},
    )
