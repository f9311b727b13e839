"""README.md and docs/ tables come from the committed result rows, never typed by hand."""

import importlib.util
import re
import statistics
from pathlib import Path

import pytest

from datadistill.results import append_rows

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "experiments" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_number_in_readme_and_docs_tables_matches_the_generator(report):
    assert report.check() == [], "out of date: run python experiments/report.py"


def _change_one_number(text: str, start: str, end: str | None = None) -> tuple[str, str]:
    """`text` with the first table number after `start` (and before `end`) moved by 0.01."""
    lo = text.index(start)
    hi = text.index(end, lo) if end else len(text)
    for line in text[lo:hi].splitlines():
        numbers = re.findall(r"\b\d+\.\d\d\b", line) if line.startswith("|") else []
        if numbers:
            old = numbers[0]
            new = f"{float(old) + 0.01:.2f}"
            return text.replace(line, line.replace(old, new, 1), 1), new
    raise AssertionError(f"no table number after {start!r}")


def test_a_number_changed_by_hand_fails_the_check(report):
    readme = (ROOT / "README.md").read_text()
    altered, new = _change_one_number(readme, report.HEADLINE_START, report.HEADLINE_END)
    problems = report.check({"README.md": altered})
    assert len(problems) == 1 and f" {new} in a table, the generator says" in problems[0]
    page = (ROOT / "docs" / "results.md").read_text()
    altered, new = _change_one_number(page, "## ")
    problems = report.check({"docs/results.md": altered})
    assert len(problems) == 1 and problems[0].startswith("docs/results.md:")


def test_a_hand_typed_table_outside_the_generated_blocks_fails(report):
    readme = (ROOT / "README.md").read_text()
    typed = readme.replace(
        "## Results", "| method | acc |\n|---|---|\n| dm | 81.63 |\n\n## Results"
    )
    problems = report.check({"README.md": typed})
    assert any("81.63 in a table no generator writes" in p for p in problems)
    words = readme.replace(
        "## Results", "| dataset | source |\n|---|---|\n| cifar10 | 8x8 |\n\n## Results"
    )
    assert report.check({"README.md": words}) == []  # names like cifar10 hold no number


def test_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 260
    for needed in ("make demo", "make test", "distill run", "<!-- headline:start -->"):
        assert needed in readme


def test_every_result_row_follows_the_schema():
    from datadistill.results import ROW_KEYS, load_rows

    for path in (ROOT / "experiments" / "results").glob("*.json"):
        for row in load_rows(path):
            missing = [k for k in ROW_KEYS if k not in row]
            assert not missing, f"{path.name}: a row lacks {missing}"


def test_the_headline_marks_the_best_at_any_budget_and_the_best_at_equal_compute(report, tmp_path):
    def row(method, accs, **extra):
        return {
            "method": method, "dataset": report.BENCH_DATASET, "ipc": 10, "iterations": 1000,
            "arch": "convnet", "runs": len(accs), "acc_mean": statistics.fmean(accs),
            "acc_std": statistics.pstdev(accs), "images": 100, "stored_bytes": 313600,
            "sec_per_iter": 0.5, "peak_mem_mb": 1.0, "command": "test", "accs": list(accs),
            "eval_epochs": 300, "seed": 0, **extra,
        }  # fmt: skip

    sweep = {"budget_seconds": report.BUDGET.budget, "budget_clock": report.BUDGET.budget_clock}
    other_clock = "wall" if report.BUDGET.budget_clock == "cpu" else "cpu"
    append_rows(tmp_path / "fake.json", [
        row("dm", (0.85, 0.86) * 3, variant="pool200"),  # the best at any budget
        row("dsa", (0.845, 0.855) * 3),  # within noise of it
        row("dc", (0.70,) * 6),
        row("dm", (0.70,) * 5, **sweep),
        row("dsa", (0.75,) * 5, **sweep),  # the best at equal compute
        row("dc", (0.99,) * 5, budget_seconds=report.BUDGET.budget, budget_clock=other_clock),
    ])  # fmt: skip
    cells = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[4]
        for line in report.headline_table(tmp_path).splitlines()[2:]
    }
    assert cells["dm"].startswith("**85.50") and "†" not in cells["dm"]
    assert cells["dsa"].startswith("85.00") and cells["dsa"].endswith("≈ †")
    assert cells["dc"] == "70.00 ± 0.00"  # another clock's sweep is not this one


def test_the_equal_compute_tables_show_each_budget_and_score_learnt_labels_hard(report, tmp_path):
    def row(method, acc, seconds, **extra):
        return {
            "method": method, "dataset": report.BENCH_DATASET, "ipc": 10, "iterations": 10,
            "arch": "convnet", "runs": 5, "acc_mean": acc, "acc_std": 0.0, "images": 100,
            "stored_bytes": 313600, "sec_per_iter": 0.5, "peak_mem_mb": 1.0, "command": "test",
            "eval_epochs": 300, "seed": 0, "budget_seconds": seconds,
            "budget_clock": report.BUDGET.budget_clock, "cpu": "AMD EPYC", "threads": 1, **extra,
        }  # fmt: skip

    stop, full = report.sweep_budgets()[0], report.BUDGET.budget
    assert stop < full  # the sweep answers a smaller budget on the way
    assert "has not run yet" in report.sweep_time(tmp_path)
    hour = {"eval_seconds": 1800, "distill_seconds": 1800}  # half an hour each
    append_rows(tmp_path / "fake.json", [
        row("random", 0.50, full, eval_seconds=1800), row("dm", 0.60, stop, summary="a", **hour),
        row("dm", 0.70, full, summary="b", **hour),
        row("kip", 0.80, full, labels="soft", summary="c", **hour),
        row("kip", 0.65, full, labels="hard, argmax of learnt", variant="hard-labels",
            summary="c", **hour),
    ])  # fmt: skip
    # 5 evaluations, and one distillation per run at the full budget (dm's stop is on the way)
    assert "3 cells, 3.5 hours of one core" in report.sweep_time(tmp_path)
    table = report.budget_table(tmp_path).splitlines()
    assert f"accuracy % at {stop:g} s" in table[0] and f"accuracy % at {full:g} s" in table[0]
    (dm,) = [line for line in table if line.startswith("| dm |")]
    assert "60.00" in dm and "70.00" in dm
    assert "Ran on: AMD EPYC, 1 thread(s) (a cell, as its rows say)." in table
    scores = report.fairness_table(tmp_path, full)
    (kip,) = [line for line in scores.splitlines() if line.startswith("| kip")]
    assert "learnt labels" not in kip and "+15.00" in kip  # 65% hard against random's 50%
