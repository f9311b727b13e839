"""Dataset registry: a name gives normalised train/test tensors, a spec and a per-class index.

Every dataset is held in memory as float32 tensors in its normalised space (pixels in
[0, 1], then per-channel mean/std), because distillation samples per-class real batches
thousands of times and a DataLoader per draw would dominate the cost on a CPU.

Files are read directly (IDX for MNIST-likes, pickled batches for CIFAR, .mat for SVHN);
torchvision is used only to download them, so the readers work on any copy of the files,
including the Debian package's recompressed Fashion-MNIST that torchvision's checksum
rejects.
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datadistill import own_data
from datadistill.errors import DistillError
from datadistill.spec import DataSpec

NO_FLIP = "color_crop_cutout_scale_rotate"  # DSA drops flips for digit-like data
WITH_FLIP = "color_crop_cutout_flip_scale_rotate"
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_ROOT = Path("data")  # when no folder is named (--data-root, $DATADISTILL_DATA)


@dataclass
class Dataset:
    """A dataset in memory: normalised tensors plus the index of each class."""

    spec: DataSpec
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    _by_class: list[torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_class = [
            torch.nonzero(self.y_train == c).flatten() for c in range(self.spec.num_classes)
        ]

    def class_index(self, c: int) -> torch.Tensor:
        """Indices into the training set of the examples of class `c`."""
        return self._by_class[c]

    def class_counts(self) -> list[int]:
        return [len(ix) for ix in self._by_class]

    def sample_per_class(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` real images of every class, grouped by class: [K * n, C, H, W].

        Classes with fewer than `n` examples are sampled with replacement, so the result is
        always a rectangular batch that one forward pass can embed.
        """
        return self.x_train[self.rows_per_class(n, generator)]

    def rows_per_class(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The training rows `sample_per_class` takes (same draws from `generator`)."""
        picks = []
        for ix in self._by_class:
            if len(ix) >= n:
                picks.append(ix[torch.randperm(len(ix), generator=generator)[:n]])
            else:
                picks.append(ix[torch.randint(len(ix), (n,), generator=generator)])
        return torch.cat(picks)

    def to(self, device: torch.device | str) -> Dataset:
        """A copy whose tensors live on `device` (keeps sampling off the host on a GPU)."""
        moved = [t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)]
        return Dataset(self.spec, *moved)


_LOADERS: dict[str, tuple[DataSpec, Callable[[Path | None, bool], tuple]]] = {}
_OWN: dict[str, Dataset] = {}  # your own data by absolute path, read once


def register(spec: DataSpec):
    """Register a loader `fn(root, download) -> (x_train, y_train, x_test, y_test)`, e.g.

        @register(DataSpec("my-scans", 1, 32, 4, mean=(0.41,), std=(0.22,)))
        def my_scans(root, download):
            f = np.load((root or Path("data")) / "scans.npz")
            return f["x_train"], f["y_train"], f["x_test"], f["y_test"]

    after which `load("my-scans")` (and `--dataset my-scans` from a plugin) finds it.

    `root` is the folder the user named (None: none named; the loader picks its default).

    Loaders return uint8 or [0, 1] float arrays [N, C, H, W] (or [N, H, W]) and int labels;
    normalisation happens once, in `load`.
    """

    def wrap(fn):
        if spec.name in _LOADERS:
            raise ValueError(f"dataset '{spec.name}' is registered twice")
        _LOADERS[spec.name] = (spec, fn)
        return fn

    return wrap


def available() -> list[str]:
    return sorted(_LOADERS)


def get_spec(name: str) -> DataSpec:
    """The spec of a registered dataset, or of your own data at a path (`own_data`)."""
    if name not in _LOADERS and own_data.is_own(name):
        return load(name).spec
    if name not in _LOADERS:
        raise DistillError(
            f"unknown dataset '{name}'; choose one of: {', '.join(available())} "
            "(see `distill list`)"
        )
    return _LOADERS[name][0]


def load(name: str, *, root: str | Path | None = None, download: bool = False) -> Dataset:
    """Load dataset `name`, normalised, in memory.

    Args:
        name: a registry name (`distill list` shows them).
        root: folder holding the dataset's files; default `$DATADISTILL_DATA` or ./data. A
            folder named here or by `$DATADISTILL_DATA` is used or refused: a copy installed
            elsewhere (Fashion-MNIST's Debian package) is read only when none is named.
        download: let torchvision fetch missing files (needs internet).

    A `name` that is not registered but names a folder of class folders or an .npz loads
    your own data (`datadistill.own_data`), read once per process.
    """
    if name not in _LOADERS and own_data.is_own(name):
        key = str(Path(name).resolve())
        if key not in _OWN:
            spec, xtr, ytr, xte, yte = own_data.read(key)
            _OWN[key] = Dataset(spec, normalise(xtr, spec), labels_tensor(ytr),
                                normalise(xte, spec), labels_tensor(yte))  # fmt: skip
        return _OWN[key]
    spec = get_spec(name)
    named = root or os.environ.get("DATADISTILL_DATA")
    xtr, ytr, xte, yte = _LOADERS[name][1](Path(named) if named else None, download)
    return Dataset(
        spec, normalise(xtr, spec), labels_tensor(ytr), normalise(xte, spec), labels_tensor(yte)
    )


def holdout(data: Dataset, per_class: int, seed: int = 0) -> Dataset:
    """Training set minus `per_class` images of every class, which become the test set.

    Hyperparameters the papers do not publish for a dataset must be chosen without looking
    at its test set; this validation split is what `experiments/cells.py --validation`
    evaluates on. The draw is fixed by `seed`, so every setting of a search sees one split.
    """
    counts = data.class_counts()
    if per_class < 1 or per_class >= min(counts):
        raise DistillError(
            f"cannot hold out {per_class} images per class: the smallest class has "
            f"{min(counts)}; choose 1 to {min(counts) - 1}"
        )
    g = torch.Generator().manual_seed(seed)
    held = torch.cat(
        [
            ix[torch.randperm(len(ix), generator=g)[:per_class]]
            for ix in map(data.class_index, range(data.spec.num_classes))
        ]
    )
    keep = torch.ones(len(data.y_train), dtype=torch.bool)
    keep[held] = False
    return Dataset(
        data.spec, data.x_train[keep], data.y_train[keep], data.x_train[held], data.y_train[held]
    )


def normalise(x, spec: DataSpec) -> torch.Tensor:
    x = torch.from_numpy(np.array(x, copy=True))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


def labels_tensor(y) -> torch.Tensor:
    return torch.from_numpy(np.array(y, dtype=np.int64))


# --- the embedded default -----------------------------------------------------------------


@register(DataSpec("digits", 1, 8, 10, (0.3032,), (0.4067,), NO_FLIP))
def _digits(root: Path | None, download: bool):
    """scikit-learn's 8x8 digits (1,797 images), shipped with scikit-learn: no download."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(
        x, d.target, test_size=0.2, stratify=d.target, random_state=0
    )
    return xtr, ytr, xte, yte


# --- IDX files: MNIST and Fashion-MNIST ----------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DistillError(f"{path} is not an unsigned-byte IDX file; re-download it")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DistillError(f"{path} is truncated ({data.size} of {np.prod(dims)} bytes)")
    return data.reshape(dims)


_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(folder: Path) -> dict[str, Path] | None:
    found = {}
    for split, names in _IDX_NAMES.items():
        for i, stem in enumerate(names):
            hit = next(
                (folder / (stem + s) for s in ("", ".gz") if (folder / (stem + s)).exists()), None
            )
            if hit is None:
                return None
            found[f"{split}{i}"] = hit
    return found


def _idx_dataset(
    name: str, tv_class: str, folders: list[Path], root: Path, download: bool, hint: str
):
    if root.exists() and not root.is_dir():
        raise DistillError(f"--data-root {root} is a file; pass the folder holding the files")
    looked = list(folders)
    for folder in folders:
        files = _find_idx(folder)
        if files:
            return tuple(read_idx(files[k]) for k in ("train0", "train1", "test0", "test1"))
    if download:
        _torchvision_download(tv_class, root, train_and_test=True)
        files = _find_idx(root / tv_class / "raw")
        if files:
            return tuple(read_idx(files[k]) for k in ("train0", "train1", "test0", "test1"))
    raise _missing(name, looked, hint)


def _torchvision_download(cls_name: str, root: Path, *, train_and_test: bool = True, **kw) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        if cls_name == "SVHN":
            for split in ("train", "test"):
                cls(str(root / "svhn"), split=split, download=True)
        else:
            for train in (True, False) if train_and_test else (True,):
                cls(str(root), train=train, download=True)
    except Exception as e:  # no network, checksum mismatch, disk full ...
        raise DistillError(
            f"could not download {cls_name} into {root} ({type(e).__name__}: {e}); "
            "put the files there yourself or pass --data-root"
        ) from e


def _missing(name: str, looked: list[Path], hint: str) -> DistillError:
    where = ", ".join(str(p) for p in looked)
    return DistillError(f"dataset '{name}' not found (looked in: {where}); {hint}")


@register(DataSpec("fashion-mnist", 1, 28, 10, (0.2861,), (0.3530,), NO_FLIP))
def _fashion_mnist(root: Path | None, download: bool):
    """Fashion-MNIST (Xiao et al., 2017): the named folder, or else ./data, the Debian package,
    then torchvision. A named folder is never bypassed for another copy: a user who names
    one means that data (a modified copy, say), and silently reading another would mislead.

    DSA's reference code drops flips for every MNIST-like set, Fashion-MNIST included.
    """
    if root is not None:
        hint = (
            "copy its IDX files there, pass --download to fetch them there, or leave out "
            f"--data-root (and $DATADISTILL_DATA) to use the installed copy in {DEBIAN_FMNIST}"
        )
        folders = [root, root / "FashionMNIST" / "raw"]
        return _idx_dataset("fashion-mnist", "FashionMNIST", folders, root, download, hint)
    folders = [DEFAULT_ROOT, DEFAULT_ROOT / "FashionMNIST" / "raw", DEBIAN_FMNIST]
    hint = (
        "run `make data` (apt-get install dataset-fashion-mnist, needs root) or pass "
        "--download to fetch it with torchvision"
    )
    return _idx_dataset("fashion-mnist", "FashionMNIST", folders, DEFAULT_ROOT, download, hint)


@register(DataSpec("mnist", 1, 28, 10, (0.1307,), (0.3081,), NO_FLIP))
def _mnist(root: Path | None, download: bool):
    root = root or DEFAULT_ROOT
    folders = [root, root / "MNIST" / "raw"]
    hint = "pass --download to fetch it with torchvision, or copy the IDX files there"
    return _idx_dataset("mnist", "MNIST", folders, root, download, hint)


# --- CIFAR: pickled batches ----------------------------------------------------------------


def _read_cifar(folder: Path, train_files: list[str], test_files: list[str], label_key: bytes):
    def read(names):
        xs, ys = [], []
        for n in names:
            with open(folder / n, "rb") as f:
                d = pickle.load(f, encoding="bytes")
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key]))
        return np.concatenate(xs), np.concatenate(ys)

    return (*read(train_files), *read(test_files))


def _cifar(name, tv_class, sub, train_files, test_files, label_key, root, download):
    root = root or DEFAULT_ROOT
    folder = root / sub
    need = [folder / n for n in train_files + test_files]
    if not all(p.exists() for p in need) and download:
        _torchvision_download(tv_class, root)
    if not all(p.exists() for p in need):
        raise _missing(name, [folder], "pass --download to fetch it with torchvision")
    return _read_cifar(folder, train_files, test_files, label_key)


@register(
    DataSpec("cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), WITH_FLIP)
)
def _cifar10(root: Path | None, download: bool):
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return _cifar(
        "cifar10",
        "CIFAR10",
        "cifar-10-batches-py",
        train,
        ["test_batch"],
        b"labels",
        root,
        download,
    )


@register(
    DataSpec("cifar100", 3, 32, 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762), WITH_FLIP)
)
def _cifar100(root: Path | None, download: bool):
    return _cifar(
        "cifar100",
        "CIFAR100",
        "cifar-100-python",
        ["train"],
        ["test"],
        b"fine_labels",
        root,
        download,
    )


# --- SVHN: MATLAB files --------------------------------------------------------------------


@register(DataSpec("svhn", 3, 32, 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), NO_FLIP))
def _svhn(root: Path | None, download: bool):
    """SVHN (Netzer et al., 2011); digits, so no flips. Label 10 in the files means digit 0."""
    from scipy.io import loadmat

    root = root or DEFAULT_ROOT
    folder = root / "svhn"
    need = [folder / "train_32x32.mat", folder / "test_32x32.mat"]
    if not all(p.exists() for p in need) and download:
        _torchvision_download("SVHN", root)
    if not all(p.exists() for p in need):
        raise _missing("svhn", [folder], "pass --download to fetch it with torchvision")
    out = []
    for p in need:
        m = loadmat(p)
        out += [np.transpose(m["X"], (3, 2, 0, 1)), np.asarray(m["y"]).flatten() % 10]
    return tuple(out)
