"""A data summary: the synthetic set a distillation run produces, and its file format.

One ``.safetensors`` file that plain ``safetensors`` + ``json`` can read without this
library: tensors ``images`` (float32 [n, C, H, W], normalised) and ``labels`` (int64 [n]
or float32 [n, K] soft labels), always materialised; a factorised summary's own tensors
under ``param.*``; preprocessing beyond mean/std (e.g. ZCA) under ``preprocess.*``; and
one JSON object under the metadata key ``datadistill`` describing how it was made.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

from datadistill import atomic
from datadistill.errors import DistillError, SummaryFormatError
from datadistill.spec import DataSpec

FORMAT_VERSION = 1
METADATA_KEY = "datadistill"
PARAM_PREFIX = "param."
PREPROCESS_PREFIX = "preprocess."

_RERUN = "re-run `distill run` or restore the file"
# A header (tensor entries + metadata) of the largest committed summary is 17 KB and its
# metadata 3 levels deep; the bounds leave room for thousands of tensors and nested configs
# while refusing a crafted file before it costs memory or overflows the JSON parser's stack.
MAX_HEADER_BYTES = 1 << 20
MAX_METADATA_DEPTH = 16
# The types of the metadata keys every modality shares (present keys only: a graph summary
# has no image_shape); anything else is refused before a loader or `show` trips on it.
_METADATA_TYPES = {
    "dataset": str, "method": str, "objective": str, "parameterisation": str,
    "modality": str, "dsa_strategy": str, "library_version": str, "created": str,
    "num_classes": int, "ipc": int, "n": int, "seed": int, "soft_labels": bool,
    "stored_bytes": int | None, "config": dict, "extra": dict,
    "image_shape": list, "mean": list, "std": list,
}  # fmt: skip
_NUMBER = int | float | None  # JSON has one number type; None where nothing was measured
_RUN_TYPES = {
    "iterations": int,
    "sec_per_iter": _NUMBER,
    "seconds": _NUMBER,
    "peak_mem_mb": _NUMBER,
}


def count_bytes(*tensors: torch.Tensor) -> int:
    """Bytes the tensors occupy (numel * element size), the unit of storage budgets."""
    return sum(t.numel() * t.element_size() for t in tensors)


def library_version() -> str:
    """Installed datadistill version, recorded so a file says what produced it."""
    try:
        return importlib.metadata.version("datadistill")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+local"


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
            "format_version": FORMAT_VERSION,
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
            "library_version": library_version(),
            "created": self.created,
            "extra": self.extra,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the summary atomically: a crash or error never leaves a half-written file."""
        path = Path(path)
        if not self.created:
            self.created = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            meta = json.dumps(_infinities_as_strings(self.metadata()), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise DistillError(
                f"summary metadata is not JSON-serialisable ({e}); "
                "keep config and extra to str/int/float/bool/list/dict with finite numbers"
            ) from None
        tensors = {"images": self.images, "labels": self.labels}
        tensors |= {PARAM_PREFIX + k: v for k, v in self.params.items()}
        tensors |= {PREPROCESS_PREFIX + k: v for k, v in self.preprocess.items()}
        # clone: safetensors refuses tensors that share storage (e.g. a param aliasing images)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}

        return atomic.write_bytes(path, st.save(tensors, metadata={METADATA_KEY: meta}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Summary:
        """Read and validate a summary file; refuses anything it cannot trust."""
        path = Path(path)
        tensors, meta = read_file(path, modality="image", required=("images", "labels"))

        def strip(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        try:
            channels, height, width = meta["image_shape"]
            if height != width:
                raise SummaryFormatError(
                    f"summary file '{path}' has non-square image_shape "
                    f"{meta['image_shape']}; {_RERUN}"
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
                    f"{summary.n}; {_RERUN}"
                )
            return summary
        except KeyError as e:
            raise SummaryFormatError(
                f"summary file '{path}' metadata lacks key {e}; {_RERUN}"
            ) from None
        except (TypeError, ValueError) as e:
            raise SummaryFormatError(
                f"summary file '{path}' has malformed metadata ({_first_line(e)}); {_RERUN}"
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


def read_file(
    path: str | os.PathLike, *, modality: str, required: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a summary file of `modality`: the one reader for every modality,
    so a truncated, foreign or wrong-modality file gets the same clear message everywhere."""
    path = Path(path)
    _check_header(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
            if raw is None:
                raise SummaryFormatError(
                    f"'{path}' is not a datadistill summary (no '{METADATA_KEY}' metadata); "
                    "pass a file written by `distill run`"
                )
            meta = _parse_metadata(raw, path)
            found = meta.get("modality", "image")
            if found != modality:
                loader = (
                    "datadistill.summary.Summary.load"
                    if found == "image"
                    else f"datadistill.{found}.summary"
                )
                raise SummaryFormatError(
                    f"'{path}' is {_a(found)} summary, not {_a(modality)} summary; load it with "
                    f"{loader} (`distill eval` and `distill show` read every modality)"
                )
            keys = set(f.keys())
            missing = [k for k in required if k not in keys]
            if missing:
                names = ", ".join(f"'{k}'" for k in missing)
                noun = "tensor" if len(missing) == 1 else "tensors"
                raise SummaryFormatError(
                    f"summary file '{path}' lacks the {names} {noun}; {_RERUN}"
                )
            tensors = {k: f.get_tensor(k) for k in keys}
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt ({_first_line(e)}); {_RERUN}"
        ) from None
    return tensors, meta


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _check_header(path: Path) -> None:
    """Check existence and the 8-byte header length before safetensors sees the file.

    Catches truncation and foreign files with a clear message, and avoids asking
    safetensors to parse a header length that points past the end of the file.
    """
    if not path.exists():
        raise SummaryFormatError(f"summary file '{path}' not found; check the path")
    if not path.is_file():
        raise SummaryFormatError(f"summary path '{path}' is not a file; pass a .safetensors file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) < 9:
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt ({size} bytes, too short for a "
            f"safetensors header); {_RERUN}"
        )
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > MAX_HEADER_BYTES and header_len <= size - 8:
        raise SummaryFormatError(
            f"summary file '{path}' has a {header_len:,}-byte header, more than any summary "
            f"writes ({MAX_HEADER_BYTES:,}); refused as crafted or corrupt, {_RERUN}"
        )
    if header_len > size - 8 or head[8:9] != b"{":
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt (safetensors header unreadable); "
            f"{_RERUN}"
        )


def _infinities_as_strings(obj):
    """JSON has no infinity: a setting of +-inf (no privacy budget, say) is written "inf" or
    "-inf", which `Method.config` reads back as the float. NaN stays an error."""
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: _infinities_as_strings(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_infinities_as_strings(v) for v in obj]
    return obj


def _parse_metadata(raw: str, path: Path) -> dict:
    if len(raw) > MAX_HEADER_BYTES:  # the header check bounds it already; a direct caller
        raise SummaryFormatError(
            f"summary file '{path}' has {len(raw):,} bytes of metadata, more than any summary "
            f"writes; refused as crafted or corrupt, {_RERUN}"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SummaryFormatError(
            f"summary file '{path}' has unreadable '{METADATA_KEY}' metadata (invalid JSON: "
            f"{e.msg}); {_RERUN}"
        ) from None
    except RecursionError:
        raise SummaryFormatError(
            f"summary file '{path}' has malformed metadata (nested too deep to parse); {_RERUN}"
        ) from None
    if not isinstance(meta, dict):
        raise SummaryFormatError(
            f"summary file '{path}' has '{METADATA_KEY}' metadata that is not a JSON object; "
            f"{_RERUN}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SummaryFormatError(
            f"summary file '{path}' has no valid format_version in its metadata; {_RERUN}"
        )
    if version > FORMAT_VERSION:
        raise SummaryFormatError(
            f"summary file '{path}' uses format version {version}, newer than this library "
            f"supports ({FORMAT_VERSION}); upgrade datadistill"
        )
    _check_metadata_types(meta, path)
    return meta


def json_depth(obj) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, todo = 0, [(obj, 0)]
    while todo:
        value, depth = todo.pop()
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            deepest = max(deepest, depth + 1)
            todo.extend((v, depth + 1) for v in children)
    return deepest


def _check_metadata_types(meta: dict, path: Path) -> None:
    def refuse(what: str):
        return SummaryFormatError(
            f"summary file '{path}' has malformed metadata ({what}); {_RERUN}"
        )

    if json_depth(meta) > MAX_METADATA_DEPTH:
        raise refuse(f"nested deeper than {MAX_METADATA_DEPTH} levels")
    blocks = [(meta, _METADATA_TYPES, "")]
    if isinstance(meta.get("extra"), dict) and "run" in meta["extra"]:
        run = meta["extra"]["run"]
        if not isinstance(run, dict):
            raise refuse(f"extra.run is {type(run).__name__}, expected an object")
        blocks.append((run, _RUN_TYPES, "extra.run."))
    for block, types, prefix in blocks:
        for key, kind in types.items():
            if key not in block:
                continue
            value = block[key]
            # bool is an int to Python, never to this format
            ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
            if not ok:
                raise refuse(f"{prefix}{key} is {type(value).__name__} {_clip(value)}")
    for key in ("image_shape", "mean", "std"):
        if any(not isinstance(v, int | float) or isinstance(v, bool) for v in meta.get(key, [])):
            raise refuse(f"{key} holds non-numbers {_clip(meta[key])}")


def _clip(value, limit: int = 40) -> str:
    """A value's repr cut to `limit` characters, so a message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
