"""Your own images as a dataset: `--dataset PATH` for a folder of class folders or an `.npz`.

A folder holds one sub-folder of images per class (the sorted folder names are the classes),
read with PIL and resized to one square size (given, or the most common shorter side),
grayscale when every image is. An `.npz` holds `x` ([n, H, W], [n, H, W, C] or [n, C, H, W],
uint8 or floats in [0, 1]) and `y` (any integer or string labels), and optionally `x_test`,
`y_test`; without them the test split is `test_fraction` of every class (at least one image
of a class with two or more), drawn with `seed`, so the same file always splits the same way
and `distill eval` rebuilds the split the summary was made on.

The per-channel mean and std are computed on the training split and become the `DataSpec`,
which the summary's metadata records; the spec's name is the file's absolute path, which is
how `distill eval` finds the data again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from datadistill.errors import DistillError
from datadistill.spec import DataSpec

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
WITH_FLIP = "color_crop_cutout_flip_scale_rotate"  # DSA's strategy for natural images


def is_own(name: str | Path) -> bool:
    """Whether `--dataset` names a folder or an .npz rather than a registered dataset."""
    path = Path(name)
    return path.is_dir() or (path.suffix == ".npz" and path.is_file())


def read(path: str | Path, *, size: int | None = None, test_fraction: float = 0.2, seed: int = 0):
    """(spec, x_train, y_train, x_test, y_test) of the data at `path`: images [n, C, S, S] in
    [0, 1] and the spec with the training split's mean and std (`datadistill.data.load`
    normalises them, as it does every registered dataset's)."""
    path = Path(path).resolve()
    if not 0 < test_fraction < 1:
        raise DistillError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if path.is_dir():
        x, y, classes = read_folder(path, size)
        x_test = y_test = None
    else:
        x, y, x_test, y_test, classes = read_npz(path)
    if x_test is None:
        train, test = split(y, test_fraction, seed)
        x, y, x_test, y_test = x[train], y[train], x[test], y[test]
    mean = tuple(float(v) for v in x.mean(axis=(0, 2, 3)))
    std = tuple(max(float(v), 1e-6) for v in x.std(axis=(0, 2, 3)))
    spec = DataSpec(str(path), x.shape[1], x.shape[-1], len(classes), mean, std, WITH_FLIP)
    return spec, x, y, x_test, y_test


def read_folder(folder: Path, size: int | None):
    """Images [n, C, S, S] in [0, 1], labels, class names from `folder/CLASS/*.png`."""
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [
        (f, c)
        for c, name in enumerate(classes)
        for f in sorted((folder / name).iterdir())
        if f.suffix.lower() in SUFFIXES
    ]
    if len(classes) < 2 or not files:
        raise DistillError(
            f"--dataset {folder}: expected a folder with one sub-folder of images per class "
            f"(at least two classes); found {len(classes)} class folders, {len(files)} images"
        )
    images = [Image.open(f) for f, _ in files]
    gray = all(im.mode in ("1", "L", "LA", "I", "I;16", "F") for im in images)
    size = size or Counter(min(im.size) for im in images).most_common(1)[0][0]
    mode = "L" if gray else "RGB"
    x = np.stack(
        [np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR)) for im in images]
    )
    x = (x[:, None] if gray else x.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0
    return x, np.array([c for _, c in files]), classes


def read_npz(path: Path):
    """x, y (and x_test, y_test or None) from an .npz, as [n, C, H, W] floats in [0, 1]."""
    with np.load(path, allow_pickle=False) as f:
        missing = {"x", "y"} - set(f.files)
        if missing:
            raise DistillError(
                f"--dataset {path} has no {', '.join(sorted(missing))}; it holds "
                f"{', '.join(f.files) or 'nothing'} (want x, y and optionally x_test, y_test)"
            )
        arrays = {k: f[k] for k in f.files}
    classes, y = np.unique(arrays["y"], return_inverse=True)
    x = images(path, "x", arrays["x"])
    if len(x) != len(y):
        raise DistillError(f"--dataset {path}: x has {len(x)} images but y {len(y)} labels")
    x_test = y_test = None
    if "x_test" in arrays and "y_test" in arrays:
        x_test = images(path, "x_test", arrays["x_test"])
        index = {c: i for i, c in enumerate(classes.tolist())}
        unknown = set(arrays["y_test"].tolist()) - set(index)
        if unknown:
            raise DistillError(f"--dataset {path}: y_test has labels not in y: {sorted(unknown)}")
        y_test = np.array([index[v] for v in arrays["y_test"].tolist()])
    return x, y, x_test, y_test, [str(c) for c in classes]


def images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """`x` as float32 [n, C, H, W] in [0, 1]; [n, H, W], NHWC and NCHW accepted."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise DistillError(
            f"--dataset {path}: {key} has shape {list(x.shape)}; want [n, H, W], "
            "[n, H, W, C] or [n, C, H, W] with C 1 or 3"
        )
    if x.shape[2] != x.shape[3]:
        raise DistillError(
            f"--dataset {path}: {key}'s images are {x.shape[2]}x{x.shape[3]}; square images "
            "only (resize them, or use a folder of images, which is resized for you)"
        )
    if x.dtype == np.uint8:
        return x[:, :3].astype(np.float32) / 255.0
    x = x[:, :3].astype(np.float32)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DistillError(
            f"--dataset {path}: {key} holds floats in [{x.min():.3g}, {x.max():.3g}]; "
            "store uint8 pixels or floats in [0, 1]"
        )
    return x


def split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) row indices: `test_fraction` of each class, drawn by `seed`."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        n = max(1, round(test_fraction * len(rows))) if len(rows) > 1 else 0
        test.extend(rows[:n])
        train.extend(rows[n:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))
