"""A newcomer's first hour (issue 45): strict inputs, a fast start, one config file per
experiment, your own data and network, quiet third-party libraries."""

import json
import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml

from datadistill import catalog, loop, methods, own_data
from datadistill import data as datasets
from datadistill.cli.main import main, parse
from datadistill.cli.options import parse_settings
from datadistill.cli.quiet import silence_third_party
from datadistill.summary_header import read_metadata

TINY = ["--ipc", "1", "--iterations", "1", "--quiet", "--device", "cpu", "--set", "batch_real=8"]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _run(out, *extra, method="dm") -> int:
    return main(["run", "--method", method, "--out", str(out), *TINY, *extra])


# --- strict inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair, expected",
    [("dsa=Ture", "a boolean"), ("lr_img=abc", "a number"), ("iterations=1.5", "an integer")],
)
def test_set_values_are_typed_by_their_field(pair, expected, tmp_path, capsys):
    assert _run(tmp_path / "r", "--set", pair) == 2
    err = _err(capsys)
    assert pair in err and expected in err
    assert not (tmp_path / "r" / "run_config.yaml").exists()  # nothing recorded for a typo


def test_booleans_read_every_spelling():
    dm = methods.get("dm")
    for text, value in (("No", False), ("TRUE", True), ("0", False), ("yes", True)):
        assert dm.config("digits", {"dsa": text}).dsa is value


def test_out_of_another_run_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(out) == 0
    capsys.readouterr()
    assert _run(out, "--seed", "1") == 2
    assert "holds another run (seed 0 (now 1))" in _err(capsys)
    assert _run(out, method="dc") == 2
    assert "method dm (now dc)" in _err(capsys)
    assert _run(out, "--seed", "1", "--force") == 0
    assert read_metadata(out / "summary.safetensors")["seed"] == 1


def test_resume_without_checkpoint_is_refused(tmp_path, capsys):
    assert _run(tmp_path / "empty", "--resume") == 2
    assert "holds no checkpoint.safetensors" in _err(capsys)


# --- one config file per experiment -----------------------------------------------------


def _without_file(args):
    return {k: v for k, v in vars(args).items() if k not in ("config_file", "effective_options")}


def test_config_file_equals_the_same_flags(tmp_path):
    flags = ["run", "--method", "dm", "--ipc", "2", "--iterations", "5", "--time-limit", "60",
             "--quiet", "--out", "x", "--set", "lr_img=0.5", "--set", "dsa=false"]  # fmt: skip
    values = {"method": "dm", "ipc": 2, "iterations": 5, "time_limit": 60, "quiet": True,
              "out": "x", "set": {"lr_img": 0.5, "dsa": False}}  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    by_flags, _ = parse(flags)
    by_file, _ = parse(["run", "--config", str(path)])
    assert _without_file(by_file) == _without_file(by_flags)
    dm = methods.get("dm")
    typed = [dm.config("digits", parse_settings(a.set)) for a in (by_flags, by_file)]
    assert typed[0] == typed[1] and typed[0].dsa is False and typed[0].lr_img == 0.5
    flag_wins, _ = parse(["run", "--config", str(path), "--ipc", "3"])
    assert flag_wins.ipc == 3 and flag_wins.iterations == 5


def test_config_file_for_an_app_command(tmp_path):
    flags = ["continual", "--memory", "5", "--strategies", "naive", "--seeds", "1"]
    path = tmp_path / "c.yaml"
    path.write_text("memory: 5\nstrategies: naive\nseeds: 1\n")
    by_flags, _ = parse(flags)
    by_file, _ = parse(["continual", "--config", str(path)])
    assert _without_file(by_file) == _without_file(by_flags)


def test_config_file_refuses_unknown_keys(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("methd: dm\n")
    assert main(["run", "--config", str(path)]) == 2
    err = _err(capsys)
    assert "unknown option(s) methd" in err and "method" in err


def test_run_writes_its_config_and_it_runs_again(tmp_path):
    out = tmp_path / "r"
    assert _run(out, "--set", "lr_img=0.5") == 0
    written = yaml.safe_load((out / "run_config.yaml").read_text())
    assert written["method"] == "dm" and written["set"] == {"batch_real": "8", "lr_img": "0.5"}
    again, _ = parse(["run", "--config", str(out / "run_config.yaml")])
    assert again.method == "dm" and sorted(again.set) == ["batch_real=8", "lr_img=0.5"]


# --- help, start-up, warnings, threads ----------------------------------------------------


@pytest.mark.parametrize(
    "argv, shown",
    [
        (["run", "--help"], ["(default: digits)", "(default: 10)"]),
        (["federated", "simulate", "--help"], ["(default: 10)", "(default: digits)"]),
        (["continual", "--help"], ["(default: split-digits)"]),
    ],
)
def test_help_shows_defaults(argv, shown, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(s in out for s in shown), out
    assert "--config" in out and "--threads" in out


def test_help_and_list_import_neither_torch_nor_apps():
    code = (
        "import contextlib, io, sys\n"
        "from datadistill.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['list'])\n"
        "    for argv in (['--help'], ['run', '--help']):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "assert 'dm' in out.getvalue() and 'privacy' in out.getvalue()\n"
        "heavy = ('torch', 'datadistill.methods', 'datadistill_apps.nas')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_catalogue_matches_the_registries():
    """`distill list` reads catalog.json; rewrite it with `python -m datadistill.catalog`."""
    assert json.loads(json.dumps(catalog.live())) == json.loads(catalog.FILE.read_text())


def test_third_party_noise_is_silenced_and_the_rest_kept(caplog):
    silence_third_party()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("torch.utils.cpp_extension").warning(
            "No CUDA runtime is found, using CUDA_HOME='%s'", "/usr/local/cuda"
        )
        logging.getLogger("flwr").warning("The `run_simulation` function is deprecated and ...")
        logging.getLogger("flwr").warning("a client failed")
    assert [r.getMessage() for r in caplog.records] == ["a client failed"]
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *rest, **kw: seen.append(str(message))
        silence_third_party()  # wraps whatever shows warnings now
        avalanche = "/site-packages/avalanche/training/templates/base.py"
        warnings.warn_explicit("Call to deprecated class X", DeprecationWarning, avalanche, 1)
        warnings.warn_explicit("loss is NaN", UserWarning, "/repo/core/loop.py", 1)
    assert seen == ["loss is NaN"]


def test_threads_for_every_command():
    before = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "list"]) == 0
        assert torch.get_num_threads() == 1
        torch.set_num_threads(before)
        assert main(["list", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_long_run_prints_an_estimate(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop, "LONG_RUN", 0.0)
    assert main(["run", "--method", "dm", "--out", str(tmp_path / "r"), "--ipc", "1",
                 "--iterations", "6", "--quiet", "--set", "batch_real=8"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "on this machine; --iterations" in err and "--time-limit 0 to shorten" in err


def test_estimate_leaves_out_the_warm_up_and_respects_the_time_limit(capsys):
    est = loop.Estimate(0, 3005, loop.RunOptions())
    for it, seconds in enumerate([100.0, 1.0, 1.0, 1.0, 1.0]):  # step 0 warms up
        est.step(it, seconds)
    assert capsys.readouterr().err.strip() == (
        "about 50 min on this machine; --iterations 600 or --time-limit 600 to shorten"
    )
    bounded = loop.Estimate(0, 3005, loop.RunOptions(time_limit=300))
    for it in range(5):
        bounded.step(it, 1.0)
    assert capsys.readouterr().err == ""
    budgeted = loop.Estimate(0, 10**6, loop.RunOptions(budget=900))  # equal compute: 15 min
    for it in range(5):
        budgeted.step(it, 1.0)
    assert capsys.readouterr().err.startswith("about 15 min on this machine")
    assert loop.duration(10200) == "2 h 50 min"


def test_estimate_times_the_steps_after_a_pool_has_filled(capsys):
    fills = 200  # a pool's first visits cost 10 s each, later steps 0.1 s: 2,000 steps ~ 3 min
    est = loop.Estimate(0, 2000, loop.RunOptions())
    for it in range(fills + 10):
        est.step(it, 10.0 if it < fills else 0.1, one_off=max(fills - it, 0))
    assert est.done and capsys.readouterr().err == ""
    whole = loop.Estimate(0, 2000, loop.RunOptions())  # a pool as large as the run: all fills
    for it in range(10):
        whole.step(it, 10.0, one_off=2000 - it)
    assert "about 5 h 33 min on this machine" in capsys.readouterr().err


# --- your own data and network ------------------------------------------------------------


def _digits_arrays(per_class=12, classes=3):
    from sklearn.datasets import load_digits

    d = load_digits()
    rows = np.concatenate([np.flatnonzero(d.target == c)[:per_class] for c in range(classes)])
    return (d.images[rows] * 255 / 16).astype(np.uint8), d.target[rows]


def test_own_npz_runs_records_its_normalisation_and_evaluates(tmp_path, capsys):
    x, y = _digits_arrays()
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=np.array(["zero", "one", "two"])[y])
    out = tmp_path / "r"
    assert main(["run", "--method", "dm", "--dataset", str(path), "--out", str(out), *TINY]) == 0
    meta = read_metadata(out / "summary.safetensors")
    train, test = own_data.split(np.array(["zero", "one", "two"])[y], 0.2, 0)
    assert len(test) == 3 * round(0.2 * 12)  # stratified: a fifth of every class
    expected = x[train].astype(np.float32).mean() / 255
    assert meta["dataset"] == str(path.resolve()) and meta["num_classes"] == 3
    assert meta["mean"] == pytest.approx([expected], rel=1e-5)
    argv = ["eval", str(out / "summary.safetensors"), "--runs", "1", "--epochs", "1", "--quiet"]
    assert main(argv) == 0  # finds the data again from the summary's metadata


def test_own_npz_layouts_and_test_split(tmp_path):
    x, y = _digits_arrays()
    rgb = np.repeat(x[..., None], 3, axis=-1)  # NHWC
    np.savez(tmp_path / "nhwc.npz", x=rgb, y=y)
    nchw = rgb.transpose(0, 3, 1, 2)
    np.savez(tmp_path / "nchw.npz", x=nchw, y=y, x_test=nchw[:5], y_test=y[:5])
    a = datasets.load(str(tmp_path / "nhwc.npz"))
    b = datasets.load(str(tmp_path / "nchw.npz"))
    assert a.x_train.shape[1:] == (3, 8, 8) and len(a.x_test) == 3 * round(0.2 * 12)
    assert b.x_train.shape == (36, 3, 8, 8) and len(b.x_test) == 5


def test_own_folder_is_resized_and_grayscale(tmp_path, capsys):
    from PIL import Image

    x, y = _digits_arrays(per_class=6, classes=2)
    for i, (img, c) in enumerate(zip(x, y, strict=True)):
        (tmp_path / "imgs" / f"class{c}").mkdir(parents=True, exist_ok=True)
        size = 10 if i % 3 else 12  # mixed sizes: the most common (10) wins
        Image.fromarray(img).resize((size, size)).save(tmp_path / "imgs" / f"class{c}" / f"{i}.png")
    data = datasets.load(str(tmp_path / "imgs"))
    assert data.spec.shape == (1, 10, 10) and data.spec.num_classes == 2
    assert len(data.x_train) + len(data.x_test) == 12
    out = tmp_path / "r"
    argv = ["run", "--method", "dm", "--dataset", str(tmp_path / "imgs"), "--out", str(out)]
    assert main([*argv, *TINY]) == 0
    assert "imgs" in read_metadata(out / "summary.safetensors")["dataset"]


NET = """
from torch import nn

from datadistill import nets


class Tiny(nets.Net):
    def __init__(self, spec):
        super().__init__()
        self.feature_dim = 16
        pixels = spec.channels * spec.size**2
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 16), nn.ReLU())
        self.classifier = nn.Linear(16, spec.num_classes)

    def embed(self, x):
        return self.body(x)


@nets.register("tiny-first-hour")
def tiny(spec, **config):
    return Tiny(spec)
"""


def test_registered_network_used_by_run(tmp_path):
    (tmp_path / "my_net.py").write_text(NET)
    out = tmp_path / "r"
    argv = ["--plugin", str(tmp_path / "my_net.py"), "run", "--method", "dm", "--out", str(out),
            *TINY, "--set", "arch=tiny-first-hour"]  # fmt: skip
    assert main(argv) == 0
    assert read_metadata(out / "summary.safetensors")["config"]["arch"] == "tiny-first-hour"


# --- export and show say what they did ----------------------------------------------------


def test_export_names_the_file_it_wrote(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(out) == 0
    capsys.readouterr()
    assert main(["export", str(out / "summary.safetensors"), "-o", str(tmp_path / "s")]) == 0
    assert f"wrote {tmp_path / 's.npz'} (npz)" in capsys.readouterr().out
    assert (tmp_path / "s.npz").is_file()
    assert main(["export", str(out / "summary.safetensors"), "-o", str(tmp_path / "s.pt")]) == 0
    assert "(pt)" in capsys.readouterr().out


def test_show_gives_a_private_summary_its_epsilon(digits, tmp_path, capsys):
    """The keys apps/privacy's objective writes (`summary_extra`), read by core's `show`."""
    from datadistill.summary import Summary

    privacy = {"private": True, "epsilon": 7.5, "delta": 1e-5, "noise": "secret seed"}
    images = digits.x_train[:10].clone()
    summary = Summary(
        images, torch.arange(10), digits.spec, "dp-dsa", 1, extra={"privacy": privacy}
    )
    summary.save(tmp_path / "s.safetensors")
    assert main(["show", str(tmp_path / "s.safetensors"), "-o", str(tmp_path / "g.png")]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("privacy:")]
    assert line == ["privacy:       epsilon 7.5 at delta 1e-05; noise: secret seed"]
