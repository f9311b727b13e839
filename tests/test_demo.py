"""`make demo`'s verdict line: computed from the rows it printed, and able to say 'no'."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "experiments" / "demo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(method, mean, std, ipc=1):
    return {"method": method, "ipc": ipc, "acc_mean": mean, "acc_std": std, "runs": 3,
            "images": 10 * ipc}  # fmt: skip


def test_verdict_needs_a_gap_beyond_both_standard_deviations():
    demo = _demo()
    ahead, line = demo.verdict([_row("random", 0.77, 0.01), _row("dm", 0.85, 0.02)])
    assert ahead and "+8.00 points, more than the larger standard deviation (2.00)" in line
    ahead, line = demo.verdict([_row("random", 0.77, 0.03), _row("dm", 0.79, 0.01)])
    assert not ahead and "within noise" in line
    ahead, _ = demo.verdict([_row("random", 0.9, 0.01, 10), _row("dm", 0.7, 0.01),
                             _row("random", 0.6, 0.01), _row("dm", 0.9, 0.01, 10)])  # fmt: skip
    assert ahead  # reads the highlighted IPC's rows only
