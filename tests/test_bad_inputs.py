"""Bad input at the command line: one line naming the fix, exit 2, no traceback, nothing written.

Each case goes through `distill`'s own entry point (`main(argv)`, one through a subprocess),
as a user meets it; the refusals live below the CLI (RunOptions, the data loader, the summary
reader), so every other front door gets them too.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch as st
import torch

from datadistill import data
from datadistill.cli import main as cli_main
from datadistill.summary import Summary
from datadistill.summary_file import METADATA_KEY

DISTILL = str(Path(sys.executable).parent / "distill")  # the console script a user runs


def _refused(argv, capsys) -> str:
    """Run `distill argv`; assert the one-line refusal and return it."""
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


def test_negative_iterations_are_refused_from_the_shell(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "--method", "dm", "--dataset", "digits", "--ipc", "1"]
    proc = subprocess.run(
        [DISTILL, *argv, "--iterations", "-5", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert err == ["error: --iterations must be >= 0 (0 saves the initial summary), got -5; "
                   "pass e.g. --iterations 100"]  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--checkpoint-every", "0", "--checkpoint-every must be >= 1, got 0"),
        ("--time-limit", "-1", "--time-limit must be >= 0 seconds, got -1.0"),
        ("--eval-every", "-2", "--eval-every must be >= 0"),
    ],
)
def test_other_impossible_run_options_are_refused(flag, value, message, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--quiet"]
    assert message in _refused([*argv, flag, value, "--out", str(out)], capsys)
    assert not out.exists()


def test_an_empty_data_root_is_refused_even_when_fashion_mnist_is_installed(
    tmp_path, monkeypatch, capsys
):
    installed = tmp_path / "installed"  # stands in for the Debian package's copy
    installed.mkdir()
    for stem, shape in (("train-images-idx3-ubyte", (20, 28, 28)), ("t10k-images-idx3-ubyte",
                        (10, 28, 28)), ("train-labels-idx1-ubyte", (20,)),
                        ("t10k-labels-idx1-ubyte", (10,))):  # fmt: skip
        dims = b"".join(d.to_bytes(4, "big") for d in shape)
        body = bytes(int(torch.tensor(shape).prod()))
        (installed / stem).write_bytes(bytes([0, 0, 8, len(shape)]) + dims + body)
    monkeypatch.setattr(data, "DEBIAN_FMNIST", installed)
    monkeypatch.delenv("DATADISTILL_DATA", raising=False)
    empty, out = tmp_path / "empty", tmp_path / "run"
    empty.mkdir()
    argv = ["run", "--method", "dm", "--dataset", "fashion-mnist", "--ipc", "1", "--quiet"]
    err = _refused([*argv, "--data-root", str(empty), "--out", str(out)], capsys)
    assert f"not found (looked in: {empty}, {empty}/FashionMNIST/raw)" in err
    assert "leave out --data-root" in err and str(installed) not in err.split(";")[0]
    assert not out.exists()


# --- crafted summary files -----------------------------------------------------------------------


def _summary(digits, tmp_path) -> Path:
    images = torch.zeros(10, *digits.spec.shape)
    s = Summary(images=images, labels=torch.arange(10), spec=digits.spec, method="dm", ipc=1)
    return s.save(tmp_path / "good.safetensors")


def _crafted(good: Path, tmp_path, *, meta=None, raw=None, tensors=None) -> Path:
    """`good`'s tensors (or `tensors`) under its metadata block changed by `meta`, or with
    `raw` JSON text added under the key "crafted"."""
    blob = st.load_file(str(good))
    with open(good, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    base = json.loads(header["__metadata__"][METADATA_KEY])
    text = json.dumps({**base, **(meta or {})})
    if raw is not None:
        text = text[:-1] + ', "crafted": ' + raw + "}"
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(st.save({**blob, **(tensors or {})}, metadata={METADATA_KEY: text}))
    return path


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


CRAFTED = {
    "huge": ({"meta": {"extra": {"pad": "x" * (2 << 20)}}}, "header"),
    "nested past the parser": ({"raw": _deep(200_000)}, "nested too deep to parse"),
    "nested": ({"raw": _deep(30)}, "deeper than 16"),
    "num_classes a string": ({"meta": {"num_classes": "ten"}}, "num_classes is str 'ten'"),
    "extra a string": ({"meta": {"extra": "x"}}, "extra is str"),
    "stored_bytes a string": ({"meta": {"stored_bytes": "big"}}, "stored_bytes is str"),
    "ipc a bool": ({"meta": {"ipc": True}}, "ipc is bool"),
    "run seconds a string": (
        {"meta": {"extra": {"run": {"seconds": "slow"}}}},
        "extra.run.seconds is str",
    ),
    "mean of strings": ({"meta": {"mean": ["a"]}}, "mean holds non-numbers"),
    "n not the images": ({"meta": {"n": 99}}, "says it holds 99 images but has 10"),
    "fewer labels than images": (
        {"tensors": {"labels": torch.arange(3)}},
        "labels have length 3 but there are 10 images",
    ),
    "labels past num_classes": (
        {"tensors": {"labels": torch.arange(10) + 5}},
        "5 labels outside [0, 10)",
    ),
}


@pytest.mark.parametrize("case", CRAFTED)
@pytest.mark.parametrize("command", ["show", "eval"])
def test_a_crafted_summary_is_refused_on_load(case, command, digits, tmp_path, capsys):
    kwargs, message = CRAFTED[case]
    path = _crafted(_summary(digits, tmp_path), tmp_path, **kwargs)
    png = tmp_path / "grid.png"
    argv = ["show", str(path), "-o", str(png)] if command == "show" else ["eval", str(path)]
    err = _refused([*argv, "--quiet"] if command == "eval" else argv, capsys)
    assert message in err and "crafted.safetensors" in err
    assert len(err) < 400  # one readable line, not a dump of the crafted value
    assert not png.exists()
