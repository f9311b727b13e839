"""DD-Ranking's fairness scores from rows, on a case worked by hand."""

import math

import pytest

from datadistill.bench import fairness


def _row(method: str, ipc: int, acc: float, labels: str = "hard") -> dict:
    return {"method": method, "ipc": ipc, "acc_mean": acc, "labels": labels}


def test_scores_on_a_hand_case():
    cells = {
        ("random", 10): _row("random", 10, 0.70),
        ("dm", 10): _row("dm", 10, 0.80),
        ("kip", 10): _row("kip", 10, 0.60, labels="soft"),
    }
    full = _row(fairness.FULL_DATA, 6000, 0.90)
    got = fairness.scores(cells, full)
    assert got["dm", 10]["ior"] == pytest.approx(0.10)
    assert got["dm", 10]["hlr"] == pytest.approx(0.10)
    # a = 0.5 * 0.10 - 0.5 * 0.10 = 0: LRS = 100 (1 - 1/e) / (e - 1/e) = 26.89
    assert got["dm", 10]["lrs"] == pytest.approx(26.894142136999513)
    assert got["kip", 10]["ior"] == pytest.approx(-0.10)  # below random: a negative IOR
    assert ("random", 10) not in got
    text = fairness.table(cells, full, [10])
    assert "| dm | +10.00 | +10.00 | 26.89 |" in text
    assert "kip (learnt labels)" in text


def test_lrs_spans_zero_to_hundred_and_weighs_by_w():
    assert fairness.lrs(1.0, 0.0, w=1.0) == pytest.approx(100.0)
    assert fairness.lrs(0.0, 1.0, w=0.0) == pytest.approx(0.0)
    assert fairness.lrs(0.2, 0.1, w=0.25) == pytest.approx(
        100 * (math.exp(0.05 - 0.075) - math.exp(-1)) / (math.e - math.exp(-1))
    )
    with pytest.raises(ValueError, match="w must be"):
        fairness.lrs(0.1, 0.1, w=1.5)


def test_missing_references_leave_the_scores_empty():
    cells = {("dm", 1): _row("dm", 1, 0.6)}
    got = fairness.scores(cells, None)
    assert got["dm", 1] == {"ior": None, "hlr": None, "lrs": None}
    assert "| dm | - | - | - |" in fairness.table(cells, None, [1])
