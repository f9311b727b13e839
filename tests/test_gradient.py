"""Gradient matching (DC, DSA, DCC, IDC) and IDC's multi-formation parameterisation."""

import math

import pytest
import torch
import torch.nn.functional as F
from own_loss import own_loss_at
from resume import full_and_resumed

from datadistill import methods
from datadistill.data import Dataset
from datadistill.distill import run
from datadistill.loop import RunOptions
from datadistill.objectives import gradient
from datadistill.objectives.distribution import fresh_network
from datadistill.objectives.gradient import (
    METRICS,
    ClassContrastiveMatching,
    GradientMatching,
    RealTrainedMatching,
    gradient_distance,
)
from datadistill.params.images import FreeImages
from datadistill.params.multiformation import MultiFormation
from datadistill.spec import DataSpec
from datadistill.summary import Summary

# --- distances ---------------------------------------------------------------------------------


def _grads(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 3, 3, 3), (8,), (4, 8), (4,)]  # conv kernel, bias, linear, bias
    return [scale * torch.randn(s, generator=g) for s in shapes]


@pytest.mark.parametrize("metric", METRICS)
def test_every_distance_vanishes_on_identical_gradients(metric):
    g = _grads()
    assert float(gradient_distance(g, g, metric)) == pytest.approx(0.0, abs=1e-4)
    assert float(gradient_distance(_grads(1), g, metric)) > 0.1


def test_distances_have_their_exact_values():
    g = _grads()
    neg = [-t for t in g]
    # layer-wise: every output node of the two weight tensors is anti-aligned (1 - cos = 2);
    # 1-D tensors count 0, as in DC
    assert float(gradient_distance(neg, g, "layerwise")) == pytest.approx(2 * (8 + 4), rel=1e-5)
    assert float(gradient_distance(neg, g, "cos")) == pytest.approx(2.0, rel=1e-5)
    flat = torch.cat([t.flatten() for t in g])
    assert float(gradient_distance(neg, g, "mse")) == pytest.approx(float(4 * flat.pow(2).sum()))
    assert float(gradient_distance(neg, g, "l1")) == pytest.approx(float(2 * flat.abs().sum()))
    conv = g[0].flatten()
    got = float(gradient_distance(neg, g, "mse", conv_only=True))
    assert got == pytest.approx(float(4 * conv.pow(2).sum()))  # IDC: kernels only


def _tiny(digits, per_class=4) -> Dataset:
    """`per_class` images of every class: a real batch of that size is the whole class."""
    rows = torch.cat([digits.class_index(c)[:per_class] for c in range(10)])
    return Dataset(
        digits.spec,
        digits.x_train[rows],
        digits.y_train[rows],
        digits.x_test[:10],
        digits.y_test[:10],
    )


@pytest.mark.parametrize("contrastive", [False, True])
def test_matching_loss_vanishes_when_synthetic_equals_real(digits, contrastive, monkeypatch):
    # without DC's epsilon in the cosines' denominators, which adds up to 1 per output node
    # whose gradient is tiny (|g|^2 ~ 1e-6), every distance is 0 for equal gradients
    monkeypatch.setattr(gradient, "_EPS", 0.0)
    tiny = _tiny(digits)
    same = FreeImages(tiny, 4, init="real", generator=torch.Generator().manual_seed(0))
    other = FreeImages(digits, 4, init="real", generator=torch.Generator().manual_seed(1))
    kind = ClassContrastiveMatching if contrastive else GradientMatching
    extra = {"outer_warmup": 0, "inner_warmup": 0} if contrastive else {}

    def loss(param, metric):
        obj = kind(batch_real=4, metric=metric, **extra)
        return float(obj.loss(param, tiny, torch.Generator().manual_seed(5), 0).detach())

    for metric in METRICS:
        # the real batch is the synthetic set, reordered: equal gradients up to rounding
        zero, ref = loss(same, metric), loss(other, metric)
        assert abs(zero) < 1e-4 * ref, metric


def test_class_contrastive_matches_the_mean_gradient_over_classes(digits):
    param = FreeImages(digits, 2, generator=torch.Generator().manual_seed(0))
    obj = ClassContrastiveMatching(batch_real=8, outer_warmup=0, inner_warmup=0, metric="mse")
    obj.real_chunk = 16  # two classes per chunk: chunks must not change the result
    loss = obj.loss(param, digits, torch.Generator().manual_seed(3), 0)

    g = torch.Generator().manual_seed(3)  # the objective's draws, in its order
    net = fresh_network("convnet", digits, g, "cpu")
    x_real = digits.sample_per_class(8, g)
    params = list(net.parameters())
    per_class = [
        torch.autograd.grad(
            F.cross_entropy(net(x_real[c * 8 : (c + 1) * 8]), torch.full((8,), c)), params
        )
        for c in range(10)
    ]
    g_real = [torch.stack(gs).mean(0) for gs in zip(*per_class, strict=True)]
    x_syn, y_syn = param.sample()
    g_syn = torch.autograd.grad(F.cross_entropy(net(x_syn), y_syn), params)
    expected = gradient_distance(g_syn, g_real, "mse")
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-4)


# --- the inner loop ----------------------------------------------------------------------------


def _net_after_two_calls(kind, param, digits, **kw):
    obj = kind(batch_real=4, outer_loop=2, **kw)
    g = torch.Generator().manual_seed(0)
    for step in range(2):
        obj.loss(param, digits, g, step)
    return obj.state_dict()


def test_dc_trains_its_network_on_synthetic_data_and_idc_on_real_data(digits):
    a = FreeImages(digits, 1, generator=torch.Generator().manual_seed(0))
    b = FreeImages(digits, 1, generator=torch.Generator().manual_seed(1))
    idc = dict(n_data=64, net_dsa_strategy="color_crop", cutmix_p=1.0)
    nets = {}
    for name, kind, kw in [("dc", GradientMatching, {}), ("idc", RealTrainedMatching, idc)]:
        sa, sb = (_net_after_two_calls(kind, p, digits, **kw) for p in (a, b))
        assert sa["age"] == 2 and sa["nets"] == 1
        nets[name] = [torch.equal(sa["net"][k], sb["net"][k]) for k in sa["net"]]
    assert not all(nets["dc"])  # different synthetic sets, different networks
    assert all(nets["idc"])  # trained on the same real batches: the same network


def test_network_is_redrawn_every_outer_loop(digits):
    param = FreeImages(digits, 1, generator=torch.Generator().manual_seed(0))
    obj = GradientMatching(batch_real=4, outer_loop=2, inner_loop=0)
    g = torch.Generator().manual_seed(0)
    for step in range(5):
        obj.loss(param, digits, g, step)
    state = obj.state_dict()
    assert (state["nets"], state["age"]) == (3, 1)


def test_dc_loops_follow_the_paper_and_come_from_the_ipc(digits):
    assert [methods.gradient.dc_loops(i) for i in (1, 10, 20, 50)] == [
        (1, 1),
        (10, 50),
        (20, 25),
        (50, 10),
    ]
    assert methods.gradient.dc_loops(2) == (10, 50) and methods.gradient.dc_loops(100) == (50, 10)
    m = methods.get("dc")
    for ipc, loops in [(1, (1, 1)), (10, (10, 50))]:
        _, obj = m.build(m.config("digits"), digits, ipc, torch.Generator().manual_seed(0))
        assert (obj.outer_loop, obj.inner_loop) == loops
    cfg = m.config("digits", {"outer_loop": "3", "inner_loop": "2"})
    _, obj = m.build(cfg, digits, 10, torch.Generator().manual_seed(0))
    assert (obj.outer_loop, obj.inner_loop) == (3, 2)


def test_gradient_matching_refuses_batch_norm():
    with pytest.raises(ValueError, match="batch norm"):
        GradientMatching(arch="convnet_bn")
    with pytest.raises(ValueError, match="unknown gradient distance"):
        GradientMatching(metric="l3")


# --- the outer loop: loss goes down, resume is exact ----------------------------------------


def _dc_loss_at(images, digits, seed=123):
    """DC's loss over 4 fixed fresh networks (ConvNet-2, as the digits preset)."""
    param = FreeImages(digits, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        param.images.copy_(images)
    losses = []
    for i in range(4):
        obj = GradientMatching(batch_real=64, net_config={"depth": 2})
        loss = obj.loss(param, digits, torch.Generator().manual_seed(seed + i), 0)
        losses.append(float(loss.detach()))
    return sum(losses) / len(losses)


def test_dc_lowers_its_loss_on_digits(digits):
    before = run("dc", digits, 2, options=RunOptions(iterations=0, progress=False))
    after = run(
        "dc",
        digits,
        2,
        options=RunOptions(iterations=5, progress=False),
        overrides={"batch_real": 32, "inner_loop": 5},
    )
    assert _dc_loss_at(after.images, digits) < 0.8 * _dc_loss_at(before.images, digits)


_SMALL = {
    "dc": {"batch_real": "8", "outer_loop": "3", "inner_loop": "2"},
    "dcc": {"batch_real": "8", "outer_loop": "3", "inner_loop": "2", "outer_warmup": "1"},
    "idc": {"batch_real": "8", "outer_loop": "3", "n_data": "64", "cutmix_p": "0.5"},
}


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_interrupted_run_resumes_with_its_network(name, digits, tmp_path):
    # checkpoint at 4 holds the second network after one matching step: resuming must
    # restore that network and its optimiser, then train it before matching again
    full, resumed = full_and_resumed(name, digits, tmp_path, _SMALL[name])
    assert torch.equal(full.images, resumed.images)
    assert torch.equal(
        full.params.get("images", full.images), resumed.params.get("images", resumed.images)
    )


# --- multi-formation ---------------------------------------------------------------------------


def test_multi_formation_shapes_bytes_and_labels(digits):
    p = MultiFormation(digits, 3, factor=2, generator=torch.Generator().manual_seed(0))
    x, y = p.sample()
    assert p.images_per_class == 12 and p.images.shape == (30, 1, 8, 8)
    assert x.shape == (120, 1, 8, 8) and torch.equal(y, torch.arange(10).repeat_interleave(12))
    assert torch.equal(y, p.hard_labels())
    assert p.stored_bytes() == 30 * 64 * 4 + 30 * 8  # stored float32 pixels + int64 labels
    assert set(p.tensors()) == {"images"} and p.tensors()["images"] is p.images
    xs, ys = p.sample(torch.tensor([7, 2]))
    assert torch.equal(xs, torch.cat([x[84:96], x[24:36]])) and ys.tolist() == [7] * 12 + [2] * 12


def test_multi_formation_decodes_tiles_by_bilinear_upsampling(digits):
    p = MultiFormation(
        digits, 1, factor=2, init="noise", generator=torch.Generator().manual_seed(0)
    )
    x, _ = p.sample()
    stored = p.images.detach()
    for t, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):  # tiles in row-major order
        tile = stored[:1, :, r : r + 4, c : c + 4]
        up = F.interpolate(tile, size=(8, 8), mode="bilinear", align_corners=False)
        assert torch.allclose(x[t : t + 1], up, atol=1e-6)


def test_multi_formation_real_init_holds_downsampled_real_images(digits):
    p = MultiFormation(digits, 2, factor=2, generator=torch.Generator().manual_seed(0))
    real = digits.sample_per_class(8, torch.Generator().manual_seed(0))  # the same draw
    small = F.avg_pool2d(real, 2)  # area downsampling by 2
    stored = p.images.detach()
    assert torch.allclose(stored[0, :, :4, :4], small[0], atol=1e-6)
    assert torch.allclose(stored[3, :, 4:, 4:], small[15], atol=1e-6)  # class 1, last tile


def test_multi_formation_pads_sides_the_factor_does_not_divide():
    spec = DataSpec("odd", 1, 8, 2, (0.5,), (0.5,))
    data = Dataset(
        spec,
        torch.randn(12, 1, 8, 8),
        torch.arange(2).repeat(6),
        torch.randn(2, 1, 8, 8),
        torch.arange(2),
    )
    p = MultiFormation(data, 1, factor=3, generator=torch.Generator().manual_seed(0))
    x, _ = p.sample()
    assert p.images.shape == (2, 1, 8, 8) and x.shape == (18, 1, 8, 8)
    assert torch.isfinite(x).all()


def test_gradients_reach_the_stored_images(digits):
    p = MultiFormation(digits, 1, factor=2, generator=torch.Generator().manual_seed(0))
    x, _ = p.sample()
    (grad,) = torch.autograd.grad(x[5].sum(), p.images)  # tile 1 of class 1's image
    assert grad[1, :, :4, 4:].abs().sum() > 0  # its tile's pixels ...
    assert grad[1, :, 4:, :].abs().sum() == 0 and grad[0].abs().sum() == 0  # ... and no others
    obj = RealTrainedMatching(batch_real=8, dsa_strategy="color_crop", n_data=8)
    loss = obj.loss(p, digits, torch.Generator().manual_seed(0), 0)
    (grad,) = torch.autograd.grad(loss, p.images)
    assert torch.isfinite(grad).all() and (grad.flatten(1).abs().sum(1) > 0).all()


def test_idc_summary_stores_the_formation_and_its_decoded_images(digits, tmp_path):
    opts = RunOptions(iterations=1, progress=False)
    s = run("idc", digits, 1, options=opts, overrides={"n_data": "8"}, out_dir=tmp_path)
    loaded = Summary.load(tmp_path / "summary.safetensors")
    assert loaded.n == 40 and loaded.params["images"].shape == (10, 1, 8, 8)
    assert loaded.parameterisation == "multi_formation" and loaded.ipc == 1
    assert loaded.stored_bytes == s.stored_bytes == 10 * 64 * 4 + 10 * 8


# --- the real side's precision -----------------------------------------------------------------


def _flat(grads):
    return torch.cat([g.reshape(-1) for g in grads])


def test_bf16_real_gradient_is_float32_up_to_less_than_the_sampling_noise(digits):
    net = fresh_network("convnet", digits, torch.Generator().manual_seed(0), "cpu", depth=2)
    x = digits.sample_per_class(64, torch.Generator().manual_seed(1))
    first = x[:64]  # class 0's batch, and another one of the same class:
    second = digits.sample_per_class(64, torch.Generator().manual_seed(2))[:64]
    grads = {}
    for precision in ("fp32", "bf16"):
        obj = GradientMatching(real_precision=precision)
        real = obj._real_network(net)
        assert next(real.parameters()).dtype == obj._used
        grads[precision] = _flat(obj._real_gradient(real, first, 0, list(real.parameters()), None))
        assert obj.summary_extra() == {"real_precision": precision}
    other = _flat(GradientMatching(real_precision="fp32")._real_gradient(
        net, second, 0, list(net.parameters()), None
    ))  # fmt: skip
    ref = grads["fp32"]
    assert grads["bf16"].dtype == torch.float32
    rounding = float((grads["bf16"] - ref).norm() / ref.norm())
    noise = float((other - ref).norm() / ref.norm())  # another batch of the same class
    assert 0 < rounding < 0.05 and rounding < noise / 5, (rounding, noise)


@pytest.mark.parametrize("contrastive", [False, True])
def test_bf16_real_side_leaves_the_matching_loss_nearly_unchanged(digits, contrastive):
    kind = ClassContrastiveMatching if contrastive else GradientMatching
    extra = {"outer_warmup": 0, "inner_warmup": 0} if contrastive else {}
    param = FreeImages(digits, 2, generator=torch.Generator().manual_seed(0))
    losses = {}
    for precision in ("fp32", "bf16"):
        obj = kind(batch_real=32, metric="cos", real_precision=precision, **extra)
        obj.net_config = {"depth": 2}
        loss = obj.loss(param, digits, torch.Generator().manual_seed(4), 0)
        losses[precision] = float(loss.detach())
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
    assert losses["bf16"] != losses["fp32"]  # it did run in bfloat16


def test_unknown_real_precision_is_refused_and_dp_keeps_fp32():
    from datadistill.errors import DistillError
    from datadistill_apps.privacy import accounting
    from datadistill_apps.privacy.objective import DPGradientMatching

    with pytest.raises(DistillError, match="unknown real_precision 'fp16'"):
        GradientMatching(real_precision="fp16")
    plan = accounting.Plan(1.0, 0.01, 1e-5, math.inf, "rdp")
    assert DPGradientMatching(plan=plan, clip=1.0, planned_steps=1).real_precision == "fp32"
    with pytest.raises(ValueError, match="fp32 only"):
        DPGradientMatching(plan=plan, clip=1.0, planned_steps=1, real_precision="bf16")


# --- every gradient-matching objective lowers its own loss -----------------------------------

_LOWERS = {
    "dsa": {"batch_real": "32", "inner_loop": "2"},
    "dcc": {"batch_real": "32", "inner_loop": "2", "outer_warmup": "0", "inner_warmup": "0"},
    # IDC's preset lr on digits (6e-4, l1 as its MNIST setting) moves the images slowly
    "idc": {"batch_real": "32", "n_data": "64", "lr_img": "0.006"},
}
_STEPS = {"dsa": 10, "dcc": 10, "idc": 20}


@pytest.mark.parametrize("name", sorted(_LOWERS))
def test_dsa_dcc_and_idc_lower_their_own_loss_on_digits(name, digits):
    overrides = _LOWERS[name]
    opts = RunOptions(iterations=0, progress=False)
    before = run(name, digits, 2, options=opts, overrides=overrides)
    after = run(
        name, digits, 2, options=RunOptions(iterations=_STEPS[name], progress=False),
        overrides=overrides,
    )  # fmt: skip
    assert own_loss_at(name, after, digits, overrides) < 0.9 * own_loss_at(
        name, before, digits, overrides
    )
