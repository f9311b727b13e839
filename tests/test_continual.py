"""apps/continual: Split benchmarks, equal memory accounting, Avalanche's loop, the CLI."""

import json
import re
import shutil
import sys
import time
from dataclasses import dataclass

import pytest
import torch

pytest.importorskip("avalanche")

from avalanche.training.plugins import GDumbPlugin, ReplayPlugin  # noqa: E402
from avalanche.training.storage_policy import ExemplarsBuffer  # noqa: E402

from datadistill.errors import DistillError  # noqa: E402
from datadistill.loop import CHECKPOINT_FILE  # noqa: E402
from datadistill.results import ROW_KEYS  # noqa: E402
from datadistill_apps.continual import strategies  # noqa: E402
from datadistill_apps.continual.bench import class_order, split_benchmark  # noqa: E402
from datadistill_apps.continual.loop import run_stream  # noqa: E402
from datadistill_apps.continual.memory import DistillMemoryConfig  # noqa: E402

MEMORY = 3
TINY = strategies.StrategyConfig(arch="mlp", epochs=1, recall_epochs=2, batch_size=64)
TINY_DM = DistillMemoryConfig(method="dm", iterations=2)
BUFFERED = [s for s in strategies.available() if s != "naive"]


@pytest.fixture(scope="module")
def bench(digits):
    return split_benchmark("split-digits", seed=0, data=digits)


@pytest.fixture(scope="module")
def tiny_runs(bench):
    return {
        s: run_stream(bench, strategy=s, memory=MEMORY, seed=0, config=TINY, distill=TINY_DM)
        for s in BUFFERED
    }


def test_split_has_five_experiences_of_two_seeded_classes(bench, digits):
    seen = [sorted(e.classes_in_this_experience) for e in bench.scenario.train_stream]
    assert len(seen) == 5 and all(len(c) == 2 for c in seen)
    assert sorted(sum(seen, [])) == list(range(10))
    assert sum(seen, []) != list(range(10)) or bench.order == list(range(10))
    assert [sorted(bench.order[2 * i : 2 * i + 2]) for i in range(5)] == seen
    assert class_order(num_classes=10, seed=1) == class_order(num_classes=10, seed=1)
    assert class_order(num_classes=10, seed=1) != class_order(num_classes=10, seed=2)
    sizes = sum(len(e.dataset) for e in bench.scenario.train_stream)
    assert sizes == len(digits.y_train)


@pytest.mark.parametrize("name", BUFFERED)
def test_every_buffer_holds_memory_images_per_seen_class(tiny_runs, name):
    sizes = tiny_runs[name].buffer_sizes
    assert len(sizes) == 5
    for i, usage in enumerate(sizes):
        assert usage["images"] == MEMORY * 2 * (i + 1)
        assert sorted(usage["per_class"].values()) == [MEMORY] * 2 * (i + 1)


def test_memory_is_equal_in_images_and_bytes_across_strategies(tiny_runs):
    finals = {
        s: (r.buffer_sizes[-1]["images"], r.buffer_sizes[-1]["bytes"]) for s, r in tiny_runs.items()
    }
    assert len(set(finals.values())) == 1, finals
    images, nbytes = next(iter(finals.values()))
    assert nbytes == images * (8 * 8 * 4 + 8)  # float32 8x8 image + int64 label each
    assert {r.stored_bytes for r in tiny_runs.values()} == {nbytes}


def test_distilled_buffer_labels_follow_each_experience(bench, tiny_runs):
    for name in strategies.DISTILLED:
        per_class = tiny_runs[name].buffer_sizes[-1]["per_class"]
        assert sorted(per_class) == list(range(10))
    first = tiny_runs["distill-recall"].buffer_sizes[0]["per_class"]
    assert sorted(first) == sorted(bench.order[:2])


def test_strategies_are_avalanche_plugins_not_copies(bench):
    ev = None
    for name, plugin_cls in [("replay", ReplayPlugin), ("gdumb", GDumbPlugin)]:
        from avalanche.training.plugins import EvaluationPlugin

        ev = EvaluationPlugin(loggers=[])
        built = strategies.build(
            name, spec=bench.data.spec, memory=MEMORY, config=TINY, distill=TINY_DM,
            evaluator=ev, seed=0,
        )  # fmt: skip
        assert any(isinstance(p, plugin_cls) for p in built.strategy.plugins)
        assert isinstance(built.buffer, ExemplarsBuffer)


def test_split_digits_run_in_avalanches_loop_under_a_minute(bench, tmp_path):
    cfg = strategies.StrategyConfig(arch="mlp", epochs=2, recall_epochs=40, batch_size=64)
    log = tmp_path / "avalanche.log"
    # CPU seconds on one thread: neither a busy machine nor idle threads spinning fail it
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.process_time()
    try:
        r = run_stream(
            bench,
            strategy="distill-recall",
            memory=5,
            seed=0,
            config=cfg,
            distill=DistillMemoryConfig(iterations=20),
            log_file=log,
        )
    finally:
        torch.set_num_threads(threads)
    assert time.process_time() - started < 60
    assert len(r.acc_matrix) == 5 and all(len(row) == 5 for row in r.acc_matrix)
    assert len(r.curve) == 5 and 0.0 <= r.forgetting <= 1.0
    assert r.final_acc > 0.4  # chance is 0.1: a model trained on 50 distilled images only
    assert r.acc_matrix[0][4] < 0.05  # class-incremental: unseen classes stay unknown
    assert "Top1_Acc_Stream" in log.read_text()  # Avalanche's own TextLogger wrote it


def test_bad_input_is_refused(bench):
    from avalanche.training.plugins import EvaluationPlugin

    kw = dict(spec=bench.data.spec, config=TINY, distill=TINY_DM, seed=0)
    with pytest.raises(DistillError, match="unknown strategy"):
        strategies.build("ewc", memory=3, evaluator=EvaluationPlugin(loggers=[]), **kw)
    with pytest.raises(DistillError, match="at least 1"):
        strategies.build("replay", memory=0, evaluator=EvaluationPlugin(loggers=[]), **kw)
    with pytest.raises(DistillError, match="unknown method"):
        strategies.build(
            "distill-replay", memory=3, evaluator=EvaluationPlugin(loggers=[]),
            **{**kw, "distill": DistillMemoryConfig(method="nope")},
        )  # fmt: skip
    with pytest.raises(DistillError, match="unknown benchmark"):
        split_benchmark("split-cifar", seed=0, data=bench.data)


@dataclass
class FakeEntryPoint:
    name: str
    value: str


def test_cli_runs_and_writes_rows(monkeypatch, tmp_path, digits, capsys):
    from datadistill import data as datasets
    from datadistill import plugins
    from datadistill.cli import main as cli

    monkeypatch.setattr(
        plugins,
        "entry_points",
        lambda group: [FakeEntryPoint("continual", "datadistill_apps.continual.plugin")],
    )
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))
    monkeypatch.setattr(datasets, "load", lambda *a, **k: digits)
    out = tmp_path / "continual.json"
    argv = [
        "continual", "--benchmark", "split-digits", "--method", "dm", "--memory", "2",
        "--seeds", "2", "--strategies", "naive,distill-replay", "--iterations", "2",
        "--arch", "mlp", "--epochs", "1", "--device", "cpu", "--quiet", "--results", str(out),
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    rows = json.loads(out.read_text())
    assert all(set(ROW_KEYS) <= set(r) for r in rows)
    means = [r for r in rows if r["runs"] == 2]
    assert sorted(r["strategy"] for r in means) == ["distill-replay", "naive"]
    assert len(rows) == 2 * 2 + 2
    assert cli.main([*argv[:-2], "--strategies", "magic"]) == 2
    assert "unknown strategy" in capsys.readouterr().err
    assert "datadistill_apps.continual.plugin" in sys.modules
    assert torch.is_tensor(digits.x_train)


def test_share_herding_keeps_avalanches_first_picks():
    from avalanche.training.storage_policy import HerdingSelectionStrategy

    features = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    model = strategies.EmbedHead(torch.nn.Linear(1, 1))
    full = HerdingSelectionStrategy(model, "embedding").make_sorted_indices_from_features(features)
    fast = strategies.ShareHerding(model, "embedding", share=10)
    order = fast.make_sorted_indices_from_features(features)
    assert order[:10] == full[:10]
    assert sorted(order) == list(range(300))  # a full order, as Avalanche's buffer expects


def test_naive_row_is_reused_across_memories_and_says_so(bench):
    from datadistill_apps.continual.rows import memoryless_copy, seed_row

    naive = run_stream(bench, strategy="naive", memory=MEMORY, seed=0, config=TINY)
    row = seed_row(naive, dataset="digits", method="naive", iterations=0, arch="mlp")
    copy = memoryless_copy(row, MEMORY + 5)
    assert copy["memory_per_class"] == copy["ipc"] == MEMORY + 5
    assert copy["reused_from"] == f"memory={MEMORY}" and copy["acc_mean"] == row["acc_mean"]
    held = {**row, "strategy": "replay", "images": 2 * MEMORY}
    with pytest.raises(ValueError, match="holds no memory"):
        memoryless_copy(held, MEMORY + 5)  # a buffer's size changes its result


def test_a_stopped_stream_reuses_its_cached_distillations(bench, tmp_path, monkeypatch):
    from datadistill_apps.continual import memory

    def stream(cache):
        monkeypatch.setattr(memory, "_SUMMARIES", {})  # only the disk may remember
        cfg = DistillMemoryConfig(method="dm", iterations=3, cache=cache)
        return run_stream(
            bench, strategy="distill-recall", memory=MEMORY, seed=0, config=TINY, distill=cfg
        )

    uncached = stream(None)
    first = stream(tmp_path)
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 5  # one distillation per experience
    # as if stopped during experience 4: its and the last one's distillations are lost
    by_seed = {int(re.search(r"-s(\d+)-[0-9a-f]{10}$", f.name)[1]): f for f in folders}
    assert sorted(by_seed) == [0, 1, 2, 3, 4]
    for lost in (3, 4):
        shutil.rmtree(by_seed[lost])
    kept = [by_seed[s] / CHECKPOINT_FILE for s in (0, 1, 2)]
    stamps = [f.stat().st_mtime_ns for f in kept]
    resumed = stream(tmp_path)
    assert uncached.acc_matrix == first.acc_matrix == resumed.acc_matrix
    assert [f.stat().st_mtime_ns for f in kept] == stamps  # loaded, not run again
    assert len(list(tmp_path.iterdir())) == 5  # the two lost ones ran again


def test_a_stream_row_cites_the_memory_it_ended_with(bench, tmp_path, monkeypatch):
    from datadistill import evidence
    from datadistill.results import append_rows, load_rows
    from datadistill.summary import Summary
    from datadistill_apps.continual.rows import seed_row

    monkeypatch.chdir(tmp_path)  # rows cite paths relative to the working folder
    target = tmp_path / "memories" / "replay-order0.safetensors"
    kw = dict(strategy="replay", memory=MEMORY, config=TINY, distill=TINY_DM)
    first = run_stream(bench, **kw, seed=0, memory_file=target.relative_to(tmp_path))
    row = seed_row(first, dataset="digits", method="replay", iterations=0, arch="mlp")
    append_rows("rows.json", [row])
    (cited,) = load_rows("rows.json")
    assert cited["summary"] == first.memory_file
    assert cited["summary_sha256"] == evidence.sha256(target)
    kept = Summary.load(target)
    assert kept.n == first.buffer_sizes[-1]["images"] == MEMORY * 10
    assert kept.stored_bytes == first.stored_bytes
    assert sorted(kept.labels.unique().tolist()) == list(range(10))
    before = target.read_bytes()
    second = run_stream(bench, **kw, seed=1, memory_file=target.relative_to(tmp_path))
    assert second.memory_file != first.memory_file  # other exemplars, kept beside the first
    assert target.read_bytes() == before
