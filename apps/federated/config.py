"""One frozen config for a federated run, translated to and from Flower's run config.

Flower passes settings to a ServerApp/ClientApp as a flat `run_config` of str/int/float/
bool values (`flwr run --run-config "k=v"`); `FedConfig.from_run_config` reads them back,
so the same apps serve the simulation engine and a real deployment.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from datadistill.errors import DistillError

MODES = ("summary", "fedavg", "statistics")


@dataclass(frozen=True)
class FedConfig:
    """What a federated run does.

    Attributes:
        mode: "summary" (clients distil and upload once), "fedavg" (the baseline), or
            "statistics" (clients upload DM's class statistics once; the server distils).
        alpha: Dirichlet concentration of the label skew; 0 means IID.
        method, ipc, iterations: the clients' distillation (core method registry);
            iterations 0 means the method's default. In statistics mode ipc and iterations
            are the server's DM run.
        pool: embedders the statistics scheme's server broadcasts (upload: pool x classes
            x embedding floats a client).
        server_lr: statistics mode: the server's lr_img. Its summary starts from noise (it
            holds no image), which DM's lr of 1 barely moves: on digits, IPC 10, pool 10,
            300 iterations, lr 1, 10, 100 and 1000 gave 16, 24, 67 and 79% (ours, one seed).
        warm_rounds: statistics mode: FedAvg rounds started from the model trained on the
            server's summary (0: none).
        sample_rate: statistics mode: q, each member's Bernoulli inclusion probability for a
            client's row (`statistics.sample`); 1 reads every row (the exact statistics of
            the partitions); 0 picks min(1, DM's batch_real x classes / training examples):
            256 images a class in expectation on Fashion-MNIST (q = 0.0427), 128 on digits (0.89).
        client_epsilon: statistics mode: each client's upload goes through dp-dm's release
            at this epsilon (`private`); 0: the exact upload.
        client_delta, client_clip: that release's delta (below 1/n for every client) and
            clip, a root mean square per embedding coordinate (dp-dm's rule).
        rounds: communication rounds (one-shot summary upload: 1).
        local_epochs: FedAvg's local epochs per round on core's training loop.
        epochs: epochs of the server's training on the union of summaries.
        fail_clients: partition ids whose ClientApp raises (tests the failure path).
        cache: a directory where each client keeps the summary it distilled (or its
            statistics upload), so that a rerun of an interrupted run skips the clients
            that finished, and FedAvg keeps
            its model after each complete round, so that a rerun goes on from there
            (empty: neither).
        keep: a directory where the server keeps what its model trained on (the union of
            the clients' summaries, or its summary of their statistics), once and never
            replaced, so a row cites it by path and sha256 (empty: nothing kept).
    """

    dataset: str = "digits"
    clients: int = 10
    alpha: float = 0.0
    partition_seed: int = 0
    mode: str = "summary"
    method: str = "dm"
    ipc: int = 10
    iterations: int = 0
    rounds: int = 1
    local_epochs: int = 1  # 1: the whole round at a constant client lr (local.local_fit)
    local_batch: int = 64
    arch: str = "convnet"
    epochs: int = 300
    dsa: bool = True
    seed: int = 0
    device: str = "cpu"
    timeout: float = 3600.0
    fail_clients: str = ""  # comma-separated partition ids, for failure tests
    report: str = ""  # JSON file the ServerApp writes its report to
    cache: str = ""  # directory of finished clients' summaries (resume); empty: no cache
    keep: str = ""  # directory where the server keeps what its model trained on (rows cite it)
    pool: int = 50
    server_lr: float = 100.0
    warm_rounds: int = 0
    sample_rate: float = 0.0
    client_epsilon: float = 0.0
    client_delta: float = 1e-5
    client_clip: float = 0.6

    def summary_key(self) -> str:
        """What decides a client's summary: a rerun with the same key may reuse it."""
        fields = ("dataset", "clients", "alpha", "partition_seed", "method", "ipc")
        fields += ("iterations", "seed")
        text = ",".join(f"{f}={getattr(self, f)}" for f in fields)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def statistics_key(self) -> str:
        """What decides a client's statistics upload (not the server's IPC or iterations):
        every cell of a sweep over those may reuse it, a private one included (reusing one
        release is post-processing)."""
        fields = ("dataset", "clients", "alpha", "partition_seed", "pool", "arch", "dsa")
        fields += ("seed", "sample_rate", "client_epsilon", "client_delta", "client_clip")
        text = ",".join(f"{f}={getattr(self, f)}" for f in fields)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def fedavg_key(self) -> str:
        """What decides FedAvg's rounds (not their number): a rerun may go on from them."""
        fields = ("dataset", "clients", "alpha", "partition_seed", "local_epochs")
        fields += ("local_batch", "arch", "dsa", "seed")
        text = ",".join(f"{f}={getattr(self, f)}" for f in fields)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DistillError(f"--mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        if self.alpha < 0:
            raise DistillError(f"--alpha must be >= 0 (0: IID), got {self.alpha}")
        if self.warm_rounds < 0:
            raise DistillError(f"--warm-rounds must be >= 0 (0: none), got {self.warm_rounds}")
        if not 0 <= self.sample_rate <= 1:
            raise DistillError(
                f"--sample-rate must be in [0, 1] (0: DM's batch, 1: every row), got "
                f"{self.sample_rate}"
            )
        if self.client_epsilon < 0 or not 0 < self.client_delta < 1 or self.client_clip <= 0:
            raise DistillError(
                f"--client-epsilon must be >= 0 (0: exact upload), --client-delta in (0, 1) and "
                f"the client clip > 0; got {self.client_epsilon}, {self.client_delta}, "
                f"{self.client_clip}"
            )
        for name in ("clients", "ipc", "rounds", "local_epochs", "epochs", "pool"):
            if getattr(self, name) < 1:
                raise DistillError(f"--{name.replace('_', '-')} must be >= 1")

    @property
    def dirichlet_alpha(self) -> float | None:
        return self.alpha if self.alpha > 0 else None

    @property
    def failing(self) -> set[int]:
        return {int(s) for s in self.fail_clients.split(",") if s.strip()}

    def to_run_config(self) -> dict:
        """Flower's flat run config (hyphenated keys, as Flower apps conventionally use)."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_run_config(cls, run_config: dict) -> FedConfig:
        """Typed config from Flower's run config; unknown keys are an error, missing default."""
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        kw = {}
        for key, value in run_config.items():
            name = key.replace("-", "_")
            if name not in types:
                raise DistillError(f"unknown federated setting '{key}'; known: {sorted(types)}")
            default = getattr(cls(), name)
            kw[name] = type(default)(value) if not isinstance(default, bool) else _bool(value)
        return cls(**kw)


def _bool(v) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
