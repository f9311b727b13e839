"""An image summary: the synthetic set a distillation run produces, in the one file format
(`datadistill.summary_file`).

One ``.safetensors`` file that plain ``safetensors`` + ``json`` can read without this
library: tensors ``images`` (float32 [n, C, H, W], normalised) and ``labels`` (int64 [n]
or float32 [n, K] soft labels), always materialised; a factorised summary's own tensors
under ``param.*``; preprocessing beyond mean/std (e.g. ZCA) under ``preprocess.*``; and
one JSON object under the metadata key ``datadistill`` describing how it was made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datadistill import summary_file
from datadistill.errors import DistillError, SummaryFormatError
from datadistill.spec import DataSpec

PARAM_PREFIX = "param."
PREPROCESS_PREFIX = "preprocess."


def count_bytes(*tensors: torch.Tensor) -> int:
    """Bytes the tensors occupy (numel * element size), the unit of storage budgets."""
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class Summary:
    """A distilled data summary plus everything needed to evaluate it faithfully.

    ``stored_bytes`` is the storage the method is charged for; when None it is filled
    with the bytes of images, labels and ``params`` (not ``preprocess``: preprocessing
    belongs to the dataset). ``extra`` holds values evaluation must use, such as learnt
    training hyperparameters (``{"syn_lr": 0.01}``). ``created`` is set on first save.
    Images become float32 and hard labels int64 on construction, as the file stores them.
    """

    images: torch.Tensor
    labels: torch.Tensor
    spec: DataSpec
    method: str
    ipc: int
    objective: str = ""
    parameterisation: str = "images"
    stored_bytes: int | None = None
    config: dict = field(default_factory=dict)
    seed: int = 0
    extra: dict = field(default_factory=dict)
    params: dict[str, torch.Tensor] = field(default_factory=dict)
    preprocess: dict[str, torch.Tensor] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        self._validate()
        if self.stored_bytes is None:
            self.stored_bytes = count_bytes(self.images, self.labels, *self.params.values())

    @property
    def n(self) -> int:
        """Number of synthetic examples."""
        return int(self.images.shape[0])

    @property
    def soft_labels(self) -> bool:
        """True when labels are a float [n, K] distribution or logits, not class ids."""
        return self.labels.dim() == 2

    def hard_labels(self) -> torch.Tensor:
        """Class ids [n]; the argmax of soft labels, for code that needs one class each."""
        return self.labels.argmax(dim=1) if self.soft_labels else self.labels

    def metadata(self) -> dict:
        """The JSON object stored under the ``datadistill`` metadata key."""
        return {
            "format_version": summary_file.FORMAT_VERSION,
            "dataset": self.spec.name,
            "num_classes": self.spec.num_classes,
            "image_shape": list(self.spec.shape),
            "mean": list(self.spec.mean),
            "std": list(self.spec.std),
            "dsa_strategy": self.spec.dsa_strategy,
            "method": self.method,
            "objective": self.objective,
            "parameterisation": self.parameterisation,
            "ipc": self.ipc,
            "n": self.n,
            "soft_labels": self.soft_labels,
            "stored_bytes": self.stored_bytes,
            "config": self.config,
            "seed": self.seed,
            "library_version": summary_file.library_version(),
            "created": self.created,
            "extra": self.extra,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the summary atomically: a crash or error never leaves a half-written file."""
        if not self.created:
            self.created = summary_file.now()
        tensors = {"images": self.images, "labels": self.labels}
        tensors |= {PARAM_PREFIX + k: v for k, v in self.params.items()}
        tensors |= {PREPROCESS_PREFIX + k: v for k, v in self.preprocess.items()}
        return summary_file.write(path, tensors, self.metadata())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Summary:
        """Read and validate a summary file; refuses anything it cannot trust."""
        path = Path(path)
        tensors, meta = summary_file.read(path, modality="image", required=("images", "labels"))

        def strip(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        try:
            channels, height, width = meta["image_shape"]
            if height != width:
                raise SummaryFormatError(
                    f"summary file '{path}' has non-square image_shape "
                    f"{meta['image_shape']}; {summary_file.RERUN}"
                )
            spec_kw = {"dsa_strategy": meta["dsa_strategy"]} if "dsa_strategy" in meta else {}
            spec = DataSpec(
                name=meta["dataset"],
                channels=int(channels),
                size=int(height),
                num_classes=int(meta["num_classes"]),
                mean=tuple(meta["mean"]),
                std=tuple(meta["std"]),
                **spec_kw,
            )
            summary = cls(
                images=tensors["images"],
                labels=tensors["labels"],
                spec=spec,
                method=meta["method"],
                ipc=meta["ipc"],
                objective=meta.get("objective", ""),
                parameterisation=meta.get("parameterisation", "images"),
                stored_bytes=meta.get("stored_bytes"),
                config=meta.get("config", {}),
                seed=meta.get("seed", 0),
                extra=meta.get("extra", {}),
                params=strip(PARAM_PREFIX),
                preprocess=strip(PREPROCESS_PREFIX),
                created=meta.get("created", ""),
            )
            if meta.get("n", summary.n) != summary.n:
                raise SummaryFormatError(
                    f"summary file '{path}' says it holds {meta['n']} images but has "
                    f"{summary.n}; {summary_file.RERUN}"
                )
            return summary
        except KeyError as e:
            raise SummaryFormatError(
                f"summary file '{path}' metadata lacks key {e}; {summary_file.RERUN}"
            ) from None
        except (TypeError, ValueError) as e:
            raise SummaryFormatError(
                f"summary file '{path}' has malformed metadata "
                f"({summary_file.first_line(e)}); {summary_file.RERUN}"
            ) from None
        except SummaryFormatError:
            raise
        except DistillError as e:
            raise type(e)(f"summary file '{path}': {e}") from None

    # -- validation -------------------------------------------------------------------

    def _validate(self) -> None:
        spec = self.spec
        expected = f"[n, C, H, W] = [n, {', '.join(map(str, spec.shape))}] for {spec.name}"
        imgs = self.images
        if not isinstance(imgs, torch.Tensor):
            raise DistillError(
                f"images must be a torch.Tensor, got {type(imgs).__name__}; "
                f"pass a float tensor {expected}"
            )
        if imgs.dim() != 4 or tuple(imgs.shape[1:]) != spec.shape:
            raise DistillError(
                f"images have shape {tuple(imgs.shape)}, expected {expected}; "
                "check the dataset the summary was made for"
            )
        if not imgs.is_floating_point():
            raise DistillError(
                f"images have dtype {imgs.dtype}, expected float32; convert with .float()"
            )
        self.images = imgs = imgs.float()  # the file format is float32
        n = self.n
        if n == 0:
            raise DistillError("summary is empty (0 images); distil with ipc >= 1")
        if not isinstance(self.ipc, int) or isinstance(self.ipc, bool) or self.ipc < 1:
            raise DistillError(f"ipc must be a positive int, got {self.ipc!r}; pass ipc >= 1")

        labels = self.labels
        if not isinstance(labels, torch.Tensor):
            raise DistillError(
                f"labels must be a torch.Tensor, got {type(labels).__name__}; "
                "pass int64 [n] class ids or float [n, K] soft labels"
            )
        k = spec.num_classes
        if labels.dim() == 1:
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise DistillError(
                    f"hard labels have dtype {labels.dtype}, expected int64; "
                    "convert class ids with .long() or pass soft labels [n, K]"
                )
            self.labels = labels = labels.long()
            if labels.shape[0] != n:
                raise DistillError(
                    f"labels have length {labels.shape[0]} but there are {n} "
                    "images; pass one label per image"
                )
            bad = int(((labels < 0) | (labels >= k)).sum())
            if bad:
                lo, hi = int(labels.min()), int(labels.max())
                raise DistillError(
                    f"{bad} labels outside [0, {k}) (range {lo}..{hi}) for {spec.name}; "
                    f"labels must be class ids below num_classes={k}"
                )
        elif labels.dim() == 2:
            if not labels.is_floating_point():
                raise DistillError(
                    f"soft labels have dtype {labels.dtype}, expected float; convert with .float()"
                )
            self.labels = labels = labels.float()
            if tuple(labels.shape) != (n, k):
                raise DistillError(
                    f"soft labels have shape {tuple(labels.shape)}, expected "
                    f"[n, K] = [{n}, {k}] for {spec.name}; pass one row per image"
                )
        else:
            raise DistillError(
                f"labels have shape {tuple(labels.shape)}; pass int64 [n] class "
                "ids or float [n, K] soft labels"
            )

        for name, t in self.params.items():
            if not isinstance(t, torch.Tensor):
                raise DistillError(
                    f"param '{name}' is a {type(t).__name__}, not a tensor; "
                    "store only tensors in params"
                )
        for name, t in self.preprocess.items():
            if not isinstance(t, torch.Tensor):
                raise DistillError(
                    f"preprocess '{name}' is a {type(t).__name__}, not a "
                    "tensor; store only tensors in preprocess"
                )

        checked = {"images": imgs, "labels": labels}
        checked |= {f"param '{k}'": v for k, v in self.params.items()}
        for name, t in checked.items():
            if t.is_floating_point() or t.is_complex():
                bad = int((~torch.isfinite(t)).sum())
                if bad:
                    raise DistillError(
                        f"{name} contain {bad} NaN/inf values of {t.numel()}: the run diverged; "
                        "lower the learning rate and re-run"
                    )
