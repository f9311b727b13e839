"""The command line, end to end on digits, and its one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from datadistill.cli.main import main
from datadistill.errors import DistillError


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dm" in out and "fashion-mnist" in out and "resnet18" in out


@pytest.fixture(scope="module")
def summary_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    argv = [
        "run",
        "--method",
        "dm",
        "--ipc",
        "1",
        "--iterations",
        "2",
        "--out",
        str(out),
        "--set",
        "batch_real=8",
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    return out / "summary.safetensors"


def test_run_eval_show_export(summary_file, tmp_path, capsys):
    results = tmp_path / "r.json"
    argv = [
        "eval",
        str(summary_file),
        "--arch",
        "convnet,mlp",
        "--runs",
        "1",
        "--epochs",
        "2",
        "--results",
        str(results),
        "--quiet",
    ]
    assert main(argv) == 0
    rows = json.loads(results.read_text())
    assert [r["arch"] for r in rows] == ["convnet", "mlp"]
    assert rows[0]["method"] == "dm" and rows[0]["command"].startswith("distill eval")
    assert main(["show", str(summary_file), "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        main(["export", str(summary_file), "--format", "npz", "-o", str(tmp_path / "s.npz")]) == 0
    )
    assert np.load(tmp_path / "s.npz")["images"].shape == (10, 1, 8, 8)
    assert main(["export", str(summary_file), "--format", "png", "-o", str(tmp_path / "png")]) == 0
    assert len(list((tmp_path / "png").glob("*.png"))) == 10


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["run", "--method", "nope"], "unknown method 'nope'"),
        (["run", "--method", "dm", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["run", "--method", "random", "--ipc", "0"], "--ipc 0 is out of range"),
        (["run", "--method", "random", "--ipc", "500"], "--ipc 500 is out of range"),
        (["run", "--method", "dm", "--set", "lr_img"], "--set expects KEY=VALUE"),
        (["run", "--method", "dm", "--set", "iterations=-3"], "--set iterations must be >= 0"),
        (["privacy", "run", "--epsilon", "0"], "epsilon must be positive"),
    ],
)
def test_bad_input_gives_one_line(argv, phrase, capsys):
    assert main(argv + ["--quiet"]) == 2
    assert phrase in _err(capsys)
    assert not Path("runs").exists()  # a refused run leaves no folder behind


def test_missing_dataset(tmp_path, capsys):
    argv = ["run", "--method", "random", "--dataset", "mnist", "--data-root", str(tmp_path)]
    assert main(argv) == 2
    assert "not found" in _err(capsys)


def test_corrupt_and_truncated_summary(summary_file, tmp_path, capsys):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(summary_file.read_bytes()[:200])
    assert main(["eval", str(cut)]) == 2
    assert "cut.safetensors" in _err(capsys)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    assert main(["show", str(junk)]) == 2
    _err(capsys)


def test_unknown_architecture(summary_file, capsys):
    assert main(["eval", str(summary_file), "--arch", "convnet,vit"]) == 2
    assert "unknown architecture 'vit'" in _err(capsys)


def test_parse_settings_is_the_one_set_parser():
    """`--set` for every modality and for apps' commands (`distill continual --set`)."""
    from datadistill.cli.options import parse_settings

    assert parse_settings(["lr_img=0.1", " users = 4 ", "path=a=b"]) == {
        "lr_img": "0.1",
        "users": "4",
        "path": "a=b",
    }
    with pytest.raises(DistillError, match="--set expects KEY=VALUE, got 'lr_img'"):
        parse_settings(["lr_img"])
    assert main(["run", "--method", "dm", "--set", "lr_img", "--quiet"]) == 2
