"""Expert trajectories: networks trained on the real data, saved after every epoch.

Trajectory matching (MTT: Cazenavette et al., "Dataset Distillation by Matching Training
Trajectories", CVPR 2022; survey section 2.3, eq. 10) needs, for every outer step, the
parameters of a network trained on the *real* data at some epoch t and at epoch t + M.
Training those networks inside the distillation loop would cost more than the distillation
itself, so they are trained once, here, and read back by `ExpertBank`.

Training follows MTT's `buffer.py` defaults: SGD with learning rate 0.01, no momentum, no
weight decay, no learning-rate decay, batches of 256, 50 epochs, DSA augmentation on every
batch (the dataset's strategy), and MTT trains 100 experts. It goes through the one training
loop (`datadistill.train.train`), whose schedule always divides the rate by 10 at half of its
epochs: asking it for 2E epochs and stopping it after E keeps the rate constant, as in MTT.

File format: one safetensors file per expert, ``expert_0000.safetensors`` ..., holding the
tensor ``trajectory`` (float32 [epochs + 1, P]: row e is every parameter of the network,
flattened in `named_parameters` order, after epoch e; row 0 is the initialisation) and the
metadata key ``datadistill_expert``, a JSON object with the dataset, architecture, network
options, training settings, seed and parameter layout. Files are written atomically, so a
folder only ever holds finished experts and an interrupted `distill experts` resumes by
skipping them.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch
from tqdm.auto import tqdm

from datadistill import accel, atomic, nets
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.train import TrainConfig, train

FORMAT_VERSION = 1
METADATA_KEY = "datadistill_expert"
TENSOR = "trajectory"
PATTERN = "expert_*.safetensors"


@dataclass(frozen=True)
class ExpertConfig:
    """How experts are trained; defaults are MTT's `buffer.py` (it trains `num` = 100)."""

    num: int = 20
    epochs: int = 50
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    dsa: bool = True
    arch: str = "convnet"
    net_config: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    # mixed precision (datadistill.train.TrainConfig.precision): the trajectory's weights stay
    # float32; recorded in each file, not checked on resume (a folder may mix them)
    precision: str = "auto"


def expert_file(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / f"expert_{index:04d}.safetensors"


def default_folder(dataset: str, arch: str, net_config: Mapping | None = None) -> Path:
    """``$DATADISTILL_EXPERTS`` (default ``experts``) / ``<dataset>-<arch>[-<option><value>]``.

    Network options are part of the name because experts only fit a student of the same shape.
    """
    root = Path(os.environ.get("DATADISTILL_EXPERTS", "experts"))
    suffix = "".join(f"-{k}{v}" for k, v in sorted((net_config or {}).items()))
    return root / f"{dataset}-{arch}{suffix}"


def experts_command(
    dataset: str, arch: str, net_config: Mapping | None, *, epochs: int, folder: Path
) -> str:
    """The `distill experts` command line that produces `folder` (used in error messages)."""
    opts = "".join(f" --{k} {v}" for k, v in sorted((net_config or {}).items()))
    return (
        f"distill experts --dataset {dataset} --arch {arch}{opts} --num 20 --epochs {epochs} "
        f"--out {folder}"
    )


def flat_parameters(net: torch.nn.Module) -> torch.Tensor:
    """Every parameter of `net`, flattened in `named_parameters` order, as one float32 vector."""
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).float().cpu()


def layout(net: torch.nn.Module) -> list[list]:
    """[[name, shape], ...] of `net`'s parameters: how a flat vector maps back onto it."""
    return [[name, list(p.shape)] for name, p in net.named_parameters()]


# --- writing ---------------------------------------------------------------------------------


def save_trajectory(path: str | os.PathLike, trajectory: torch.Tensor, meta: dict) -> Path:
    """Write one expert atomically: a crash never leaves a half-written file behind."""
    path = Path(path)
    if trajectory.dim() != 2:
        raise ValueError(f"trajectory must be [epochs + 1, P], got {tuple(trajectory.shape)}")
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "epochs": trajectory.shape[0] - 1,
        "num_params": trajectory.shape[1],
    }
    blob = st.save(
        {TENSOR: trajectory.detach().float().cpu().contiguous()},
        metadata={METADATA_KEY: json.dumps(meta, allow_nan=False)},
    )
    return atomic.write_bytes(path, blob)


class _Done(Exception):
    """Raised by the epoch hook to end `datadistill.train.train` before its learning-rate decay."""


def train_expert(
    data: Dataset, *, config: ExpertConfig, index: int, device: torch.device | str, on_epoch=None
) -> tuple[torch.Tensor, dict]:
    """Train expert `index` on the real data; returns (trajectory [epochs + 1, P], metadata).

    Expert i's initialisation, batch order and augmentation depend only on
    ``config.seed`` and i, so any expert can be re-made on its own.
    """
    seed = config.seed * 1_000_003 + index
    dtype = accel.precision_dtype(config.precision, torch.device(device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nets.build(config.arch, data.spec, **config.net_config)
    net = net.to(device)
    rows = [flat_parameters(net)]

    def record(epoch: int, loss: float) -> None:
        rows.append(flat_parameters(net))
        if on_epoch is not None:
            on_epoch(epoch, loss)
        if epoch + 1 == config.epochs:
            raise _Done

    # 2 x epochs: the loop's decay at half (epoch `epochs`) is never reached, see module doc
    schedule = TrainConfig(
        epochs=2 * config.epochs,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        dsa=config.dsa,
        precision=config.precision,
    )
    try:
        train(
            net,
            data.x_train.to(device),
            data.y_train.to(device),
            config=schedule,
            dsa_strategy=data.spec.dsa_strategy,
            generator=torch.Generator().manual_seed(seed),
            on_epoch=record,
        )
    except _Done:
        pass
    meta = {
        "dataset": data.spec.name,
        "arch": config.arch,
        "net_config": dict(config.net_config),
        "lr": config.lr,
        "momentum": config.momentum,
        "weight_decay": config.weight_decay,
        "batch_size": config.batch_size,
        "dsa_strategy": data.spec.dsa_strategy if config.dsa else None,
        "seed": seed,
        "index": index,
        "precision": accel.PRECISION_NAMES[dtype],
        "layout": layout(net),
    }
    return torch.stack(rows), meta


def train_experts(
    data: Dataset,
    *,
    config: ExpertConfig,
    folder: str | os.PathLike,
    device: torch.device | str = "cpu",
    progress: bool = True,
    only: Sequence[int] | None = None,
) -> list[Path]:
    """Train `config.num` experts into `folder`, skipping those already there (resumable).

    `only` restricts the work to some indices, so several processes can fill one folder;
    each expert's seed depends on its index alone, so the result is the same.

    Raises:
        DistillError: the folder holds experts made with other settings, or a corrupt file.
    """
    if config.num < 1 or config.epochs < 1:
        raise DistillError("--num and --epochs must be at least 1")
    folder = Path(folder)
    indices = range(config.num) if only is None else sorted(set(only))
    bad = [i for i in indices if not 0 <= i < config.num]
    if bad:
        raise DistillError(f"--only {bad[0]} is not an expert index: use 0 to {config.num - 1}")
    paths = [expert_file(folder, i) for i in indices]
    done = [p for p in paths if p.exists()]
    for p in done:
        _check_settings(read_metadata(p), config, data, p)
    bar = tqdm(
        total=len(paths) * config.epochs,
        initial=len(done) * config.epochs,
        disable=not progress,
        desc=f"experts {data.spec.name} {config.arch}",
        unit="epoch",
        dynamic_ncols=True,
    )
    try:
        for i, path in zip(indices, paths, strict=True):
            if path.exists():
                continue

            def tick(epoch: int, loss: float, i=i) -> None:
                bar.update(1)
                bar.set_postfix(expert=i, loss=f"{loss:.3f}")

            start = time.monotonic()
            trajectory, meta = train_expert(
                data, config=config, index=i, device=device, on_epoch=tick
            )
            meta["train_seconds"] = round(time.monotonic() - start, 1)  # a one-off cost
            save_trajectory(path, trajectory, meta)
    finally:
        bar.close()
    return paths


def _check_settings(meta: dict, config: ExpertConfig, data: Dataset, path: Path) -> None:
    want = {
        "dataset": data.spec.name,
        "arch": config.arch,
        "net_config": dict(config.net_config),
        "epochs": config.epochs,
        "lr": config.lr,
        "momentum": config.momentum,
        "weight_decay": config.weight_decay,
        "batch_size": config.batch_size,
        "dsa_strategy": data.spec.dsa_strategy if config.dsa else None,
    }
    diff = [f"{k}={meta.get(k)!r} (asked {v!r})" for k, v in want.items() if meta.get(k) != v]
    if diff:
        raise DistillError(
            f"{path} was trained with other settings: {', '.join(diff)}; pass another --out "
            "or the same settings"
        )


# --- reading ---------------------------------------------------------------------------------


def read_metadata(path: str | os.PathLike) -> dict:
    """Validate an expert file without reading its data; returns its metadata.

    Checks the safetensors header, that the ``trajectory`` tensor is float32 [epochs + 1, P]
    as the metadata says, and that the file is exactly as long as the header promises, so
    a truncated or foreign file is refused before any training step reads it.

    Raises:
        DistillError: the file is missing, truncated, corrupt or not an expert file.
    """
    path = Path(path)
    redo = "delete it and re-run `distill experts` (finished experts are kept)"
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            (header_len,) = struct.unpack("<Q", head) if len(head) == 8 else (None,)
            if header_len is None or header_len > size - 8:
                raise ValueError("header length points past the end of the file")
            header = json.loads(f.read(header_len))
        info = header[TENSOR]
        meta = json.loads(header["__metadata__"][METADATA_KEY])
        shape, (begin, end) = info["shape"], info["data_offsets"]
        if info["dtype"] != "F32" or len(shape) != 2:
            raise ValueError(f"'{TENSOR}' is {info['dtype']} {shape}, not float32 [E + 1, P]")
        if shape != [meta["epochs"] + 1, meta["num_params"]]:
            raise ValueError(f"'{TENSOR}' has shape {shape}, metadata says otherwise")
        if end - begin != 4 * shape[0] * shape[1] or 8 + header_len + end != size:
            raise ValueError(f"{size} bytes, expected {8 + header_len + end}")
    except FileNotFoundError:
        raise DistillError(f"expert file {path} not found") from None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise DistillError(f"expert file {path} is truncated or corrupt ({e}); {redo}") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise DistillError(f"expert file {path} is from a newer datadistill; upgrade it")
    return meta


class ExpertBank:
    """The experts of one folder, read lazily: only the two epochs a step needs are loaded.

    Args:
        folder: a folder written by `train_experts` (`distill experts`).

    Raises:
        DistillError: no expert files, a corrupt one, or experts that disagree on the
            dataset, architecture, epochs or parameter layout.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.paths = sorted(self.folder.glob(PATTERN)) if self.folder.is_dir() else []
        if not self.paths:
            raise DistillError(f"no expert trajectories in {self.folder}")
        self.meta = [read_metadata(p) for p in self.paths]
        keys = ("dataset", "arch", "net_config", "epochs", "num_params", "layout")
        first = self.meta[0]
        for p, m in zip(self.paths[1:], self.meta[1:], strict=True):
            bad = [k for k in keys if m.get(k) != first.get(k)]
            if bad:
                raise DistillError(
                    f"{p} differs from {self.paths[0]} in {', '.join(bad)}; keep one kind of "
                    f"expert per folder"
                )

    def __len__(self) -> int:
        return len(self.paths)

    def one_off(self) -> dict:
        """What the experts cost before distillation starts (`datadistill.evaluate` shows it
        beside the result): their count, training seconds (None when a file predates the
        record) and bytes on disk."""
        seconds = [m.get("train_seconds") for m in self.meta]
        return {
            "kind": f"{len(self)} experts",
            "seconds": None if None in seconds else round(sum(seconds), 1),
            "bytes": sum(p.stat().st_size for p in self.paths),
        }

    @property
    def epochs(self) -> int:
        """Training epochs per expert (each trajectory has epochs + 1 rows)."""
        return int(self.meta[0]["epochs"])

    @property
    def num_params(self) -> int:
        return int(self.meta[0]["num_params"])

    @property
    def layout(self) -> list[list]:
        return self.meta[0]["layout"]

    @property
    def dataset(self) -> str:
        return self.meta[0]["dataset"]

    def epoch(self, expert: int, epoch: int) -> torch.Tensor:
        """The flat parameters [P] of `expert` after `epoch` epochs (0: its initialisation)."""
        return self.epochs_of(expert, [epoch])[0]

    def epochs_of(self, expert: int, epochs: list[int]) -> list[torch.Tensor]:
        """Several epochs of one expert, reading only those rows of its file."""
        if not 0 <= expert < len(self):
            raise IndexError(f"expert {expert} of {len(self)}")
        bad = [e for e in epochs if not 0 <= e <= self.epochs]
        if bad:
            raise IndexError(f"epochs {bad} outside 0..{self.epochs}")
        path = self.paths[expert]
        try:
            with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
                rows = f.get_slice(TENSOR)
                return [rows[e : e + 1][0].clone() for e in epochs]
        except (safetensors.SafetensorError, OSError, RuntimeError) as e:
            raise DistillError(
                f"expert file {path} became unreadable ({e}); re-run `distill experts`"
            ) from None

    def describe(self) -> dict:
        """What the experts are, for messages and run metadata."""
        m = self.meta[0]
        return {"folder": str(self.folder), "num": len(self)} | {
            k: m.get(k) for k in ("dataset", "arch", "net_config", "epochs", "lr")
        }
