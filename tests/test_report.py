"""The README's results table is generated from the committed result files, never typed."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "experiments" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_table_matches_result_files():
    report = _report()
    readme = (ROOT / "README.md").read_text()
    assert report.render(readme, report.results_table()) == readme, (
        "README.md is out of date: run python experiments/report.py"
    )


def test_readme_benchmark_table_matches_result_files():
    report = _report()
    readme = (ROOT / "README.md").read_text()
    assert report.render_all(readme) == readme, (
        "README.md's benchmark table is out of date: run python experiments/report.py"
    )


def test_every_result_row_follows_the_schema():
    from datadistill.results import ROW_KEYS, load_rows

    for path in (ROOT / "experiments" / "results").glob("*.json"):
        for row in load_rows(path):
            missing = [k for k in ROW_KEYS if k not in row]
            assert not missing, f"{path.name}: a row lacks {missing}"
