"""The outer loop and DM: loss goes down, batched equals per-class, resume is exact, errors."""

import json

import pytest
import torch

from datadistill import methods
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.loop import RunOptions
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.params.images import FreeImages


def _dm_loss_at(param, digits, seed=123):
    """DM's loss over 8 fixed random networks (fixed seeds: no sampling noise between calls)."""
    obj = MeanEmbedding(batch_real=139, dsa_strategy=None)
    with torch.no_grad():
        losses = [
            float(obj.loss(param, digits, torch.Generator().manual_seed(seed + i), 0))
            for i in range(8)
        ]
    return sum(losses) / len(losses)


def test_dm_lowers_its_loss_on_digits(digits):
    opts = RunOptions(iterations=40, progress=False)
    before = run("dm", digits, 2, options=RunOptions(iterations=0, progress=False))
    after = run("dm", digits, 2, options=opts, overrides={"batch_real": 64, "dsa": "false"})
    p0 = FreeImages(digits, 2, generator=torch.Generator().manual_seed(0))
    p1 = FreeImages(digits, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p0.images.copy_(before.images)
        p1.images.copy_(after.images)
    assert _dm_loss_at(p1, digits) < 0.95 * _dm_loss_at(p0, digits)


def test_batched_dm_equals_per_class(digits):
    p = FreeImages(digits, 3, generator=torch.Generator().manual_seed(0))
    losses = []
    for per_class in (False, True):
        obj = MeanEmbedding(
            batch_real=32,
            dsa_strategy=digits.spec.dsa_strategy,
            per_class=per_class,
            target_precision="fp32",
        )
        loss = obj.loss(p, digits, torch.Generator().manual_seed(5), 0)
        (grad,) = torch.autograd.grad(loss, p.images)
        losses.append((loss.detach(), grad))
    assert torch.allclose(losses[0][0], losses[1][0], rtol=1e-5)
    # float32 sums in another order: gradients agree to ~1e-5 of their largest entry
    scale = float(losses[1][1].abs().max())
    assert torch.allclose(losses[0][1], losses[1][1], rtol=1e-4, atol=1e-4 * scale)


def test_bf16_targets_move_the_images_as_fp32_ones_do(digits):
    """The real side in bfloat16 changes DM's loss and image gradient by little, not nothing."""
    p = FreeImages(digits, 3, generator=torch.Generator().manual_seed(0))
    out = {}
    for precision in ("fp32", "bf16"):
        obj = MeanEmbedding(batch_real=64, dsa_strategy=None, target_precision=precision)
        loss = obj.loss(p, digits, torch.Generator().manual_seed(5), 0)
        (grad,) = torch.autograd.grad(loss, p.images)
        out[precision] = (float(loss.detach()), grad.flatten())
        assert obj.summary_extra() == {"target_precision": precision}
    (l32, g32), (l16, g16) = out["fp32"], out["bf16"]
    assert l16 != l32 and abs(l16 - l32) < 0.02 * l32
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99


def test_target_precision_is_checked_and_auto_keeps_fp32_off_fast_bf16(digits, monkeypatch):
    with pytest.raises(DistillError, match="unknown target_precision 'half'.*fp32, bf16, auto"):
        MeanEmbedding(dsa_strategy=None, target_precision="half")
    auto = MeanEmbedding(dsa_strategy=None)
    monkeypatch.setenv("DATADISTILL_COMPILE", "0")  # eager bfloat16 is slow: never chosen
    assert auto.target_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setenv("DATADISTILL_COMPILE", "1")
    assert auto.target_dtype(torch.device("cuda")) == torch.float32
    units = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert auto.target_dtype(torch.device("cpu")) == (torch.bfloat16 if units else torch.float32)


def test_dm_refuses_batch_norm():
    with pytest.raises(ValueError, match="batch norm"):
        MeanEmbedding(arch="convnet_bn", dsa_strategy=None)


def test_interrupted_run_resumes_to_the_same_result(digits, tmp_path):
    opts = dict(iterations=6, checkpoint_every=2, progress=False)
    full = run("dm", digits, 1, options=RunOptions(**opts), overrides={"batch_real": 16})

    def crash(it, record):
        if it == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(
            "dm",
            digits,
            1,
            options=RunOptions(**opts),
            overrides={"batch_real": 16},
            out_dir=tmp_path,
            callbacks=[crash],
        )
    resumed = run(
        "dm",
        digits,
        1,
        options=RunOptions(**opts, resume=True),
        overrides={"batch_real": 16},
        out_dir=tmp_path,
    )
    assert torch.equal(full.images, resumed.images)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    # 5 before the crash; resuming from the checkpoint at 4 drops the lost 5th and reruns it
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2, 3, 4, 5, 6]


def test_a_fresh_run_in_an_old_folder_keeps_only_its_own_metrics(digits, tmp_path):
    opts = dict(progress=False)
    for iterations in (4, 2):  # the second starts afresh (no --resume) in the same folder
        run("dm", digits, 1, options=RunOptions(iterations=iterations, **opts),
            overrides={"batch_real": 8}, out_dir=tmp_path)  # fmt: skip
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2]


def test_time_limit_stops_cleanly_with_a_checkpoint(digits, tmp_path):
    s = run(
        "dm",
        digits,
        1,
        options=RunOptions(iterations=50, time_limit=0.0, progress=False),
        overrides={"batch_real": 8},
        out_dir=tmp_path,
    )
    assert s.extra["run"]["iterations"] == 1
    assert (tmp_path / "checkpoint.safetensors").exists()
    assert (tmp_path / "summary.safetensors").exists()


@pytest.mark.parametrize("ipc", [0, -1, 10_000])
def test_ipc_out_of_range(digits, ipc):
    with pytest.raises(DistillError, match=r"--ipc .* out of range.*use 1 to 139"):
        run("random", digits, ipc)


def test_unknown_method_and_setting(digits):
    with pytest.raises(DistillError, match="unknown method 'nope'; choose one of: .*dm"):
        run("nope", digits, 1)
    with pytest.raises(DistillError, match="has no setting lr_imgs"):
        run("dm", digits, 1, overrides={"lr_imgs": "1"})


def test_divergence_is_reported_not_saved(digits, tmp_path):
    with pytest.raises(DistillError, match="lower the learning rate"):
        run(
            "dm",
            digits,
            1,
            options=RunOptions(iterations=30, progress=False),
            overrides={"lr_img": "1e38", "batch_real": 8},
            out_dir=tmp_path,
        )
    assert not (tmp_path / "summary.safetensors").exists()


def test_settings_are_typed_from_strings():
    cfg = methods.get("dm").config("digits", {"lr_img": "0.5", "dsa": "false", "batch_real": "7"})
    assert cfg.lr_img == 0.5 and cfg.dsa is False and cfg.batch_real == 7
