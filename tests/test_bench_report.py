"""The benchmark's tables and figures come from result rows: a tiny fake results file."""

import importlib.util
import statistics
from pathlib import Path

import pytest

from datadistill.bench import plots as bench_plots
from datadistill.bench import tables as bench_tables
from datadistill.results import append_rows

ROOT = Path(__file__).resolve().parent.parent


def row(method, ipc, arch="convnet", accs=(0.5, 0.7), **extra) -> dict:
    return {
        "method": method, "dataset": "digits", "ipc": ipc, "iterations": 0 if method ==
        "random" else 10, "arch": arch, "runs": len(accs), "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.pstdev(accs), "images": 10 * ipc, "stored_bytes": 256 * ipc,
        "sec_per_iter": None if method == "random" else 0.5, "peak_mem_mb": 12.0,
        "command": "test", "accs": list(accs), "eval_epochs": 300, "seed": 0,
        "distill_seconds": 5.0, "eval_seconds": 2.0, **extra,
    }  # fmt: skip


@pytest.fixture
def rows():
    return [
        row("random", 1, accs=(0.3, 0.5)),
        row("random", 10, accs=(0.8, 0.8)),
        row("dm", 1),
        row("dm", 1, accs=(0.9, 0.9), seed=1),  # a second seed: pooled with seed 0
        row("dm", 10, accs=(0.9, 0.7)),
        row("dm", 10, "mlp", accs=(0.6,), eval_epochs=30),
        row("dm", 10, "convnet", accs=(0.2,), eval_epochs=30),  # cheaper protocol: not main
        row("random", 10, "mlp", accs=(0.4,), eval_epochs=30),
        row("random", 10, "convnet", accs=(0.3,), eval_epochs=30),
        row("dm", 10, variant="ablation", accs=(0.0,)),  # never in the tables
    ]


def test_performance_pools_seeds_and_puts_published_beside_ours(rows):
    published = {"digits": {"dm": {10: {"acc": 91.5, "std": 0.4, "source": "paper, Table 1"}}}}
    md, table = bench_tables.performance(rows, dataset="digits", published=published)
    lines = md.splitlines()
    assert lines[0] == "| method | IPC 1 ours | IPC 1 published | IPC 10 ours | IPC 10 published |"
    assert lines[2].startswith("| random | 40.00 ± 10.00 | - | 80.00 ± 0.00 | - |")
    pooled = statistics.pstdev([0.5, 0.7, 0.9, 0.9])
    assert lines[3] == f"| dm | 75.00 ± {100 * pooled:.2f} | - | 80.00 ± 10.00 | 91.50 ± 0.40 |"
    assert 'dm,10,80.0,10.0,2,0,10,300,100,2560,91.5,0.4,"paper, Table 1"' in table
    assert "dm,1,75.0" in table and "| 0 1 |" not in md


def test_transfer_uses_the_protocol_covering_most_architectures(rows):
    md, table = bench_tables.transferability(rows, dataset="digits", ipc=10)
    assert md.splitlines()[0] == "| method | convnet | mlp |"
    assert "| random | 30.00 ± 0.00 | 40.00 ± 0.00 |" in md
    assert "| dm | 20.00 ± 0.00 | 60.00 ± 0.00 |" in md


def test_transfer_cells_with_fewer_runs_than_the_rest_say_how_many(rows):
    rows = rows + [
        row("dm", 10, "resnet18", accs=(0.55,), eval_epochs=300),
        row("random", 10, "resnet18", accs=(0.4, 0.6), eval_epochs=300),
    ]
    md, _ = bench_tables.transferability(rows, dataset="digits", ipc=10)
    assert md.splitlines()[0] == "| method | convnet | resnet18 |"
    assert "| dm | 80.00 ± 10.00 | 55.00 (1 run) |" in md  # ConvNet: 2 runs, ResNet-18: 1
    assert "| random | 80.00 ± 0.00 | 50.00 ± 10.00 |" in md  # 2 runs: as many, no mark
    rows[-2]["diverged_runs"] = 1
    md, _ = bench_tables.transferability(rows, dataset="digits", ipc=10)
    assert "| dm | 80.00 ± 10.00 | 55.00 (1 run), 1 diverged |" in md


def test_cost_table_totals_distillation_and_evaluation(rows):
    md, _ = bench_tables.cost(rows, dataset="digits")
    assert "| dm | 10 | 10 | 0.5 | 5 | 2 | 7 | 12 | cpu |" in md


def test_report_bench_writes_every_table_and_figure(rows, tmp_path):
    append_rows(tmp_path / "fake.json", rows)
    spec = importlib.util.spec_from_file_location(
        "report_bench", ROOT / "experiments" / "report_bench.py"
    )
    report_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report_bench)
    from datadistill.results import load_rows

    paths = report_bench.write(
        load_rows(tmp_path / "fake.json"), dataset="digits", name="fake", out=tmp_path,
        transfer_ipc=10,
    )  # fmt: skip
    names = sorted(p.name for p in paths)
    assert names == sorted([
        "fake_performance.md", "fake_performance.csv", "budget_fake.png", "fake_transfer.md",
        "fake_transfer.csv", "fake_transfer.png", "fake_cost.md", "fake_cost.csv",
    ])  # fmt: skip
    for p in paths:
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmap_and_efficiency_figures_are_pngs(rows, tmp_path):
    a = bench_plots.efficiency(rows, tmp_path / "e.png", dataset="digits")
    b = bench_plots.transfer_heatmap(rows, tmp_path / "t.png", dataset="digits", ipc=10)
    assert a.read_bytes()[:4] == b.read_bytes()[:4] == b"\x89PNG"


def test_a_validation_search_plots_one_bar_per_setting(tmp_path, monkeypatch):
    """cells.py --validation draws its search as bars, best first, named without the
    split's prefix; the file is a PNG."""
    from datadistill import plots

    rows = [
        {"method": "mtt", "ipc": 1, "variant": f"val1000-{v}", "acc_mean": a, "acc_std": 0.01}
        for v, a in (("start-5", 0.64), ("start-2", 0.74))
    ]
    ticks, save = [], plots.save

    def spy(fig, path):
        ticks.extend(t.get_text() for t in fig.axes[0].get_xticklabels())
        return save(fig, path)

    monkeypatch.setattr(plots, "save", spy)
    out = plots.variant_bars(rows, tmp_path / "search.png", title="t", ylabel="validation")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ticks == ["mtt ipc1\nstart-2", "mtt ipc1\nstart-5"]


def test_best_rows_take_each_sides_best_under_one_protocol_and_name_its_variant():
    rows = [
        row("dm", 10, accs=(0.80,) * 5),
        row("dm", 10, accs=(0.84,) * 5, variant="pool200", iterations=20000),
        row("dm", 10, accs=(0.95,) * 2, variant="lucky"),  # too few runs to compare
        row("dm", 10, accs=(0.99,) * 5, eval_epochs=1000),  # another protocol
        row("dm", 10, accs=(0.99,) * 5, budget_seconds=900),  # an equal-compute cell
        row("dm", 10, accs=(0.99,) * 5, variant="val1000-pool=10"),  # judged on validation
        row("dsa", 10, accs=(0.81, 0.83) * 3),
    ]
    best = bench_tables.best_rows(rows)
    assert best["dm", 10]["variant"] == "pool200"
    assert best["dm", 10]["acc_mean"] == pytest.approx(0.84)
    assert bench_tables.within_noise(best["dm", 10], best["dsa", 10]) is False
    wide = {**best["dsa", 10], "acc_std": 0.03}
    assert bench_tables.within_noise(best["dm", 10], wide) is True


def test_accuracy_against_seconds_joins_each_methods_equal_compute_points_to_its_best(
    tmp_path, monkeypatch
):
    stop = {("dm", 10): row("dm", 10, accs=(0.65,), distill_cpu_seconds=300.0)}
    equal = {
        ("dm", 10): row("dm", 10, accs=(0.70,), distill_cpu_seconds=900.0, distill_seconds=2400.0),
        ("random", 10): row("random", 10, accs=(0.60,)),
    }
    longer = {("dm", 10): row("dm", 10, accs=(0.83,), distill_seconds=7200.0, device="cuda:0")}
    drawn, save = {}, bench_plots.save

    def spy(fig, path):
        ax = fig.axes[0]
        drawn["lines"] = {line.get_label(): line for line in ax.get_lines()}
        return save(fig, path)

    monkeypatch.setattr(bench_plots, "save", spy)
    out = bench_plots.accuracy_against_seconds(
        [stop, equal], longer, tmp_path / "s.png", dataset="digits", ipc=10, clock="cpu"
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dm = drawn["lines"]["dm"]
    assert list(dm.get_xdata()) == [300.0, 900.0, 7200.0]  # CPU seconds, not 2,400 wall ones
    assert list(dm.get_ydata()) == pytest.approx([65.0, 70.0, 83.0])
    assert list(drawn["lines"]["random"].get_ydata()) == [60.0, 60.0]  # no steps: a line across
