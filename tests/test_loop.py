"""The one outer loop (core/loop.py): image and graph runs go through it, and graph runs
resume exactly, with their alternating and decaying optimisers, like image runs do."""

import json
import math

import pytest
import torch
from resume import full_and_resumed

from datadistill import checkpoint, loop, methods
from datadistill.distill import ImageStepper, run
from datadistill.errors import DistillError
from datadistill.graph import data as gd
from datadistill.graph.objectives import GCDMMatching
from datadistill.graph.stepper import GroupAdam
from datadistill.loop import RunOptions

QUIET = RunOptions(iterations=1, progress=False)
# GCond alternating every step: features, structure, features, ... (period 2, one each)
GCOND_FAST = {"outer_loop": "1", "inner_loop": "1", "period": "2", "structure_epochs": "1",
              "hidden": "16", "adj_hidden": "16"}  # fmt: skip
DOSCOND_FAST = {"batch_real": "4", "hidden": "8"}


@pytest.fixture(scope="module")
def csbm():
    return gd.csbm(nodes=120, classes=3, feature_dim=8, p_in=0.1, p_out=0.01,
                   train_per_class=6, val=30, test=40, seed=2)  # fmt: skip


@pytest.fixture(scope="module")
def families():
    return gd.graph_families(graphs_per_class=8, min_nodes=6, max_nodes=9, seed=2)


def test_image_and_graph_runs_call_the_same_loop(digits, csbm, monkeypatch):
    calls = []
    shared = loop.optimise

    def spy(**kwargs):
        calls.append((kwargs["describe"], type(kwargs["stepper"])))
        return shared(**kwargs)

    monkeypatch.setattr(loop, "optimise", spy)
    run("dm", digits, 1, options=QUIET, overrides={"batch_real": "8"})
    run("gcdm", csbm, 1, options=QUIET, overrides={"hidden": "8"})
    assert calls == [("dm digits ipc1", ImageStepper), ("gcdm csbm ipc1", GroupAdam)]


def test_adam_steps_the_summary_and_resumes_exactly(digits, tmp_path):
    """The meta-model methods' papers step their summaries with Adam-like optimisers."""
    adam = {"batch_real": "8", "optimizer": "adam", "lr_img": "0.01"}
    start = run("dm", digits, 1, options=RunOptions(iterations=0, progress=False))
    full, resumed = full_and_resumed("dm", digits, tmp_path, adam)
    # Adam's first step moves every pixel with a gradient by about lr_img
    assert (full.images - start.images).abs().mean() > 0.005
    assert torch.equal(full.images, resumed.images)
    sgd = run("dm", digits, 1, options=RunOptions(iterations=6, progress=False),
              overrides={"batch_real": "8"})  # fmt: skip
    assert not torch.equal(full.images, sgd.images)


def test_unknown_optimizer_names_the_choices(digits):
    with pytest.raises(DistillError, match="unknown optimizer 'lamb'.*sgd, adam"):
        run("dm", digits, 1, options=QUIET, overrides={"optimizer": "lamb"})
    with pytest.raises(DistillError, match="unknown lr_schedule 'step'.*constant, cosine"):
        run("dm", digits, 1, options=QUIET, overrides={"lr_schedule": "step"})


def test_a_cosine_schedule_anneals_the_image_rate_to_zero_and_resumes_exactly(digits, tmp_path):
    cosine = {"batch_real": "8", "lr_schedule": "cosine"}
    full, resumed = full_and_resumed("dm", digits, tmp_path, cosine)
    assert torch.equal(full.images, resumed.images)  # the schedule's position is checkpointed
    rates = [r["lr_img"] for r in loop.run_metrics(tmp_path)]
    base = methods.get("dm").config("digits").lr_img
    expected = [base * (1 + math.cos(math.pi * t / 6)) / 2 for t in range(1, 7)]
    assert rates == pytest.approx(expected) and rates[-1] == pytest.approx(0.0, abs=1e-9)
    constant = run("dm", digits, 1, options=RunOptions(iterations=6, progress=False),
                   overrides={"batch_real": "8"})  # fmt: skip
    assert not torch.equal(full.images, constant.images)
    longer = RunOptions(iterations=9, progress=False, resume=True)  # the curve spans 6
    with pytest.raises(DistillError, match="spans 6 iterations, not 9; resume it with"):
        run("dm", digits, 1, options=longer, overrides=cosine, out_dir=tmp_path)


def _crashed_then_resumed(name, data, overrides, out, *, iterations=6, every=2, crash_at=5):
    opts = dict(iterations=iterations, checkpoint_every=every, progress=False)

    def crash(it, record):
        if it == crash_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(name, data, 2, options=RunOptions(**opts), overrides=overrides, out_dir=out,
                 callbacks=[crash])  # fmt: skip
    return run(name, data, 2, options=RunOptions(**opts, resume=True),
                    overrides=overrides, out_dir=out)  # fmt: skip


@pytest.mark.parametrize(
    "name, fixture, overrides",
    [("gcond", "csbm", GCOND_FAST), ("doscond", "families", DOSCOND_FAST)],
)
def test_interrupted_graph_condensation_resumes_to_the_same_summary(
    name, fixture, overrides, request, tmp_path
):
    data = request.getfixturevalue(fixture)
    whole = run(name, data, 2, options=RunOptions(iterations=6, progress=False),
                     overrides=overrides)  # fmt: skip
    resumed = _crashed_then_resumed(name, data, overrides, tmp_path)
    for key in ("features", "adjacency", "labels"):
        assert torch.equal(getattr(whole, key), getattr(resumed, key)), key
    assert resumed.extra["run"]["iterations"] == 6
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # 5 steps before the crash; the lost 5th is dropped and rerun from the checkpoint at 4
    assert [r["iteration"] for r in lines] == [1, 2, 3, 4, 5, 6]
    if name == "gcond":
        assert [r["stepped"] for r in lines[:4]] == [["structure"], ["features"]] * 2


def test_doscond_rates_drop_tenfold_at_40_percent(families, tmp_path):
    run("doscond", families, 1, options=RunOptions(iterations=5, progress=False),
             overrides=DOSCOND_FAST, out_dir=tmp_path)  # fmt: skip
    blob = checkpoint.load_state(tmp_path / loop.CHECKPOINT_FILE)
    rates = {k: o["param_groups"][0]["lr"] for k, o in blob["opts"].items()}
    assert rates == pytest.approx({"features": 0.001, "structure": 0.01})  # 0.01, 0.1 x 0.1


def test_graph_divergence_names_both_rates(csbm, monkeypatch, tmp_path):
    monkeypatch.setattr(GCDMMatching, "loss", lambda self, p, *a: p.features.sum() * torch.nan)
    with pytest.raises(DistillError, match=r"lower the learning rates \(--set lr_feat=0.001 "):
        run("gcdm", csbm, 1, options=QUIET, out_dir=tmp_path)
    assert not (tmp_path / loop.SUMMARY_FILE).exists()


def test_bad_checkpoints_are_refused_clearly(digits, csbm, tmp_path):
    run("gcdm", csbm, 1, options=QUIET, overrides={"hidden": "8"}, out_dir=tmp_path)
    resume = RunOptions(iterations=2, resume=True, progress=False)
    with pytest.raises(DistillError, match="does not belong to this run.*delete it"):
        run("dm", digits, 1, options=resume, overrides={"batch_real": "8"}, out_dir=tmp_path)
    (tmp_path / loop.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(DistillError, match="unreadable.*delete it to start afresh"):
        run("gcdm", csbm, 1, options=resume, out_dir=tmp_path)
