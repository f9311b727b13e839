"""`distill sweep`: config validation, expansion, skipping finished cells, resuming, Ray."""

import time
from pathlib import Path

import pytest
import torch

from datadistill import data as datasets
from datadistill import evidence, profile
from datadistill.bench import cells as bench
from datadistill.bench import config as sweep_config
from datadistill.bench import sweep
from datadistill.errors import DistillError
from datadistill.loop import RunOptions, optimise
from datadistill.methods import registry
from datadistill.methods.registry import Method
from datadistill.results import load_rows
from datadistill.summary import Summary


def tiny(tmp_path, **changes) -> dict:
    """A sweep of 2 methods on digits at IPC 1 that runs in a few seconds."""
    raw = {
        "name": "tiny",
        "datasets": ["digits"],
        "methods": ["random", "dm"],
        "ipc": [1],
        "iterations": 2,
        "overrides": {"dm": {"batch_real": 16}},
        "eval": {"epochs": 1, "runs": 1},
        "results": str(tmp_path / "{name}_{dataset}.json"),
        "runs": str(tmp_path / "runs" / "{dataset}"),
        "device": "cpu",
        "env": {"DATADISTILL_COMPILE": "0"},
    }
    raw.update(changes)
    return raw


def quiet(_line: str) -> None:
    pass


# --- the config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, words",
    [
        ({"metods": ["dm"]}, ["unknown key 'metods'", "datasets"]),
        ({"methods": ["dm", "nope"]}, ["methods", "unknown method 'nope'", "dm"]),
        ({"datasets": ["imagenet"]}, ["datasets", "unknown dataset 'imagenet'", "digits"]),
        ({"ipc": [0]}, ["ipc", "integers >= 1"]),
        ({"eval": {"archs": ["convnet", "vit"]}}, ["eval: archs", "'vit'", "resnet18"]),
        ({"eval": {"transfer": {"ipc": [50], "archs": ["mlp"]}}}, ["transfer: ipc 50"]),
        ({"overrides": {"dm": {"lr_imgs": 1}}}, ["overrides: dm", "lr_imgs", "lr_img"]),
        ({"overrides": {"mtt": {"syn_steps": 1}}}, ["overrides", "'mtt'", "not a method"]),
        ({"iterations": {"dc": 5}}, ["iterations", "'dc'", "default"]),
        ({"iterations": -3}, ["iterations", "positive"]),
        ({"budget": 0}, ["budget", "positive number of seconds"]),
        ({"budget": 10, "budget_stops": [20]}, ["budget_stops", "between 0 and budget", "[300]"]),
        ({"budget_stops": [5]}, ["budget_stops", "between 0 and budget (None)"]),
        ({"exclude": ["dmm"]}, ["exclude", "'dmm'"]),
        ({"results": "r_{seed}.json"}, ["results", "{name}"]),
    ],
)
def test_bad_config_names_the_key_and_the_fix(tmp_path, change, words):
    with pytest.raises(DistillError) as e:
        sweep_config.parse(tiny(tmp_path, **change), where="s.yaml")
    for w in words:
        assert w in str(e.value)


def test_missing_key_is_named(tmp_path):
    raw = tiny(tmp_path)
    del raw["ipc"]
    with pytest.raises(DistillError, match="missing key 'ipc'.*ipc: \\[1, 10\\]"):
        sweep_config.parse(raw)


def test_load_refuses_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(DistillError, match="does not exist"):
        sweep_config.load(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("methods: [dm\n")
    with pytest.raises(DistillError, match="not valid YAML"):
        sweep_config.load(bad)


def test_all_means_the_image_methods_of_the_registry_minus_exclude(tmp_path, monkeypatch):
    graph = Method("graphy", "test", "none", registry.MethodConfig, modality="graph")
    monkeypatch.setitem(registry.REGISTRY, "graphy", graph)
    config = sweep_config.parse(tiny(tmp_path, methods="all", exclude=["dd"], overrides={}))
    assert "graphy" not in config.methods and "dd" not in config.methods
    assert set(config.methods) == set(sweep_config.image_methods()) - {"dd"}
    with pytest.raises(DistillError, match="graph data.*distill run --method graphy"):
        sweep_config.parse(tiny(tmp_path, methods=["graphy"], overrides={}))


def test_expansion_gives_every_cell_its_iterations_and_evaluations(tmp_path):
    raw = tiny(
        tmp_path,
        methods=["random", "dm", "dc"],
        ipc=[1, 10],
        seeds=[0, 1],
        iterations={"default": 7, "dc": None},
        eval={"epochs": 4, "runs": 2, "transfer": {"ipc": [10], "archs": ["convnet", "mlp"]}},
    )
    cells = sweep_config.parse(raw).cells()
    assert len(cells) == 3 * 2 * 2
    by = {(c.cell.method, c.cell.ipc, c.cell.seed): c for c in cells}
    assert by["random", 1, 0].cell.iterations is None  # coresets have no iterations
    assert by["dm", 1, 1].cell.iterations == 7
    assert by["dc", 10, 0].cell.iterations is None  # null: the paper's count
    assert by["dm", 1, 0].cell.overrides == (("batch_real", "16"),)
    assert [e.archs for e in by["dm", 1, 0].evals] == [("convnet",)]
    (one,) = by["dm", 10, 0].evals  # same protocol: one evaluation over both archs
    assert one.archs == ("convnet", "mlp") and one.runs == 2 and one.train.epochs == 4


def test_cheaper_transfer_protocol_is_a_second_evaluation(tmp_path):
    transfer = {"ipc": [1], "archs": ["convnet", "mlp"], "epochs": 3, "runs": 1}
    config = sweep_config.parse(tiny(tmp_path, eval={"epochs": 2, "runs": 2, "transfer": transfer}))
    main, second = config.cells()[0].evals
    assert (main.archs, main.runs, main.train.epochs) == (("convnet",), 2, 2)
    assert (second.archs, second.runs, second.train.epochs) == (("convnet", "mlp"), 1, 3)
    transfer["epochs"] = 2  # same epochs as the main: convnet's row would share an identity
    config = sweep_config.parse(tiny(tmp_path, eval={"epochs": 2, "runs": 2, "transfer": transfer}))
    assert config.cells()[0].evals[1].archs == ("mlp",)
    transfer["max_steps"] = 5  # a step cap is another protocol: convnet's row comes back
    config = sweep_config.parse(tiny(tmp_path, eval={"epochs": 2, "runs": 2, "transfer": transfer}))
    main, second = config.cells()[0].evals
    assert main.train.max_steps is None and second.train.max_steps == 5
    assert second.archs == ("convnet", "mlp")
    with pytest.raises(DistillError, match="max_steps"):
        sweep_config.parse(tiny(tmp_path, eval={"max_steps": 0}))


def test_methods_that_learn_labels_get_a_second_evaluation_on_hard_labels(tmp_path):
    raw = tiny(tmp_path, methods=["dm", "kip"], overrides={"kip": {"learn_labels": "false"}},
               eval={"epochs": 2, "runs": 2, "hard_labels": True})  # fmt: skip
    assert [len(c.evals) for c in sweep_config.parse(raw).cells()] == [1, 1]  # no learnt ones
    raw["overrides"] = {}
    dm, kip = sweep_config.parse(raw).cells()
    assert len(dm.evals) == 1 and [e.hard_labels for e in kip.evals] == [False, True]
    raw["eval"]["hard_labels"] = False
    assert len(sweep_config.parse(raw).cells()[1].evals) == 1
    with pytest.raises(DistillError, match="hard_labels must be true or false"):
        sweep_config.parse(tiny(tmp_path, eval={"hard_labels": "yes"}))


# --- running ---------------------------------------------------------------------------------


def test_serial_sweep_writes_rows_and_skips_finished_cells(tmp_path, monkeypatch):
    config = sweep_config.parse(tiny(tmp_path))
    outcome = sweep.run_sweep(config, workers=0, log=quiet)
    assert [c.cell.method for c, _, _ in outcome.finished] == ["random", "dm"]
    rows = load_rows(tmp_path / "tiny_digits.json")
    assert {(r["method"], r["ipc"], r["arch"], r["iterations"]) for r in rows} == {
        ("random", 1, "convnet", 0),
        ("dm", 1, "convnet", 2),
    }
    for r in rows:  # each row cites the immutable copy it evaluated, with its hash
        assert Path(r["summary"]).name == f"summary-it{r['iterations']}.safetensors"
        assert evidence.verify(r, "/") is None and r[evidence.HASH_KEY]

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell ran again")

    monkeypatch.setattr(sweep, "run_cell", must_not_run)
    again = sweep.run_sweep(config, workers=0, log=quiet)
    assert again.skipped == 2 and not again.finished and not again.failed


def test_an_equal_budget_sweep_stops_each_cell_at_its_seconds_and_evaluates_it(tmp_path):
    config = sweep_config.parse(tiny(tmp_path, methods=["dm"], iterations=100000, budget=0.5))
    outcome = sweep.run_sweep(config, workers=0, log=quiet)
    assert len(outcome.finished) == 1 and not outcome.stopped
    (row,) = load_rows(tmp_path / "tiny_digits.json")
    assert row["budget_seconds"] == 0.5 and 0 < row["iterations"] < 100000
    summary = Summary.load(row["summary"])
    assert summary.extra["run"]["seconds"] >= 0.5  # steps ran until the budget was spent
    again = sweep.run_sweep(config, workers=0, log=quiet)
    assert again.skipped == 1 and not again.finished


class BusyCore:
    """`time` as the step timer sees it while other work holds the core: every wall-clock
    reading is ten seconds later than the last, CPU time is the process's own."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 10.0
        return self.now

    process_time = staticmethod(time.process_time)
    thread_time = staticmethod(time.thread_time)


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_a_cpu_budget_is_not_spent_by_wall_time_that_other_work_takes(tmp_path, monkeypatch, clock):
    monkeypatch.setattr(profile, "time", BusyCore())
    raw = tiny(tmp_path, methods=["dm"], iterations=6, budget=25, budget_clock=clock)
    outcome = sweep.run_sweep(sweep_config.parse(raw), workers=0, log=quiet)
    assert len(outcome.finished) == 1
    (row,) = load_rows(tmp_path / "tiny_digits.json")
    assert (row["budget_seconds"], row["budget_clock"]) == (25, clock)
    run = Summary.load(row["summary"]).extra["run"]
    assert run["seconds"] == pytest.approx(10 * run["iterations"])  # 10 s of wall time a step
    # on the wall clock the budget is gone after three steps; the steps' own CPU time is not
    assert row["iterations"] == (3 if clock == "wall" else 6)
    assert 0 < run["cpu_seconds"] < 25
    folder = Path(row["summary"]).parent.name
    assert folder.endswith("budget25s" if clock == "wall" else "budget25cpus")


def test_a_budget_stop_answers_the_smaller_budget_from_the_same_run(tmp_path, monkeypatch):
    """Stops at 25 s on the way to 45 s: the summary kept at 25 s is the one a run of 25 s
    alone makes (same steps, same images), and each budget has its own rows and file."""
    monkeypatch.setattr(profile, "time", BusyCore())  # 10 s of wall time a step
    raw = tiny(tmp_path, methods=["random", "dm"], iterations=100, budget=45, budget_stops=[25])
    outcome = sweep.run_sweep(sweep_config.parse(raw), workers=0, log=quiet)
    assert len(outcome.finished) == 2
    rows = load_rows(tmp_path / "tiny_digits.json")
    random = [r for r in rows if r["method"] == "random"]  # no steps: one selection, both budgets
    assert [r["budget_seconds"] for r in random] == [25, 45]
    assert random[0]["summary_sha256"] == random[1]["summary_sha256"]
    stop, full = [r for r in rows if r["method"] == "dm"]
    assert (stop["budget_seconds"], stop["iterations"]) == (25, 3)
    assert (full["budget_seconds"], full["iterations"]) == (45, 5)
    assert Path(stop["summary"]).name == "summary-budget25s.safetensors"
    assert stop["summary_sha256"] != full["summary_sha256"]
    alone = tiny(tmp_path / "alone", methods=["dm"], iterations=100, budget=25)
    sweep.run_sweep(sweep_config.parse(alone), workers=0, log=quiet)
    (row,) = load_rows(tmp_path / "alone" / "tiny_digits.json")
    assert row["iterations"] == 3  # and the same images (the metadata's timings differ)
    assert torch.equal(Summary.load(row["summary"]).images, Summary.load(stop["summary"]).images)
    again = sweep.run_sweep(sweep_config.parse(raw), workers=0, log=quiet)
    assert again.skipped == 2 and not again.finished


def test_learnt_labels_are_also_evaluated_hard_as_their_own_rows(tmp_path):
    raw = tiny(tmp_path, methods=["kip"], overrides={"kip": {"batch_real": 32}},
               eval={"epochs": 1, "runs": 1, "hard_labels": True})  # fmt: skip
    outcome = sweep.run_sweep(sweep_config.parse(raw), workers=0, log=quiet)
    assert len(outcome.finished) == 1
    soft, hard = load_rows(tmp_path / "tiny_digits.json")
    assert (soft.get("variant"), soft["labels"]) == (None, "soft")
    assert (hard["variant"], hard["labels"]) == ("hard-labels", "hard, argmax of learnt")
    assert hard["summary_sha256"] == soft["summary_sha256"]  # one summary, two evaluations
    again = sweep.run_sweep(sweep_config.parse(raw), workers=0, log=quiet)
    assert again.skipped == 1 and not again.finished


def test_a_folder_run_past_a_stop_without_keeping_it_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(profile, "time", BusyCore())
    raw = tiny(tmp_path, methods=["dm"], iterations=100, budget=45)
    sweep.run_sweep(sweep_config.parse(raw), workers=0, log=quiet)
    (task,) = sweep_config.parse(raw | {"budget_stops": [25]}).cells()
    with pytest.raises(DistillError, match="ran past 25 wall seconds.*delete the folder"):
        bench.run_cell(task.cell, datasets.load("digits"), config=task.evals[0],
                       results=task.results, runs_dir=task.runs_dir, device=torch.device("cpu"),
                       progress=False)  # fmt: skip


def test_an_unknown_budget_clock_and_a_cpu_budget_on_a_gpu_are_refused():
    with pytest.raises(DistillError, match="budget_clock must be one of wall, cpu"):
        sweep_config.parse({"datasets": ["digits"], "methods": ["dm"], "ipc": [1],
                            "budget_clock": "gpu"})  # fmt: skip
    with pytest.raises(DistillError, match="budget_clock must be one of wall, cpu.*use cpu"):
        RunOptions(budget=1, budget_clock="process")
    with pytest.raises(DistillError, match=r"budget stops \[5\] need a budget above"):
        RunOptions(budget=5, budget_stops=(5,))
    with pytest.raises(DistillError, match="miss the work of cuda; use budget_clock wall"):
        options = RunOptions(budget=1, budget_clock="cpu")
        optimise(param=None, objective=None, data=None, generator=None, stepper=None,
                 iterations=1, summarise=None, options=options, describe="",
                 device=torch.device("cuda"), out=None)  # fmt: skip


def test_killed_sweep_loses_no_finished_cell_and_reruns_only_the_missing(tmp_path, monkeypatch):
    overrides = {"herding": {"feature_epochs": 1}, "dm": {"batch_real": 16}}
    config = sweep_config.parse(
        tiny(tmp_path, methods=["random", "herding", "dm"], overrides=overrides)
    )
    ran = []

    def killed_at_second(cell, data, **kwargs):
        ran.append(cell.method)
        if len(ran) == 2:
            raise KeyboardInterrupt  # the user stops the sweep in the middle of a cell
        return bench.run_cell(cell, data, **kwargs)

    monkeypatch.setattr(sweep, "run_cell", killed_at_second)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(config, workers=0, log=quiet)
    kept = load_rows(tmp_path / "tiny_digits.json")
    assert [r["method"] for r in kept] == ["random"]

    ran.clear()
    monkeypatch.setattr(sweep, "run_cell", lambda cell, data, **kw: ran.append(cell.method) or
                        bench.run_cell(cell, data, **kw))  # fmt: skip
    outcome = sweep.run_sweep(config, workers=0, log=quiet)
    assert ran == ["herding", "dm"] and outcome.skipped == 1
    assert sorted(r["method"] for r in load_rows(tmp_path / "tiny_digits.json")) == [
        "dm",
        "herding",
        "random",
    ]


def test_a_failing_cell_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    config = sweep_config.parse(tiny(tmp_path, overrides={}, methods=["dm", "random"]))
    real = bench.run_cell

    def dm_breaks(cell, data, **kwargs):
        if cell.method == "dm":
            raise RuntimeError("boom")
        return real(cell, data, **kwargs)

    monkeypatch.setattr(sweep, "run_cell", dm_breaks)
    lines = []
    outcome = sweep.run_sweep(config, workers=0, log=lines.append)
    assert [(c.cell.method, err) for c, err in outcome.failed] == [("dm", "RuntimeError: boom")]
    assert [c.cell.method for c, _, _ in outcome.finished] == ["random"]
    assert any(line.startswith("FAILED dm digits ipc1 s0") for line in lines)


def test_dry_run_lists_cells_and_runs_none(tmp_path, monkeypatch, capsys):
    from datadistill.cli.main import main

    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny(tmp_path, budget=900, budget_stops=[300])))
    monkeypatch.setattr(sweep, "run_cell", lambda *a, **k: pytest.fail("dry run ran a cell"))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 cells, 0 already done, 2 to run" in out and "dm digits ipc1 s0" in out
    assert "budget 300, 900 wall s" in out
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2


def test_trajectory_cells_ask_for_their_missing_experts(tmp_path):
    folder = tmp_path / "experts"
    raw = tiny(
        tmp_path,
        methods=["mtt", "dm"],
        ipc=[1, 10],
        overrides={"mtt": {"experts": str(folder), "net_width": 16}},
        experts={"num": 3, "epochs": 5},
    )
    config = sweep_config.parse(raw)
    (job,) = sweep.expert_jobs(config, config.cells())
    assert job.folder == str(folder) and job.dataset == "digits"
    # digits: start epoch < 10, 2 expert epochs -> epochs 0..11 are read; 5 asked, 11 needed
    assert (job.config.num, job.config.epochs) == (3, 11)
    assert job.config.net_config == {"depth": 2, "width": 16}


@pytest.mark.slow
def test_ray_runs_the_sweep_on_two_local_workers(tmp_path):
    """Ray's start-up alone takes 10-30 s on 2 busy cores, hence `slow`."""
    config = sweep_config.parse(tiny(tmp_path))
    outcome = sweep.run_sweep(config, workers=2, log=quiet)
    assert sorted(c.cell.method for c, _, _ in outcome.finished) == ["dm", "random"]
    rows = load_rows(tmp_path / "tiny_digits.json")
    assert sorted(r["method"] for r in rows) == ["dm", "random"]
    assert all(r["command"] == rows[0]["command"] for r in rows)
    again = sweep.run_sweep(config, workers=2, log=quiet)  # nothing left: Ray never starts
    assert again.skipped == 2 and not again.finished
