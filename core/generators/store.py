"""The generator file: one safetensors file per dataset, readable without this library.

Tensors are the conditional VAE's weights (``encoder.*``, ``decoder.*``); the metadata key
``datadistill_generator`` holds a JSON object with the dataset's spec, the architecture, the
training config, the epochs trained so far and the target, and the mean loss of each epoch.
The optimiser and RNG state needed to resume training live beside it in
``<stem>.state.safetensors`` (no pickle: `datadistill.checkpoint`).
Both are written atomically after every epoch, so an interrupted `distill generator`
continues from its last finished epoch and a reader never sees a half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

from datadistill import atomic, checkpoint
from datadistill.errors import DistillError
from datadistill.generators.cvae import ConditionalVAE, GeneratorConfig
from datadistill.spec import DataSpec

FORMAT_VERSION = 1
METADATA_KEY = "datadistill_generator"


def default_path(dataset: str) -> Path:
    """``$DATADISTILL_GENERATORS`` (default ``generators``) / ``<dataset>.safetensors``."""
    return Path(os.environ.get("DATADISTILL_GENERATORS", "generators")) / f"{dataset}.safetensors"


def state_path(path: Path) -> Path:
    return path.with_name(path.stem + ".state.safetensors")


def generator_command(dataset: str, path: Path, epochs: int) -> str:
    """The command that trains the generator at `path` (quoted in error messages)."""
    return f"distill generator --dataset {dataset} --epochs {epochs} --out {path}"


def save(path: Path, model: ConditionalVAE, meta: dict, train_state: dict | None) -> None:
    """Weights + metadata, then the training state; each file atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {"format_version": FORMAT_VERSION, **meta}
    atomic.write_bytes(path, st.save(tensors, metadata={METADATA_KEY: json.dumps(header)}))
    if train_state is not None:
        checkpoint.save_state(state_path(path), train_state)


def read_meta(path: Path) -> dict:
    """The metadata of a generator file; a missing, foreign or corrupt file is refused."""
    if not path.is_file():
        raise DistillError(f"generator file {path} not found")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (safetensors.SafetensorError, OSError) as e:
        raise DistillError(f"generator file {path} is corrupt ({e}); delete it, retrain") from None
    if raw is None:
        raise DistillError(f"{path} is not a datadistill generator file; pass another --out")
    meta = json.loads(raw)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise DistillError(f"generator file {path} is newer than this library; upgrade it")
    return meta


def new_model(spec: DataSpec, config: GeneratorConfig) -> ConditionalVAE:
    """A freshly initialised generator whose weights depend only on `config.seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return ConditionalVAE(spec, latent_dim=config.latent_dim, width=config.width)


def load(path: Path, spec: DataSpec | None = None) -> tuple[ConditionalVAE, dict]:
    """The generator at `path` and its metadata; checks it was made for `spec`'s images."""
    meta = read_meta(path)
    saved = DataSpec.from_dict(meta["spec"])
    if spec is not None and (saved.shape, saved.num_classes) != (spec.shape, spec.num_classes):
        raise DistillError(
            f"generator {path} was trained on {saved.name} {saved.shape}, not {spec.name} "
            f"{spec.shape}; pass --set generator=PATH for a {spec.name} generator"
        )
    config = GeneratorConfig(**meta["config"])
    model = new_model(saved, config)
    model.load_state_dict(st.load_file(str(path)))
    return model, meta


def trained_on(meta: dict) -> str:
    """What the generator learnt from, in words (files from before the count say less)."""
    count = meta.get("train_images")
    split = f"{meta.get('dataset', '?')} training split"
    return f"{split}, {count:,} images" if isinstance(count, int) else split


def describe(
    config: GeneratorConfig,
    spec: DataSpec,
    *,
    epochs_done: int,
    losses: list,
    train_images: int,
    train_seconds: float | None,
) -> dict:
    """The generator's metadata; `train_images` says what a summary decoded by it leans on,
    `train_seconds` what it cost before any distillation (None when not recorded)."""
    return {
        "kind": "conditional_vae",
        "dataset": spec.name,
        "train_images": train_images,
        "train_seconds": train_seconds,
        "spec": spec.to_dict(),
        "config": dataclasses.asdict(config),
        "epochs_done": epochs_done,
        "losses": losses,
    }
