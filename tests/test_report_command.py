"""`distill report RESULTS.json`: each app's comparison table from its committed rows."""

import argparse
from pathlib import Path

import pytest

from datadistill.errors import DistillError
from datadistill.results import load_rows
from datadistill_apps import report

RESULTS = Path(__file__).parents[1] / "experiments" / "results"
TITLES = {
    "federated_fmnist": ["Federated runs", "One-shot summary upload vs FedAvg"],
    "privacy_fmnist": ["Private vs non-private training"],
    "privacy_audit": ["Membership-inference audits"],
    "nas_fmnist": ["NAS proxies vs the ground truth"],
}


def _report(*paths) -> str:
    parser = argparse.ArgumentParser()
    handlers = report.add_commands(parser.add_subparsers(dest="command"))
    return handlers["report"](parser.parse_args(["report", *map(str, paths)]))


@pytest.mark.parametrize("stem", sorted(TITLES))
def test_each_apps_rows_get_their_comparison_table_in_percent(stem, capsys):
    text = _report(RESULTS / f"{stem}.json")
    assert capsys.readouterr().out.strip() == text.strip()
    for title in TITLES[stem]:
        assert title in text
    others = [t for s, ts in TITLES.items() if s != stem for t in ts]
    assert not [t for t in others if t in text]
    rows = [r for r in load_rows(RESULTS / f"{stem}.json") if "acc_mean" in r]
    if stem != "nas_fmnist":  # NAS rows rank cells: their table shows correlations
        assert f"{100 * rows[0]['acc_mean']:.2f}" in text  # fractions are shown as percent


def test_rows_of_several_apps_get_one_table_each():
    text = _report(RESULTS / "privacy_audit.json", RESULTS / "federated_fmnist.json")
    assert "Membership-inference audits" in text and "Federated runs" in text


def test_a_missing_or_empty_file_is_refused(tmp_path):
    with pytest.raises(DistillError, match="no results file"):
        _report(tmp_path / "nope.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DistillError, match="no result rows"):
        _report(tmp_path / "empty.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DistillError, match="not JSON"):
        _report(tmp_path / "bad.json")
