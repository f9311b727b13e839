"""The dataset registry: the embedded default, and every loader on small fake files."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from datadistill import data
from datadistill.errors import DistillError


def test_digits_split_and_normalisation(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert abs(float(digits.x_train.mean())) < 0.05
    assert abs(float(digits.x_train.std()) - 1) < 0.1
    assert sum(digits.class_counts()) == 1437
    for c in range(10):
        assert (digits.y_train[digits.class_index(c)] == c).all()


def test_sample_per_class_is_grouped_by_class(digits, gen):
    x = digits.sample_per_class(5, gen)
    assert x.shape == (50, 1, 8, 8)
    # every sampled image is a training image of the right class
    for c in range(10):
        block = x[c * 5 : (c + 1) * 5].flatten(1)
        pool = digits.x_train[digits.class_index(c)].flatten(1)
        dist = torch.cdist(block, pool, compute_mode="donot_use_mm_for_euclid_dist")
        assert (dist.min(1).values < 1e-6).all()


def test_sample_more_than_a_class_has_uses_replacement(digits, gen):
    assert digits.sample_per_class(500, gen).shape == (5000, 1, 8, 8)


def test_holdout_carves_a_stratified_validation_split_from_train(digits):
    split = data.holdout(digits, 20, seed=3)
    assert split.class_counts() == [n - 20 for n in digits.class_counts()]
    assert torch.bincount(split.y_test).tolist() == [20] * 10
    # held-out images come from train and are no longer in it; the test set is untouched
    dist = torch.cdist(split.x_test.flatten(1), split.x_train.flatten(1))
    assert (dist.min(1).values > 0).sum() >= 0.9 * len(split.y_test)  # digits has duplicates
    assert torch.equal(data.holdout(digits, 20, seed=3).y_test, split.y_test)
    with pytest.raises(DistillError, match="cannot hold out 500 images per class"):
        data.holdout(digits, 500)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DistillError, match="unknown dataset 'nope'.*digits"):
        data.load("nope")


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


def _fake_idx_folder(folder, n_train=40, n_test=20, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(
            folder / f"{split}-images-idx3-ubyte{ext}", rng.integers(0, 255, (n, 28, 28)), gz
        )
        _write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", np.arange(n) % 10, gz)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_idx_files(tmp_path, gz):
    _fake_idx_folder(tmp_path, gz=gz)
    d = data.load("fashion-mnist", root=tmp_path)
    assert d.x_train.shape == (40, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert d.spec.dsa_strategy.count("flip") == 0


def test_mnist_in_torchvision_layout(tmp_path):
    _fake_idx_folder(tmp_path / "MNIST" / "raw")
    assert data.load("mnist", root=tmp_path).y_train.tolist()[:3] == [0, 1, 2]


def test_truncated_idx_file_is_refused(tmp_path):
    _fake_idx_folder(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(DistillError, match="truncated"):
        data.load("mnist", root=tmp_path)


def test_cifar10_and_cifar100_pickles(tmp_path):
    rng = np.random.default_rng(0)
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        blob = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        pickle.dump(blob, open(c10 / name, "wb"))
    d = data.load("cifar10", root=tmp_path)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32)
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    for name in ("train", "test"):
        blob = {b"data": rng.integers(0, 255, (6, 3072), dtype=np.uint8), b"fine_labels": [5] * 6}
        pickle.dump(blob, open(c100 / name, "wb"))
    d = data.load("cifar100", root=tmp_path)
    assert d.spec.num_classes == 100 and d.y_train.tolist() == [5] * 6


def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        x = rng.integers(0, 255, (32, 32, 3, 5), dtype=np.uint8)
        savemat(
            tmp_path / "svhn" / f"{split}_32x32.mat",
            {"X": x, "y": np.array([[10], [1], [2], [3], [4]])},
        )
    d = data.load("svhn", root=tmp_path)
    assert d.x_train.shape == (5, 3, 32, 32)
    assert d.y_train.tolist() == [0, 1, 2, 3, 4]  # label 10 means digit 0


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "svhn"])
def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, name):
    with pytest.raises(DistillError, match=r"not found \(looked in: .*--download"):
        data.load(name, root=tmp_path)


def test_missing_fashion_mnist_points_to_make_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FMNIST", tmp_path / "nowhere")
    monkeypatch.setattr(data, "DEFAULT_ROOT", tmp_path / "data")
    monkeypatch.delenv("DATADISTILL_DATA", raising=False)
    with pytest.raises(DistillError, match="make data"):
        data.load("fashion-mnist")


def test_a_named_empty_folder_is_refused_not_bypassed(tmp_path, monkeypatch):
    """Another copy (the Debian package's, here a fake one) must not stand in for it."""
    _fake_idx_folder(tmp_path / "installed")
    monkeypatch.setattr(data, "DEBIAN_FMNIST", tmp_path / "installed")
    monkeypatch.delenv("DATADISTILL_DATA", raising=False)
    assert len(data.load("fashion-mnist").y_train) == 40  # none named: the installed copy
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DistillError, match=f"not found \\(looked in: {empty}, .*leave out"):
        data.load("fashion-mnist", root=empty)
    monkeypatch.setenv("DATADISTILL_DATA", str(empty))  # named by the environment: the same
    with pytest.raises(DistillError, match="--download to fetch them there"):
        data.load("fashion-mnist")
    _fake_idx_folder(empty, n_train=30)  # once there, the named copy is the one read
    assert len(data.load("fashion-mnist", root=empty).y_train) == 30
