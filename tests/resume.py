"""Shared by the resume tests: one uninterrupted run, and one crashed at 5 then resumed."""

import pytest

from datadistill.distill import run
from datadistill.loop import RunOptions


def full_and_resumed(name, data, tmp_path, overrides, *, iterations=6, every=2, crash_at=5):
    """Return (uninterrupted summary, summary of a run interrupted at `crash_at` and resumed)."""
    opts = dict(iterations=iterations, checkpoint_every=every, progress=False)
    full = run(name, data, 1, options=RunOptions(**opts), overrides=overrides)

    def crash(it, record):
        if it == crash_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(
            name,
            data,
            1,
            options=RunOptions(**opts),
            overrides=overrides,
            out_dir=tmp_path,
            callbacks=[crash],
        )
    resumed = run(
        name,
        data,
        1,
        options=RunOptions(**opts, resume=True),
        overrides=overrides,
        out_dir=tmp_path,
    )
    return full, resumed
