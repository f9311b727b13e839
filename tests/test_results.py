"""Result rows: one schema, atomic appends that replace a re-run cell."""

import pytest

from datadistill.results import ROW_KEYS, append_rows, load_rows, table


def _row(**kw):
    row = {k: 0 for k in ROW_KEYS}
    row.update(
        method="dm",
        dataset="digits",
        arch="convnet",
        command="x",
        acc_mean=0.5,
        acc_std=0.01,
        stored_bytes=100,
        seed=0,
        eval_epochs=300,
    )
    row.update(kw)
    return row


def test_append_replaces_the_same_cell(tmp_path):
    path = tmp_path / "r.json"
    append_rows(path, [_row(ipc=1), _row(ipc=10)])
    append_rows(path, [_row(ipc=1, acc_mean=0.9)])
    rows = load_rows(path)
    assert len(rows) == 2
    assert {r["ipc"]: r["acc_mean"] for r in rows} == {1: 0.9, 10: 0.5}


def test_rows_that_differ_in_training_epochs_stand_side_by_side(tmp_path):
    path = tmp_path / "r.json"
    append_rows(path, [_row(epochs=1, acc_mean=0.7)])
    append_rows(path, [_row(epochs=5, acc_mean=0.8)])
    assert sorted(r["acc_mean"] for r in load_rows(path)) == [0.7, 0.8]


def test_rows_must_follow_the_schema(tmp_path):
    bad = _row()
    del bad["stored_bytes"]
    with pytest.raises(ValueError, match="stored_bytes"):
        append_rows(tmp_path / "r.json", [bad])
    assert not (tmp_path / "r.json").exists()


def test_table_has_a_line_per_row():
    text = table([_row(ipc=1), _row(ipc=10)])
    assert text.count("\n") == 3 and "50.00 ± 1.00" in text
