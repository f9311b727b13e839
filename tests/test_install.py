"""Installed as a new user would: the wheel, in a fresh venv outside the repository.

The venv borrows this environment's third-party stack (torch, Flower, ...) through a `.pth`
file listing its site-packages, so nothing is downloaded; `.pth` files inside those folders
(the repository's own editable install) are not processed for a path added that way, so
`datadistill` can only come from the wheel.
"""

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"datadistill": ROOT / "core", "datadistill_apps": ROOT / "apps"}


def test_pyproject_lists_every_package():
    """package-dir renames the folders, so setuptools cannot discover packages: the list in
    pyproject.toml must name every folder with an __init__.py."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {
        ".".join([package, *init.parent.relative_to(folder).parts])
        for package, folder in FOLDERS.items()
        for init in folder.rglob("__init__.py")
    }
    assert found == listed


def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path):
    source = tmp_path / "source"  # a copy, so the build writes nothing into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    for folder in ("core", "apps"):
        _run(["cp", "-r", str(ROOT / folder), str(source / folder)])
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
          str(source)])  # fmt: skip
    (wheel,) = wheels.glob("datadistill-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"datadistill", "datadistill_apps"}

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([python, "-c", purelib]).strip())
    stack = [p for p in sys.path if p.endswith("site-packages")]
    (site / "stack.pth").write_text("\n".join(stack) + "\n")
    # pip >= 22.3 installs into another interpreter's environment: the venv needs no pip
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          str(wheel)])  # fmt: skip

    env = {**os.environ, "DATADISTILL_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    work = tmp_path / "work"  # run from outside the repository, as a user would
    work.mkdir()
    probe = "import datadistill, datadistill_apps; print(datadistill.__file__)"
    where = _run([python, "-c", probe], cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(venv)
    assert "usage: distill" in _run([venv / "bin" / "distill", "--help"], cwd=work, env=env)
    out = work / "run"
    _run([venv / "bin" / "distill", "run", "--method", "dm", "--dataset", "digits", "--ipc", "1",
          "--iterations", "5", "--out", str(out), "--quiet"], cwd=work, env=env)  # fmt: skip
    assert (out / "summary.safetensors").stat().st_size > 0
    installed = {p.name for p in site.iterdir()}
    assert not {"core", "apps"} & installed, installed
    for name in ("core", "apps"):
        probe = subprocess.run([python, "-c", f"import {name}"], cwd=work, env=env)
        assert probe.returncode != 0, f"a top-level module '{name}' is importable"
