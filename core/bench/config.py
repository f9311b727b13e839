"""A sweep's YAML file, read into a typed, validated `SweepConfig` and expanded into cells.

A sweep is the survey's benchmark grid: methods x datasets x IPC x seeds, each cell distilled
(or selected), evaluated by the one protocol (`datadistill.evaluate`) and written as result rows.
The YAML is translated at this edge; every mistake (an unknown key, method, dataset or
architecture, a missing key, a wrong type) is a `DistillError` naming the key and the fix,
raised before any work starts. Keys:

    name: quick                       # default: the file's stem
    datasets: [digits]                # required
    methods: all                      # required: a list, or `all` = the registry's image methods
    exclude: [dp-dsa]                 # names `all` leaves out
    ipc: [1, 10]                      # required
    seeds: [0]                        # distillation seeds
    iterations: {default: 200, dm: 500}   # or one number; missing/null: the paper's count
    overrides: {mtt: {syn_steps: 10}}     # a method's settings (`distill list`)
    eval: {epochs: 300, runs: 5, dsa: true, archs: [convnet],
           transfer: {ipc: [10], archs: [convnet, mlp, lenet, alexnet, vgg11, resnet18],
                      epochs: 300, runs: 5},   # transfer epochs/runs default to the main ones
           max_steps: null,           # cap SGD steps (TrainConfig.max_steps), also in transfer
           hard_labels: false}        # also train on the argmax of learnt labels (DD-Ranking)
    experts: {num: 20, epochs: 50}    # trajectory matching's experts, trained when missing
    results: results/{name}_{dataset}.json   # rows, one file per dataset (the repository's
                                             # sweeps write experiments/results/...)
    runs: runs/sweep-{name}/{dataset}                    # summaries and checkpoints
    device: auto
    time_limit: null                  # seconds per distillation; a stopped cell resumes later
    budget: null                      # seconds of distillation steps per cell in all (across
                                      # resumes), then evaluated as it stands: equal compute
    budget_clock: wall                # or cpu: the worker's CPU seconds, which other work
                                      # sharing the cores does not eat into (CPU only)
    budget_stops: []                  # smaller budgets answered by the same runs: the summary
                                      # kept as each is spent gets its own rows
    env: {DATADISTILL_COMPILE: "0"}   # environment of every worker

Paths are relative to the directory the sweep runs from (the repository root).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from datadistill import data as datasets
from datadistill import methods, nets
from datadistill.bench.cells import Cell
from datadistill.errors import DistillError
from datadistill.evaluate import EvalConfig
from datadistill.loop import BUDGET_CLOCKS
from datadistill.train import TrainConfig

TOP_KEYS = (
    "name", "datasets", "methods", "exclude", "ipc", "seeds", "iterations", "overrides", "eval",
    "experts", "results", "runs", "device", "time_limit", "budget", "budget_clock",
    "budget_stops", "env",
)  # fmt: skip
REQUIRED = ("datasets", "methods", "ipc")
EVAL_KEYS = ("epochs", "runs", "dsa", "archs", "transfer", "max_steps", "hard_labels")
TRANSFER_KEYS = ("ipc", "archs", "epochs", "runs", "max_steps")
EXPERT_KEYS = ("num", "epochs")


@dataclass(frozen=True)
class SweepEval:
    """The evaluation protocol of every cell, and the transfer protocol at `transfer_ipc`.

    Transfer evaluation (the survey's third cornerstone) trains `transfer_archs` on the same
    summary; it may use fewer epochs or runs than the main protocol (`transfer_epochs`,
    `transfer_runs`, default: the main ones), because VGG-11 or ResNet-18 cost about 20
    times a ConvNet per epoch on a CPU.
    """

    epochs: int = 300
    runs: int = 5
    dsa: bool = True
    archs: tuple[str, ...] = ("convnet",)
    transfer_ipc: tuple[int, ...] = ()
    transfer_archs: tuple[str, ...] = ()
    transfer_epochs: int | None = None
    transfer_runs: int | None = None
    max_steps: int | None = None  # TrainConfig.max_steps of the main protocol
    transfer_max_steps: int | None = None  # ... of the transfer one (default: the main one's)
    hard_labels: bool = False  # summaries with learnt labels also on their argmax (main only)

    def configs(self, ipc: int, learns_labels: bool = False) -> tuple[EvalConfig, ...]:
        """The evaluations a cell at `ipc` runs: the main one, then (for a method that learns
        labels, when `hard_labels`) the main one on hard labels, then the transfer one."""
        main = EvalConfig(
            archs=self.archs, runs=self.runs, train=self._train(self.epochs, self.max_steps)
        )
        hard = (replace(main, hard_labels=True),) if self.hard_labels and learns_labels else ()
        if ipc not in self.transfer_ipc:
            return (main, *hard)
        epochs = self.transfer_epochs or self.epochs
        runs = self.transfer_runs or self.runs
        steps = self.transfer_max_steps or self.max_steps
        if (epochs, runs, steps) == (self.epochs, self.runs, self.max_steps):  # one protocol
            archs = self.archs + tuple(a for a in self.transfer_archs if a not in self.archs)
            return (EvalConfig(archs=archs, runs=runs, train=main.train), *hard)
        archs = self.transfer_archs
        if (epochs, steps) == (self.epochs, self.max_steps):  # rows of one arch and protocol
            archs = tuple(a for a in archs if a not in self.archs)  # share an identity
        transfer = EvalConfig(archs=archs, runs=runs, train=self._train(epochs, steps))
        return (main, *hard, transfer)

    def _train(self, epochs: int, max_steps: int | None) -> TrainConfig:
        return TrainConfig(epochs=epochs, dsa=self.dsa, max_steps=max_steps)


@dataclass(frozen=True)
class ExpertSettings:
    """How many expert trajectories, of how many epochs, to train when a folder is missing.

    Defaults are MTT's `buffer.py` epochs with this library's 20 experts (MTT trains 100).
    """

    num: int = 20
    epochs: int = 50


@dataclass(frozen=True)
class SweepCell:
    """One unit of work: a benchmark cell of one dataset, with where its outputs go."""

    dataset: str
    cell: Cell
    evals: tuple[EvalConfig, ...]  # the main protocol, then the transfer one if any
    results: Path
    runs_dir: Path

    def label(self) -> str:
        return f"{self.cell.method} {self.dataset} ipc{self.cell.ipc} s{self.cell.seed}"


@dataclass(frozen=True)
class SweepConfig:
    name: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    ipc: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    iterations: Mapping[str, int | None] = field(default_factory=dict)  # "default" too
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    eval: SweepEval = SweepEval()
    experts: ExpertSettings = ExpertSettings()
    results: str = "results/{name}_{dataset}.json"
    runs: str = "runs/sweep-{name}/{dataset}"
    device: str = "auto"
    time_limit: float | None = None
    budget: float | None = None
    budget_clock: str = "wall"
    budget_stops: tuple[float, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def results_file(self, dataset: str) -> Path:
        return Path(self.results.format(name=self.name, dataset=dataset))

    def runs_dir(self, dataset: str) -> Path:
        return Path(self.runs.format(name=self.name, dataset=dataset))

    def iterations_of(self, method: str) -> int | None:
        """Outer iterations of a learnt method (None: the paper's); coresets have none."""
        if not methods.get(method).learnt:
            return None
        return self.iterations.get(method, self.iterations.get("default"))

    def cells(self) -> list[SweepCell]:
        """Every cell of the grid: datasets, then IPC, then methods, then seeds."""
        out = []
        for dataset in self.datasets:
            for ipc in self.ipc:
                for method in self.methods:
                    overrides = tuple(sorted(self.overrides.get(method, {}).items()))
                    learns = learns_labels(method, dataset, dict(overrides))
                    for seed in self.seeds:
                        cell = Cell(
                            method,
                            ipc,
                            iterations=self.iterations_of(method),
                            seed=seed,
                            overrides=overrides,
                            budget=self.budget,
                            budget_clock=self.budget_clock,
                            budget_stops=self.budget_stops,
                        )
                        out.append(
                            SweepCell(
                                dataset,
                                cell,
                                self.eval.configs(ipc, learns),
                                self.results_file(dataset),
                                self.runs_dir(dataset),
                            )
                        )
        return out


def learns_labels(method: str, dataset: str, overrides: dict) -> bool:
    """Whether `method`'s summaries carry learnt (soft) labels under these settings."""
    entry = methods.get(method)
    return entry.learnt and getattr(entry.config(dataset, overrides), "learn_labels", False)


def load(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; raises DistillError naming the first problem."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(f"sweep file {path} does not exist; see experiments/sweeps/*.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DistillError(f"{path} is not valid YAML ({e}); fix the syntax") from None
    return parse(raw, name=path.stem, where=str(path))


def parse(raw: object, *, name: str = "sweep", where: str = "sweep") -> SweepConfig:
    """A `SweepConfig` from the YAML's mapping (see the module docstring for the keys)."""
    if not isinstance(raw, dict):
        raise DistillError(f"{where}: expected a mapping of keys ({', '.join(REQUIRED)}, ...)")
    _known(raw, TOP_KEYS, where)
    for key in REQUIRED:
        if key not in raw:
            raise DistillError(f"{where}: missing key '{key}'; add it (e.g. {_EXAMPLES[key]})")
    names = _names(raw, where)
    known_data = datasets.available()
    data = _str_list(raw["datasets"], f"{where}: datasets")
    for d in data:
        if d not in known_data:
            raise DistillError(
                f"{where}: datasets: unknown dataset '{d}'; choose from {', '.join(known_data)}"
            )
    ipc = _int_list(raw["ipc"], f"{where}: ipc", low=1)
    seeds = _int_list(raw.get("seeds", [0]), f"{where}: seeds", low=0)
    overrides = _overrides(raw.get("overrides") or {}, names, data, where)
    ev = _eval(raw.get("eval") or {}, ipc, where)
    experts = raw.get("experts") or {}
    _mapping(experts, f"{where}: experts")
    _known(experts, EXPERT_KEYS, f"{where}: experts")
    time_limit, budget = raw.get("time_limit"), raw.get("budget")
    for key, value in (("time_limit", time_limit), ("budget", budget)):
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise DistillError(f"{where}: {key} must be a positive number of seconds or null")
    budget_clock = raw.get("budget_clock", "wall")
    if budget_clock not in BUDGET_CLOCKS:
        raise DistillError(
            f"{where}: budget_clock must be one of {', '.join(BUDGET_CLOCKS)}, got "
            f"'{budget_clock}'; use cpu to count each worker's CPU seconds"
        )
    stops = raw.get("budget_stops") or []
    if not isinstance(stops, list) or not all(
        isinstance(s, int | float) and 0 < s < (budget or 0) for s in stops
    ):
        raise DistillError(
            f"{where}: budget_stops must be a list of seconds between 0 and budget "
            f"({budget}), got {stops}; e.g. budget: 900 with budget_stops: [300]"
        )
    env = raw.get("env") or {}
    _mapping(env, f"{where}: env")
    config = SweepConfig(
        name=str(raw.get("name", name)),
        datasets=tuple(data),
        methods=tuple(names),
        ipc=tuple(ipc),
        seeds=tuple(seeds),
        iterations=_iterations(raw.get("iterations"), names, where),
        overrides=overrides,
        eval=ev,
        experts=ExpertSettings(
            num=_positive(experts.get("num", 20), f"{where}: experts: num"),
            epochs=_positive(experts.get("epochs", 50), f"{where}: experts: epochs"),
        ),
        results=str(raw.get("results", SweepConfig.results)),
        runs=str(raw.get("runs", SweepConfig.runs)),
        device=str(raw.get("device", "auto")),
        time_limit=time_limit,
        budget=budget,
        budget_clock=budget_clock,
        budget_stops=tuple(sorted(stops)),
        env={str(k): str(v) for k, v in env.items()},
    )
    for key in ("results", "runs"):
        try:
            getattr(config, key).format(name="n", dataset="d")
        except (KeyError, IndexError, ValueError):
            raise DistillError(
                f"{where}: {key}: only {{name}} and {{dataset}} may be used in the path"
            ) from None
    return config


_EXAMPLES = {"datasets": "datasets: [digits]", "methods": "methods: all", "ipc": "ipc: [1, 10]"}


def image_methods() -> list[str]:
    """The registry's methods that distil images (other modalities run their own commands)."""
    return [m for m in methods.available() if methods.get(m).modality == "image"]


def _names(raw: dict, where: str) -> list[str]:
    exclude = _str_list(raw.get("exclude") or [], f"{where}: exclude")
    known = methods.available()
    for m in exclude:
        if m not in known:
            raise DistillError(
                f"{where}: exclude: unknown method '{m}'; choose from {', '.join(known)}"
            )
    if raw["methods"] == "all":
        return [m for m in image_methods() if m not in exclude]
    names = _str_list(raw["methods"], f"{where}: methods")
    for m in names:
        if m not in known:
            raise DistillError(
                f"{where}: methods: unknown method '{m}'; choose from {', '.join(known)} "
                "or write `methods: all`"
            )
        if methods.get(m).modality != "image":
            raise DistillError(
                f"{where}: methods: '{m}' distils {methods.get(m).modality} data, which sweeps "
                f"do not run; remove it and use `distill run --method {m}`"
            )
    if len(set(names)) != len(names):
        raise DistillError(f"{where}: methods: a method is listed twice; list each once")
    return [m for m in names if m not in exclude]


def _iterations(raw, names: list[str], where: str) -> dict[str, int | None]:
    if raw is None:
        return {}
    if isinstance(raw, int) and not isinstance(raw, bool):
        return {"default": _positive(raw, f"{where}: iterations")}
    _mapping(raw, f"{where}: iterations")
    out = {}
    for key, value in raw.items():
        if key != "default" and key not in names:
            raise DistillError(
                f"{where}: iterations: '{key}' is not a method of this sweep; use 'default' or "
                f"one of {', '.join(names)}"
            )
        out[key] = None if value is None else _positive(value, f"{where}: iterations: {key}")
    return out


def _overrides(raw, names: list[str], data: list[str], where: str) -> dict[str, dict[str, str]]:
    _mapping(raw, f"{where}: overrides")
    out = {}
    for method, settings in raw.items():
        if method not in names:
            raise DistillError(
                f"{where}: overrides: '{method}' is not a method of this sweep; "
                f"use one of {', '.join(names)}"
            )
        _mapping(settings, f"{where}: overrides: {method}")
        out[method] = {str(k): str(v) for k, v in settings.items()}
        for d in data:  # unknown or mistyped settings fail now, not hours into the sweep
            try:
                methods.get(method).config(d, out[method])
            except (DistillError, ValueError) as e:
                raise DistillError(f"{where}: overrides: {method}: {e}") from None
    return out


def _eval(raw, ipc: list[int], where: str) -> SweepEval:
    _mapping(raw, f"{where}: eval")
    _known(raw, EVAL_KEYS, f"{where}: eval")
    transfer = raw.get("transfer") or {}
    _mapping(transfer, f"{where}: eval: transfer")
    _known(transfer, TRANSFER_KEYS, f"{where}: eval: transfer")
    archs = _archs(raw.get("archs", ["convnet"]), f"{where}: eval: archs")
    t_archs = _archs(transfer.get("archs", []), f"{where}: eval: transfer: archs")
    t_ipc = _int_list(
        transfer.get("ipc", []), f"{where}: eval: transfer: ipc", low=1, allow_empty=True
    )
    missing = [i for i in t_ipc if i not in ipc]
    if missing:
        raise DistillError(
            f"{where}: eval: transfer: ipc {missing[0]} is not in the sweep's ipc {ipc}; "
            "add it there or drop it here"
        )
    if t_ipc and not t_archs:
        raise DistillError(f"{where}: eval: transfer: give archs for the transfer IPCs")
    dsa = raw.get("dsa", True)
    if not isinstance(dsa, bool):
        raise DistillError(f"{where}: eval: dsa must be true or false")
    t_epochs, t_runs = transfer.get("epochs"), transfer.get("runs")
    steps, t_steps = raw.get("max_steps"), transfer.get("max_steps")
    hard = raw.get("hard_labels", False)
    if not isinstance(hard, bool):
        raise DistillError(f"{where}: eval: hard_labels must be true or false")
    return SweepEval(
        hard_labels=hard,
        max_steps=_optional(steps, f"{where}: eval: max_steps"),
        transfer_max_steps=_optional(t_steps, f"{where}: eval: transfer: max_steps"),
        transfer_epochs=_optional(t_epochs, f"{where}: eval: transfer: epochs"),
        transfer_runs=_optional(t_runs, f"{where}: eval: transfer: runs"),
        epochs=_positive(raw.get("epochs", 300), f"{where}: eval: epochs"),
        runs=_positive(raw.get("runs", 5), f"{where}: eval: runs"),
        dsa=dsa,
        archs=tuple(archs),
        transfer_ipc=tuple(t_ipc),
        transfer_archs=tuple(t_archs),
    )


def _optional(raw, where: str) -> int | None:
    """A positive integer, or None when the key is absent (0 is an error, not absent)."""
    return None if raw is None else _positive(raw, where)


def _archs(raw, where: str) -> list[str]:
    archs = _str_list(raw, where)
    for a in archs:
        if a not in nets.available():
            raise DistillError(
                f"{where}: unknown architecture '{a}'; choose from {', '.join(nets.available())}"
            )
    return archs


def _known(raw: dict, keys: tuple[str, ...], where: str) -> None:
    unknown = [k for k in raw if k not in keys]
    if unknown:
        raise DistillError(f"{where}: unknown key '{unknown[0]}'; the keys are: {', '.join(keys)}")


def _mapping(raw, where: str) -> None:
    if not isinstance(raw, dict):
        raise DistillError(f"{where}: expected a mapping (key: value), got {raw!r}")


def _str_list(raw, where: str) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise DistillError(f"{where}: expected a list of names, got {raw!r}")
    return raw


def _int_list(raw, where: str, *, low: int, allow_empty: bool = False) -> list[int]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    ok = isinstance(raw, list) and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= low for x in raw
    )
    if not ok or not (raw or allow_empty):
        raise DistillError(f"{where}: expected a list of integers >= {low}, got {raw!r}")
    return sorted(set(raw))


def _positive(raw, where: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise DistillError(f"{where}: expected a positive integer, got {raw!r}")
    return raw
