"""Trajectory matching (MTT, TESLA) and expert trajectories, on digits with a tiny ConvNet."""

import os

import pytest
import torch

from core import methods, nets
from core.cli import main
from core.errors import DistillError
from core.experts import (
    ExpertBank,
    ExpertConfig,
    expert_file,
    flat_parameters,
    layout,
    read_metadata,
    save_trajectory,
    train_experts,
)
from core.methods.trajectory import WithLearntLR
from core.objectives.trajectory import ConstantMemoryMatching, TrajectoryMatching
from core.params.images import FreeImages
from core.profile import peak_saved_bytes
from core.train import loss_fn

TINY = {"depth": 2, "width": 16}
TINY_SET = {"net_depth": "2", "net_width": "16"}


@pytest.fixture(scope="module")
def experts(digits, tmp_path_factory):
    """Two tiny experts of 6 epochs (about 3 s)."""
    folder = tmp_path_factory.mktemp("experts")
    config = ExpertConfig(num=2, epochs=6, net_config=TINY)
    train_experts(digits, config=config, folder=folder, progress=False)
    return folder


def _objective(kind, bank, digits, **kw):
    args = {
        "experts": bank,
        "net_config": TINY,
        "syn_steps": 5,
        "expert_epochs": 2,
        "max_start_epoch": 3,
        "batch_syn": 8,
        "dsa_strategy": digits.spec.dsa_strategy,
    }
    return kind(**(args | kw))


def _param(digits, ipc=2, labels=None):
    images = FreeImages(digits, ipc, generator=torch.Generator().manual_seed(0))
    return WithLearntLR(images, syn_lr=0.01, lr_lr=1e-5, label_logits=labels, lr_label=1.0)


# --- expert files ----------------------------------------------------------------------------


def test_experts_record_every_epoch_from_the_initialisation(experts, digits):
    bank = ExpertBank(experts)
    net = nets.build("convnet", digits.spec, **TINY)
    assert len(bank) == 2 and bank.epochs == 6 and bank.num_params == flat_parameters(net).numel()
    assert bank.layout == layout(net) and bank.dataset == "digits"
    meta = read_metadata(expert_file(experts, 1))
    assert meta["lr"] == 0.01 and meta["momentum"] == 0.0 and meta["weight_decay"] == 0.0
    assert meta["index"] == 1 and meta["dsa_strategy"] == digits.spec.dsa_strategy
    with torch.random.fork_rng(devices=[]):  # row 0 is the network expert 1 started from
        torch.manual_seed(meta["seed"])
        init = flat_parameters(nets.build("convnet", digits.spec, **TINY))
    assert torch.equal(bank.epoch(1, 0), init)
    rows = bank.epochs_of(0, list(range(7)))
    steps = [float((b - a).norm()) for a, b in zip(rows, rows[1:], strict=False)]
    assert all(s > 0 for s in steps)
    # constant learning rate (MTT: no decay): the last epochs move as far as the early ones
    assert steps[-1] > 0.3 * steps[0]


def test_expert_file_round_trip(tmp_path):
    traj = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    meta = {"dataset": "digits", "arch": "mlp", "net_config": {}, "layout": [["w", [7]]]}
    path = save_trajectory(tmp_path / "expert_0000.safetensors", traj, meta)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary behind
    bank = ExpertBank(tmp_path)
    assert bank.epochs == 3 and bank.num_params == 7
    assert torch.equal(bank.epoch(0, 2), traj[2])
    start, end = bank.epochs_of(0, [0, 3])
    assert torch.equal(start, traj[0]) and torch.equal(end, traj[3])
    assert read_metadata(path)["layout"] == [["w", [7]]]
    with pytest.raises(IndexError):
        bank.epoch(0, 4)


@pytest.mark.parametrize("cut", [1, 100, -4])
def test_truncated_or_foreign_expert_file_is_refused(experts, tmp_path, cut):
    good = expert_file(experts, 0).read_bytes()
    bad = tmp_path / "expert_0000.safetensors"
    bad.write_bytes(good[:cut] if cut > 0 else good[:cut])
    with pytest.raises(DistillError, match="truncated or corrupt"):
        read_metadata(bad)
    with pytest.raises(DistillError, match="truncated or corrupt"):
        ExpertBank(tmp_path)
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(DistillError, match="truncated or corrupt"):
        ExpertBank(tmp_path)


def test_train_experts_skips_finished_ones_and_refuses_other_settings(experts, digits):
    before = [expert_file(experts, i).stat().st_mtime_ns for i in range(2)]
    train_experts(
        digits,
        config=ExpertConfig(num=2, epochs=6, net_config=TINY),
        folder=experts,
        progress=False,
    )
    assert [expert_file(experts, i).stat().st_mtime_ns for i in range(2)] == before
    with pytest.raises(DistillError, match="other settings"):
        config = ExpertConfig(num=2, epochs=6, lr=0.1, net_config=TINY)
        train_experts(digits, config=config, folder=experts, progress=False)


def test_cli_trains_experts_and_resumes(tmp_path, capsys):
    out = tmp_path / "e"
    argv = ["experts", "--depth", "2", "--width", "8", "--num", "1", "--epochs", "1"]
    argv += ["--out", str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    assert "1 experts of 1 epochs" in capsys.readouterr().out
    mtime = expert_file(out, 0).stat().st_mtime_ns
    assert main(argv) == 0 and expert_file(out, 0).stat().st_mtime_ns == mtime


# --- the loss --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TrajectoryMatching, ConstantMemoryMatching])
def test_loss_vanishes_when_the_student_reproduces_the_target(digits, tmp_path, kind):
    # the "expert" is N full-batch SGD steps of an nn.Module on the synthetic images
    # themselves, with torch's own optimiser: the unrolled student must land on it exactly
    param = _param(digits)
    x, y = param.sample()
    net = nets.build("convnet", digits.spec, **TINY)
    start = flat_parameters(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for _ in range(4):
        opt.zero_grad()
        loss_fn(net(x.detach()), y).backward()
        opt.step()
    meta = {"dataset": "digits", "arch": "convnet", "net_config": TINY, "layout": layout(net)}
    save_trajectory(expert_file(tmp_path, 0), torch.stack([start, flat_parameters(net)]), meta)
    bank = ExpertBank(tmp_path)
    obj = _objective(
        kind, bank, digits, syn_steps=4, expert_epochs=1, max_start_epoch=1, batch_syn=0
    )
    obj.aug = None
    gen = torch.Generator().manual_seed(0)
    assert float(obj.loss(param, digits, gen, 0).detach()) < 1e-8
    with torch.no_grad():
        param.inner.images.add_(0.5 * torch.randn_like(param.inner.images))
    assert float(obj.loss(param, digits, gen, 0).detach()) > 1e-3


def test_loss_is_one_for_a_student_that_does_not_move(experts, digits):
    param = _param(digits)
    with torch.no_grad():
        param.syn_lr.zero_()
    obj = _objective(TrajectoryMatching, ExpertBank(experts), digits)
    loss = obj.loss(param, digits, torch.Generator().manual_seed(0), 0)
    assert float(loss.detach()) == pytest.approx(1)


def _grads(obj, param, digits, seed=3):
    param.zero_grad()
    loss = obj.loss(param, digits, torch.Generator().manual_seed(seed), 0)
    loss.backward()
    grads = [param.inner.images.grad, param.syn_lr.grad]
    if param.label_logits is not None:
        grads.append(param.label_logits.grad)
    return float(loss.detach()), [g.clone() for g in grads]


@pytest.mark.parametrize("soft", [False, True])
def test_tesla_gradient_equals_mtt_gradient(experts, digits, soft):
    bank = ExpertBank(experts)
    labels = torch.randn(20, 10, generator=torch.Generator().manual_seed(1)) if soft else None
    param = _param(digits, labels=labels)
    loss_mtt, g_mtt = _grads(_objective(TrajectoryMatching, bank, digits), param, digits)
    loss_tesla, g_tesla = _grads(_objective(ConstantMemoryMatching, bank, digits), param, digits)
    assert loss_tesla == pytest.approx(loss_mtt, rel=1e-5)
    for a, b in zip(g_tesla, g_mtt, strict=True):  # images, syn_lr (and soft labels)
        assert b.abs().sum() > 0
        assert float((a - b).norm() / b.norm()) < 1e-4
    # TESLA's released code drops the Hessian terms: a different (approximate) gradient
    first = _objective(ConstantMemoryMatching, bank, digits, first_order=True)
    _, g_first = _grads(first, param, digits)
    assert float((g_first[0] - g_mtt[0]).norm() / g_mtt[0].norm()) > 1e-3


def _peak_saved(obj, param, digits) -> int:
    def step():
        param.zero_grad()
        obj.loss(param, digits, torch.Generator().manual_seed(0), 0).backward()

    return peak_saved_bytes(step)


def test_tesla_memory_does_not_grow_with_syn_steps(experts, digits):
    bank = ExpertBank(experts)
    param = _param(digits)
    peak = {
        (kind.__name__, n): _peak_saved(_objective(kind, bank, digits, syn_steps=n), param, digits)
        for kind in (TrajectoryMatching, ConstantMemoryMatching)
        for n in (5, 20)
    }
    assert peak["TrajectoryMatching", 20] > 3 * peak["TrajectoryMatching", 5]
    assert peak["ConstantMemoryMatching", 20] < 1.1 * peak["ConstantMemoryMatching", 5]
    assert peak["ConstantMemoryMatching", 20] < peak["TrajectoryMatching", 20] / 5


def _held_out_loss(obj, param, digits):
    seeds = range(100, 106)
    return sum(
        float(obj.loss(param, digits, torch.Generator().manual_seed(s), 0).detach()) for s in seeds
    )


@pytest.mark.parametrize("kind", [TrajectoryMatching, ConstantMemoryMatching])
def test_a_few_iterations_lower_the_loss(experts, digits, kind):
    obj = _objective(kind, ExpertBank(experts), digits, syn_steps=10, batch_syn=0)
    param = _param(digits)
    before = _held_out_loss(obj, param, digits)
    # what the outer loop does: SGD with one group per learnt kind (MTT: momentum 0.5)
    opt = torch.optim.SGD(param.param_groups(), lr=100.0, momentum=0.5)
    gen = torch.Generator().manual_seed(1)
    for it in range(10):
        loss = obj.loss(param, digits, gen, it)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _held_out_loss(obj, param, digits)
    assert after < 0.8 * before
    assert float(param.syn_lr.detach()) != 0.01  # the step size is learnt too


# --- presets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mtt", "tesla"])
def test_missing_experts_name_the_command_to_run(digits, tmp_path, monkeypatch, name):
    monkeypatch.setenv("DATADISTILL_EXPERTS", str(tmp_path))
    cfg = methods.get(name).config("digits")
    with pytest.raises(DistillError) as e:
        methods.get(name).build(cfg, digits, 2, torch.Generator().manual_seed(0))
    msg = str(e.value)
    folder = tmp_path / "digits-convnet-depth2"
    assert (
        f"distill experts --dataset digits --arch convnet --depth 2 --num 20 --epochs 50 "
        f"--out {folder}" in msg
    )


def _preset(name, experts, digits, **extra):
    m = methods.get(name)
    cfg = m.config("digits", {"experts": str(experts), **TINY_SET, "max_start_epoch": "3", **extra})
    return cfg, *m.build(cfg, digits, 2, torch.Generator().manual_seed(0))


def test_mtt_preset(experts, digits):
    cfg, param, obj = _preset("mtt", experts, digits)
    assert isinstance(obj, TrajectoryMatching) and not isinstance(obj, ConstantMemoryMatching)
    assert (obj.syn_steps, obj.expert_epochs, obj.max_start_epoch) == (20, 2, 3)
    assert param.name == "images" and param.label_logits is None
    assert param.summary_extra() == {"syn_lr": pytest.approx(0.01)}
    groups = param.param_groups()
    assert [len(g["params"]) for g in groups] == [1, 1] and groups[1]["lr"] == 1e-6
    assert param.stored_bytes() == 20 * 64 * 4 + 20 * 8 + 4
    with pytest.raises(DistillError, match="experts of at least"):
        _preset("mtt", experts, digits, max_start_epoch="6")
    with pytest.raises(DistillError, match="does not fit the student"):
        _preset("mtt", experts, digits, net_width="8")


def test_tesla_preset_soft_labels_come_from_an_expert(experts, digits):
    cfg, param, obj = _preset("tesla", experts, digits)
    assert isinstance(obj, ConstantMemoryMatching) and not obj.first_order
    x, y = param.sample()
    assert y.shape == (20, 10) and torch.allclose(y.sum(1), torch.ones(20))
    bank = ExpertBank(experts)
    net = nets.build("convnet", digits.spec, **TINY)
    preds = []
    for i in range(len(bank)):
        torch.nn.utils.vector_to_parameters(bank.epoch(i, 4), net.parameters())
        preds.append(net(x.detach()).softmax(1))
    assert any(torch.allclose(y, p, atol=1e-5) for p in preds)  # one expert at epoch 2 + 3 - 1
    assert len(param.param_groups()) == 3
    assert param.stored_bytes() == 20 * 64 * 4 + 20 * 10 * 4 + 4
    _, hard, _ = _preset("tesla", experts, digits, soft_labels="false")
    assert hard.sample()[1].dtype == torch.long


def test_run_stores_the_learnt_step_size(experts, digits, tmp_path):
    """End to end through the outer loop (needs it to use `param_groups`/`summary_extra`)."""
    from core.distill import RunOptions, run
    from core.summary import Summary

    overrides = {"experts": str(experts), **TINY_SET, "max_start_epoch": "3", "syn_steps": "4"}
    s = run(
        "mtt",
        digits,
        2,
        options=RunOptions(iterations=2, progress=False),
        overrides=overrides,
        out_dir=tmp_path,
    )
    loaded = Summary.load(tmp_path / "summary.safetensors")
    assert loaded.extra["syn_lr"] == pytest.approx(s.extra["syn_lr"])
    assert 0.005 < loaded.extra["syn_lr"] < 0.02 and loaded.extra["syn_lr"] != 0.01


def test_experts_folder_env(monkeypatch, tmp_path):
    from core.experts import default_folder

    monkeypatch.setenv("DATADISTILL_EXPERTS", str(tmp_path))
    assert default_folder("cifar10", "convnet", {}) == tmp_path / "cifar10-convnet"
    assert default_folder("digits", "convnet", {"width": 16, "depth": 2}) == (
        tmp_path / "digits-convnet-depth2-width16"
    )
    assert os.fspath(default_folder("mnist", "mlp")).endswith("mnist-mlp")
