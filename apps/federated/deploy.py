"""Deployment mode on loopback: one SuperLink, one SuperNode per client, `flwr run`.

The real Flower runtime (no Ray): `flower-superlink --insecure`, then
`flower-supernode --insecure --superlink 127.0.0.1:PORT --node-config
"partition-id=I num-partitions=N"` per client, then `flwr run apps/federated/flwr_app
loopback --run-config ... --stream`. Every process we start (and the SuperExec and
ServerApp processes Flower spawns from them) is stopped at the end, even on error.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from datadistill.errors import DistillError
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.processes import kill_lingering
from datadistill_apps.federated.simulate import FLWR_HOME, flower_env

APP_DIR = Path(__file__).parent / "flwr_app"
PROJECT = Path(__file__).resolve().parents[2]
CONNECTION = "loopback"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    """Flower's executables beside this Python (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise DistillError(f"'{name}' not found; install the project (`pip install -e .`)")
    return found


def _write_connection(home: Path, port: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ) | flower_env(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    return env


def stop(procs: list[subprocess.Popen], *, grace: float = 10.0) -> None:
    """Terminate our processes and every descendant (SuperExec, ServerApp, ClientApp)."""
    tree = []
    for p in procs:
        try:
            parent = psutil.Process(p.pid)
            tree += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for p in tree:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    kill_lingering(tree, grace=grace)
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()


def deploy(
    cfg: FedConfig,
    *,
    home: Path = FLWR_HOME,
    logs: Path | None = None,
    timeout: float = 600.0,
    kill_after: dict[int, float] | None = None,
) -> dict:
    """Run `cfg` on a loopback SuperLink with `cfg.clients` SuperNodes; return the report.

    Args:
        home: FLWR_HOME (Flower's config, installed app bundles).
        logs: folder for each process's log (default: a temporary folder).
        timeout: seconds before the whole run is abandoned (processes are stopped).
        kill_after: {partition id: seconds} SuperNodes to kill mid-run (failure tests).
    """
    from datadistill_apps.federated.flower_app import preflight

    preflight(cfg)
    home = Path(home).resolve()
    port = free_port()
    _write_connection(home, port)
    env = _env(home)
    logs = Path(logs or tempfile.mkdtemp(prefix="flwr-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    report = Path(cfg.report) if cfg.report else logs / "report.json"
    report.unlink(missing_ok=True)
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
        return procs[-1]

    try:
        start(
            "superlink",
            [_bin("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(port)]
            + ["--disable-runtime-dependency-installation"],
        )
        _wait_port(port, timeout=60, proc=procs[0], log=logs / "superlink.log")
        nodes = {}
        for i in range(cfg.clients):
            nodes[i] = start(
                f"supernode-{i}",
                [_bin("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}"]
                + ["--port", str(free_port())]
                + ["--node-config", f"partition-id={i} num-partitions={cfg.clients}"],
            )
        run_config = " ".join(
            f"{k}={json.dumps(v)}"
            for k, v in (cfg.to_run_config() | {"report": str(report)}).items()
        )
        runner = start(
            "flwr-run",
            [_bin("flwr"), "run", str(APP_DIR), CONNECTION, "--run-config", run_config, "--stream"],
        )
        started = time.monotonic()
        pending = dict(kill_after or {})
        while runner.poll() is None:
            elapsed = time.monotonic() - started
            for pid, after in list(pending.items()):
                if elapsed >= after:
                    stop([nodes[pid]], grace=2)
                    del pending[pid]
            if elapsed > timeout:
                raise DistillError(
                    f"deployment run took over {timeout:.0f} s; see the logs in {logs}"
                )
            time.sleep(0.5)
        if not report.exists():
            raise DistillError(f"the ServerApp wrote no report; see the logs in {logs}")
        return json.loads(report.read_text())
    finally:
        stop(procs)


def _wait_port(port: int, *, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DistillError(f"flower-superlink exited early; see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise DistillError(f"flower-superlink did not open port {port} in {timeout:.0f} s; see {log}")
