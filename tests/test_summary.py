"""Summary file format: exact round trips, readability without the library, refusals."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch

from datadistill.errors import DistillError, SummaryFormatError
from datadistill.spec import DataSpec
from datadistill.summary import Summary, count_bytes
from datadistill.summary_file import FORMAT_VERSION

SPEC = DataSpec(
    name="fashion-mnist", channels=1, size=28, num_classes=10, mean=(0.2860,), std=(0.3530,)
)
RGB = DataSpec(
    name="cifar10",
    channels=3,
    size=8,
    num_classes=4,
    mean=(0.49, 0.48, 0.45),
    std=(0.25, 0.24, 0.26),
    dsa_strategy="crop",
)


def make(spec: DataSpec = SPEC, *, ipc: int = 2, soft: bool = False, **kw) -> Summary:
    g = torch.Generator().manual_seed(0)
    n = ipc * spec.num_classes
    images = torch.randn(n, *spec.shape, generator=g)
    if soft:
        labels = torch.randn(n, spec.num_classes, generator=g)
    else:
        labels = torch.arange(spec.num_classes).repeat_interleave(ipc)
    return Summary(images=images, labels=labels, spec=spec, method="dm", ipc=ipc, **kw)


def assert_same(a: Summary, b: Summary) -> None:
    assert torch.equal(a.images, b.images) and a.images.dtype == b.images.dtype
    assert torch.equal(a.labels, b.labels) and a.labels.dtype == b.labels.dtype
    for name in (
        "spec",
        "method",
        "ipc",
        "objective",
        "parameterisation",
        "stored_bytes",
        "config",
        "seed",
        "extra",
        "created",
    ):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("params", "preprocess"):
        da, db = getattr(a, name), getattr(b, name)
        assert da.keys() == db.keys()
        for k in da:
            assert torch.equal(da[k], db[k]) and da[k].dtype == db[k].dtype


# -- round trips ----------------------------------------------------------------------


def test_round_trip_hard_labels(tmp_path: Path) -> None:
    s = make(objective="distribution", config={"lr_img": 1.0, "iters": [1, 2]}, seed=7)
    out = s.save(tmp_path / "sub" / "dir" / "s.safetensors")
    assert out.is_file() and s.created.endswith("+00:00")
    back = Summary.load(out)
    assert_same(s, back)
    assert not back.soft_labels and back.n == 20
    assert torch.equal(back.hard_labels(), s.labels)


def test_round_trip_soft_labels_params_preprocess_extra(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    params = {
        "bases": torch.randn(3, 3, 4, 4, generator=g),
        "codes": torch.randint(0, 255, (8, 3), generator=g, dtype=torch.uint8),
    }
    preprocess = {"zca": torch.randn(192, 192, dtype=torch.float64, generator=g)}
    s = make(
        RGB,
        soft=True,
        parameterisation="factorised",
        params=params,
        preprocess=preprocess,
        extra={"syn_lr": 0.01, "note": "ü"},
        stored_bytes=1234,
    )
    back = Summary.load(s.save(tmp_path / "s.safetensors"))
    assert_same(s, back)
    assert back.soft_labels and back.stored_bytes == 1234
    assert torch.equal(back.hard_labels(), s.labels.argmax(dim=1))
    assert back.spec.dsa_strategy == "crop"


def test_readable_without_library(tmp_path: Path) -> None:
    s = make(params={"p": torch.ones(2)}, preprocess={"zca": torch.eye(3)}, extra={"a": 1})
    path = s.save(tmp_path / "s.safetensors")
    with safetensors.safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == {"images", "labels", "param.p", "preprocess.zca"}
        meta = json.loads(f.metadata()["datadistill"])
        assert torch.equal(f.get_tensor("images"), s.images)
        assert f.get_tensor("images").dtype == torch.float32
        assert f.get_tensor("labels").dtype == torch.int64
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["dataset"] == "fashion-mnist" and meta["num_classes"] == 10
    assert meta["image_shape"] == [1, 28, 28]
    assert meta["mean"] == [0.2860] and meta["std"] == [0.3530]
    assert meta["method"] == "dm" and meta["ipc"] == 2 and meta["extra"] == {"a": 1}
    for key in (
        "objective",
        "parameterisation",
        "stored_bytes",
        "config",
        "seed",
        "library_version",
        "created",
    ):
        assert key in meta


def test_stored_bytes_default_is_hand_count() -> None:
    s = make(params={"p": torch.zeros(5, dtype=torch.float16)}, preprocess={"zca": torch.eye(784)})
    assert s.stored_bytes == 20 * 784 * 4 + 20 * 8 + 5 * 2
    assert count_bytes(torch.zeros(3, dtype=torch.int64), torch.zeros(2, 2)) == 3 * 8 + 4 * 4


def test_dtypes_are_normalised() -> None:
    s = Summary(
        images=torch.zeros(2, 1, 28, 28, dtype=torch.float64),
        labels=torch.tensor([0, 1], dtype=torch.int32),
        spec=SPEC,
        method="dm",
        ipc=1,
    )
    assert s.images.dtype == torch.float32 and s.labels.dtype == torch.int64


# -- refusals on load -----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SummaryFormatError, match="not found") as e:
        Summary.load(tmp_path / "nope.safetensors")
    assert "nope.safetensors" in str(e.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = make().save(tmp_path / "s.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SummaryFormatError, match="truncated or corrupt"):
        Summary.load(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = make().save(tmp_path / "s.safetensors")
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    path.write_bytes(path.read_bytes()[: 8 + header_len // 2])
    with pytest.raises(SummaryFormatError, match="header unreadable"):
        Summary.load(path)


@pytest.mark.parametrize(
    "data", [b"", b"abc", bytes(range(256)) * 4, struct.pack("<Q", 2) + b"{]" + b"\0" * 16]
)
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(data)
    with pytest.raises(SummaryFormatError, match="truncated or corrupt"):
        Summary.load(path)


def test_foreign_safetensors_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(SummaryFormatError, match="not a datadistill summary"):
        Summary.load(path)


def _write_raw(path: Path, meta: str, tensors: dict | None = None) -> Path:
    tensors = (
        tensors
        if tensors is not None
        else {"images": torch.zeros(1, 1, 28, 28), "labels": torch.zeros(1, dtype=torch.int64)}
    )
    safetensors.torch.save_file(tensors, str(path), metadata={"datadistill": meta})
    return path


def test_unreadable_json_metadata(tmp_path: Path) -> None:
    with pytest.raises(SummaryFormatError, match="invalid JSON"):
        Summary.load(_write_raw(tmp_path / "s.safetensors", "{not json"))


def test_newer_format_version(tmp_path: Path) -> None:
    meta = make().metadata() | {"format_version": FORMAT_VERSION + 1}
    with pytest.raises(SummaryFormatError, match="upgrade datadistill"):
        Summary.load(_write_raw(tmp_path / "s.safetensors", json.dumps(meta)))


def test_missing_tensor(tmp_path: Path) -> None:
    meta = json.dumps(make().metadata())
    path = _write_raw(tmp_path / "s.safetensors", meta, {"images": torch.zeros(1, 1, 28, 28)})
    with pytest.raises(SummaryFormatError, match="lacks the 'labels' tensor"):
        Summary.load(path)


def test_missing_metadata_key(tmp_path: Path) -> None:
    meta = make().metadata()
    del meta["method"]
    with pytest.raises(SummaryFormatError, match="lacks key 'method'"):
        Summary.load(_write_raw(tmp_path / "s.safetensors", json.dumps(meta)))


def test_load_validates_content(tmp_path: Path) -> None:
    meta = json.dumps(make().metadata())
    bad = {
        "images": torch.full((1, 1, 28, 28), float("nan")),
        "labels": torch.zeros(1, dtype=torch.int64),
    }
    with pytest.raises(DistillError, match="diverged") as e:
        Summary.load(_write_raw(tmp_path / "s.safetensors", meta, bad))
    assert "s.safetensors" in str(e.value)


# -- refusals on construction -------------------------------------------------------


def test_nan_images() -> None:
    images = torch.zeros(20, 1, 28, 28)
    images[0, 0, :3, 0] = float("nan")
    with pytest.raises(DistillError, match=r"images contain 3 NaN/inf .*diverged.*learning rate"):
        Summary(
            images=images, labels=torch.zeros(20, dtype=torch.int64), spec=SPEC, method="dm", ipc=2
        )


def test_inf_in_soft_labels() -> None:
    labels = torch.zeros(20, 10)
    labels[1, 1] = float("inf")
    with pytest.raises(DistillError, match="labels contain 1 NaN/inf"):
        Summary(images=torch.zeros(20, 1, 28, 28), labels=labels, spec=SPEC, method="dm", ipc=2)


def test_nan_in_params() -> None:
    with pytest.raises(DistillError, match="param 'p' contain 1 NaN/inf"):
        make(params={"p": torch.tensor([1.0, float("nan")])})


def test_wrong_shape() -> None:
    with pytest.raises(
        DistillError,
        match=r"expected \[n, C, H, W\] = \[n, 1, 28, 28\] for "
        r"fashion-mnist",
    ):
        Summary(
            images=torch.zeros(2, 3, 32, 32),
            labels=torch.zeros(2, dtype=torch.int64),
            spec=SPEC,
            method="dm",
            ipc=1,
        )


def test_label_out_of_range() -> None:
    with pytest.raises(DistillError, match=r"1 labels outside \[0, 10\)"):
        Summary(
            images=torch.zeros(2, 1, 28, 28),
            labels=torch.tensor([0, 10]),
            spec=SPEC,
            method="dm",
            ipc=1,
        )


@pytest.mark.parametrize(
    "labels",
    [
        torch.zeros(3, dtype=torch.int64),
        torch.zeros(2, 9),
        torch.zeros(2, 10, 1),
        torch.tensor([True, False]),
    ],
)
def test_bad_labels(labels: torch.Tensor) -> None:
    with pytest.raises(DistillError, match="labels"):
        Summary(images=torch.zeros(2, 1, 28, 28), labels=labels, spec=SPEC, method="dm", ipc=1)


def test_empty() -> None:
    with pytest.raises(DistillError, match="empty"):
        Summary(
            images=torch.zeros(0, 1, 28, 28),
            labels=torch.zeros(0, dtype=torch.int64),
            spec=SPEC,
            method="dm",
            ipc=1,
        )


def test_infinite_settings_are_written_as_strings(tmp_path: Path) -> None:
    make(config={"epsilon": float("inf"), "lo": [float("-inf")]}).save(tmp_path / "s.safetensors")
    assert Summary.load(tmp_path / "s.safetensors").config == {"epsilon": "inf", "lo": ["-inf"]}
    with pytest.raises(DistillError, match="JSON"):
        make(config={"x": float("nan")}).save(tmp_path / "t.safetensors")


def test_unserialisable_config(tmp_path: Path) -> None:
    with pytest.raises(DistillError, match="JSON"):
        make(config={"f": object()}).save(tmp_path / "s.safetensors")
    assert list(tmp_path.iterdir()) == []


# -- atomic write -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["safetensors.torch.save", "os.replace"])
def test_failed_save_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    path = tmp_path / "s.safetensors"
    make().save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(target, boom)
    with pytest.raises(OSError, match="disk full"):
        make(ipc=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


def test_every_committed_summary_still_loads() -> None:
    """The result rows cite these files by path and sha256: whatever moves in the code, the
    one file module must read every one of them, each through its modality's loader."""
    import subprocess

    from datadistill.modality import open_summary

    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "ls-files", "*.safetensors"], cwd=root, capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    # resume state is safetensors too (datadistill.checkpoint), but not a summary
    files = [root / p for p in listed if not Path(p).name.startswith("checkpoint")]
    kinds = set()
    for path in files:
        kind, summary = open_summary(path)
        assert summary.n >= 1, path
        kinds.add(kind.name)
    assert len(files) >= 1 and "image" in kinds
