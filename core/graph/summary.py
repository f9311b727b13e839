"""A graph summary and its file: the same safetensors format as image summaries.

Tensors ``features`` (float32 [n, d] for node classification, [G, n, d] for graph
classification), ``adjacency`` (float32 [n, n] or [G, n, n]: weighted for GCond/GCDM, 0/1 for
DosCond) and ``labels`` (int64 [n] or [G]); the metadata key ``datadistill`` holds the same
JSON block as image summaries (format version, dataset, num_classes, method, objective,
parameterisation, ipc, n, stored_bytes, config, seed, library version, created, extra) with
``modality: "graph"``, ``task`` and ``num_features`` in place of the image shape. Graphs of
different sizes (a subset of real graphs) are padded and carry a bool ``mask`` [G, n]. Header
checks, metadata parsing and atomic writes are `datadistill.summary_file`'s, shared with the
recommender and text summaries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datadistill import summary_file
from datadistill.errors import DistillError, SummaryFormatError
from datadistill.summary import count_bytes

MODALITY = "graph"
TENSORS = ("features", "adjacency", "labels")


@dataclass
class GraphSummary:
    """A condensed graph (task "node") or set of graphs (task "graph") and how it was made.

    ``stored_bytes`` defaults to the bytes of the three tensors as saved.
    """

    features: torch.Tensor
    adjacency: torch.Tensor
    labels: torch.Tensor
    task: str
    dataset: str
    num_classes: int
    method: str
    ipc: int
    objective: str = ""
    parameterisation: str = ""
    stored_bytes: int | None = None
    config: dict = field(default_factory=dict)
    seed: int = 0
    extra: dict = field(default_factory=dict)
    created: str = ""
    mask: torch.Tensor | None = None  # bool [G, n]: real (not padding) nodes, task "graph"

    def __post_init__(self) -> None:
        self._validate()
        if self.stored_bytes is None:
            self.stored_bytes = count_bytes(self.features, self.adjacency, self.labels)

    @property
    def n(self) -> int:
        """Synthetic nodes (task "node") or graphs (task "graph")."""
        return int(self.labels.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.features.shape[-1])

    def metadata(self) -> dict:
        meta = summary_file.base_metadata(self, modality=MODALITY, dataset=self.dataset)
        return {
            **meta,
            "task": self.task,
            "num_classes": self.num_classes,
            "num_features": self.num_features,
        }

    def save(self, path: str | os.PathLike) -> Path:
        meta = self.metadata()
        self.created = meta["created"]
        names = TENSORS + (("mask",) if self.mask is not None else ())
        return summary_file.write(path, {k: getattr(self, k) for k in names}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GraphSummary:
        """Read and validate a graph summary; refuses image summaries and foreign files."""
        tensors, meta = summary_file.read(path, modality=MODALITY, required=TENSORS)
        tensors = {k: v for k, v in tensors.items() if k in TENSORS + ("mask",)}
        try:
            return cls(
                **tensors,
                task=meta["task"],
                dataset=meta["dataset"],
                num_classes=int(meta["num_classes"]),
                method=meta["method"],
                ipc=meta["ipc"],
                objective=meta.get("objective", ""),
                parameterisation=meta.get("parameterisation", ""),
                stored_bytes=meta.get("stored_bytes"),
                config=meta.get("config", {}),
                seed=meta.get("seed", 0),
                extra=meta.get("extra", {}),
                created=meta.get("created", ""),
            )
        except KeyError as e:
            raise SummaryFormatError(
                f"graph summary '{path}' metadata lacks key {e}; {summary_file.RERUN}"
            ) from None
        except DistillError as e:
            raise SummaryFormatError(f"graph summary '{path}': {e}") from None

    def _validate(self) -> None:
        if self.task not in ("node", "graph"):
            raise DistillError(f"task must be 'node' or 'graph', got {self.task!r}")
        x, a, y = self.features, self.adjacency, self.labels
        lead = 1 if self.task == "graph" else 0
        if x.dim() != 2 + lead or a.dim() != 2 + lead or y.dim() != 1:
            raise DistillError(
                f"a {self.task} summary needs features [{'G, ' * lead}n, d], adjacency "
                f"[{'G, ' * lead}n, n] and labels [{'G' if lead else 'n'}]; got "
                f"{tuple(x.shape)}, {tuple(a.shape)}, {tuple(y.shape)}"
            )
        n = x.shape[lead]
        if (
            a.shape[lead:] != (n, n)
            or x.shape[0] != y.shape[0]
            or (lead and a.shape[0] != y.shape[0])
        ):
            raise DistillError(
                f"summary shapes disagree: features {tuple(x.shape)}, adjacency "
                f"{tuple(a.shape)}, labels {tuple(y.shape)}; one adjacency row per node and one "
                "label per node (or graph)"
            )
        if not x.is_floating_point() or not a.is_floating_point():
            raise DistillError(
                "features and adjacency must be float tensors; convert with .float()"
            )
        if y.is_floating_point():
            raise DistillError("labels must be int64 class ids; convert with .long()")
        self.features, self.adjacency, self.labels = x.float(), a.float(), y.long()
        if self.mask is not None and (
            self.task != "graph" or self.mask.dtype != torch.bool or self.mask.shape != x.shape[:2]
        ):
            raise DistillError(
                f"mask must be bool [G, n] = {tuple(x.shape[:2])} for a graph summary; got "
                f"{self.mask.dtype} {tuple(self.mask.shape)}"
            )
        if len(y) == 0:
            raise DistillError("summary is empty; condense with ipc >= 1")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise DistillError(f"labels outside [0, {self.num_classes}); labels must be class ids")
        for name in ("features", "adjacency"):
            bad = int((~torch.isfinite(getattr(self, name))).sum())
            if bad:
                raise DistillError(
                    f"{name} contain {bad} NaN/inf values: the run diverged; lower the learning "
                    "rate and re-run"
                )


def summarise(state) -> GraphSummary:
    """The graph presets' `summarise` hook: the parameterisation's current graph(s) from a
    `datadistill.distill.RunState`. With `reduction` > 0 the summary's ipc is the mean size
    of its classes."""
    x, adj, y = state.param.materialize()
    data, cfg = state.data, state.config
    size = data.num_nodes if data.task == "node" else len(data.train_idx)
    ipc = state.ipc
    if getattr(cfg, "reduction", 0) > 0:
        ipc = max(1, round(len(y) / data.num_classes))
    return GraphSummary(
        features=x.cpu(),
        adjacency=adj.cpu(),
        labels=y.cpu(),
        task=data.task,
        dataset=data.name,
        num_classes=data.num_classes,
        method=state.method.name,
        ipc=ipc,
        objective=state.objective.name,
        parameterisation=state.param.name,
        config=state.config_dict(),
        seed=state.seed,
        extra={"reduction": len(y) / size, "run": state.run_info()},
    )
