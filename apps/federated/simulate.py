"""Run the federated apps on Flower's simulation engine (Ray), in this process.

Uses `flwr.simulation.run_simulation` with apps bound to a `FedConfig`, so no SuperLink
is started and nothing outlives the call (Ray is shut down at the end). Flower is kept
from installing dependencies at run time and from writing outside the project.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from datadistill.errors import DistillError
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.processes import TAG, Watch, reap

FLWR_HOME = Path(".flwr")


def flower_env(home: Path = FLWR_HOME) -> dict[str, str]:
    """Environment every Flower process of ours runs with."""
    return {
        "FLWR_HOME": str(home.resolve()),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
    }


def simulate(cfg: FedConfig, *, cpus_per_client: float = 1.0, verbose: bool = False) -> dict:
    """Run one federated experiment on the simulation engine; return the server's report."""
    os.environ.update(flower_env())
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    from flwr.simulation import run_simulation

    from datadistill_apps.federated.flower_app import make_client_app, make_server_app, preflight

    preflight(cfg)

    sink: list[dict] = []
    cpus = max(1, os.cpu_count() or 1)
    # Ray hides the GPU from actors that ask for none: share it between clients on CUDA
    gpus = 0.5 if cfg.device.startswith("cuda") else 0.0
    backend = {
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": gpus},
        "init_args": {"num_cpus": cpus, "include_dashboard": False},
    }
    # Ray's processes inherit this tag, so they can be found once the raylet that started
    # them is gone (Flower shuts Ray down itself, orphaning workers that exit slowly)
    tag = f"{os.getpid()}-{time.time_ns()}"
    os.environ[TAG] = tag
    with Watch() as watch:
        try:
            run_simulation(
                server_app=make_server_app(cfg, sink),
                client_app=make_client_app(cfg),
                num_supernodes=cfg.clients,
                backend_config=backend,
                verbose_logging=verbose,
            )
        finally:
            if ray.is_initialized():
                ray.shutdown()
            os.environ.pop(TAG, None)
            reap(watch, tag)  # still watching: a raylet shutting down can start one more
    if not sink:
        raise DistillError("the simulated ServerApp produced no report; see the log above")
    return sink[0]
