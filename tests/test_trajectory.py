"""Trajectory matching (MTT, TESLA) and expert trajectories, on digits with a tiny ConvNet."""

import os
import weakref
from collections import Counter
from math import comb

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from datadistill import methods, nets
from datadistill.cli.main import main
from datadistill.errors import DistillError
from datadistill.experts import (
    ExpertBank,
    ExpertConfig,
    expert_file,
    flat_parameters,
    layout,
    read_metadata,
    save_trajectory,
    train_experts,
)
from datadistill.methods.trajectory import WithLearntLR
from datadistill.objectives import revolve
from datadistill.objectives.trajectory import ConstantMemoryMatching, TrajectoryMatching
from datadistill.params.images import FreeImages
from datadistill.profile import peak_saved_bytes
from datadistill.train import loss_fn

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
    assert meta["precision"] in ("fp32", "bf16")  # what the autocast resolved to
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


# --- constant memory: the checkpoint schedule and the vectors it keeps ---------------------


class _CountingStore(dict):
    """revolve.replay's snapshot store, noting the most states it held at once."""

    most = 1

    def __setitem__(self, i, x):
        super().__setitem__(i, x)
        self.most = max(self.most, len(self))


def _replay(steps, snapshots):
    """`revolve.replay` on integer states (x_i = i): (forward steps run, most snapshots kept
    at once, steps reversed), asserting each reversal receives its own x_i."""
    kept, forward, reversed_ = _CountingStore({0: 0}), [0], []

    def advance(x, start, stop):
        assert x == start and stop > start
        forward[0] += stop - start
        return stop

    def reverse(i, x):
        assert x == i  # the state it needs, kept or in hand
        reversed_.append(i)

    revolve.replay(steps, snapshots, kept, advance, reverse)
    return forward[0], kept.most, reversed_


def _fewest_forward_steps(n, s, memo={}):  # noqa: B006 (a cache)
    """Brute force over every first split: the optimum revolve must attain."""
    if n == 1:
        return 0
    if s == 1:
        return n * (n - 1) // 2
    if (n, s) not in memo:
        memo[n, s] = min(
            m + _fewest_forward_steps(n - m, s - 1) + _fewest_forward_steps(m, s)
            for m in range(1, n)
        )
    return memo[n, s]


def test_revolve_reverses_each_step_once_within_its_snapshots_in_the_fewest_steps():
    for n in range(1, 40):
        for s in range(1, 9):
            forward, most, order = _replay(n, s)
            assert order == list(range(n - 1, -1, -1))
            assert most <= s
            assert forward == revolve.forward_steps(n, s) == _fewest_forward_steps(n, s)
    # the closed forms at both ends: keep everything, or only x_0
    assert revolve.forward_steps(80, 79) == 79 and revolve.forward_steps(80, 1) == comb(80, 2)
    # r = 2 while s < N - 1 and N <= beta(s, 2): 2N - beta(s + 1, 1) = 2N - (s + 2)
    assert revolve.forward_steps(40, 10) == 2 * 40 - 12
    with pytest.raises(ValueError):
        revolve.schedule(5, 0)


class _FirstOrderUnroll(TrajectoryMatching):
    """MTT's unroll with each step's gradient taken at a detached theta_i: the gradient
    TESLA's released code computes (dL/dS_i through g_i alone, never through theta_i)."""

    def _matching_loss(self, net, x, y, syn_lr, start, target, plan):
        theta = start
        for rows, draw in plan:
            fixed = theta.detach().requires_grad_(True)
            loss = self.step_loss(net, fixed, x, y, rows, draw)
            theta = theta - syn_lr * torch.autograd.grad(loss, fixed, create_graph=True)[0]
        return ((theta - target) ** 2).sum() / ((start - target) ** 2).sum()


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("snapshots", [1, 3])
def test_checkpointed_gradient_equals_store_all_and_mtt(experts, digits, snapshots):
    bank, param = ExpertBank(experts), _param(digits)
    n = {"syn_steps": 9}
    loss_mtt, g_mtt = _grads(_objective(TrajectoryMatching, bank, digits, **n), param, digits)
    every = _objective(ConstantMemoryMatching, bank, digits, snapshots=0, **n)
    loss_all, g_all = _grads(every, param, digits)
    few = _objective(ConstantMemoryMatching, bank, digits, snapshots=snapshots, **n)
    loss_few, g_few = _grads(few, param, digits)
    assert revolve.forward_steps(9, snapshots) > 8  # it does recompute
    assert loss_few == pytest.approx(loss_all, rel=1e-6)
    assert loss_few == pytest.approx(loss_mtt, rel=1e-5)
    for a, b, c in zip(g_few, g_all, g_mtt, strict=True):  # images, syn_lr
        assert c.abs().sum() > 0
        assert _rel(a, b) < 1e-4 and _rel(a, c) < 1e-4


@pytest.mark.parametrize("snapshots", [0, 2])
def test_first_order_gradient_is_the_detached_unroll(experts, digits, snapshots):
    bank, param = ExpertBank(experts), _param(digits)
    loss_ref, g_ref = _grads(_objective(_FirstOrderUnroll, bank, digits), param, digits)
    first = _objective(ConstantMemoryMatching, bank, digits, first_order=True, snapshots=snapshots)
    loss, g = _grads(first, param, digits)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    for a, b in zip(g, g_ref, strict=True):
        assert b.abs().sum() > 0 and _rel(a, b) < 1e-4


class _LiveVectors(TorchDispatchMode):
    """Counts the distinct storages of exactly `numel` floats alive at once: flat parameter
    vectors theta_i (and same-sized temporaries), whoever holds them."""

    def __init__(self, numel: int):
        super().__init__()
        self.nbytes, self.refs, self.live, self.most = 4 * numel, Counter(), 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() == self.nbytes:
                key = t.untyped_storage().data_ptr()
                self.live += self.refs[key] == 0
                self.most = max(self.most, self.live)
                self.refs[key] += 1
                weakref.finalize(t, self._release, key)
        return out

    def _release(self, key):
        self.refs[key] -= 1
        self.live -= self.refs[key] == 0


def _most_vectors(obj, param, digits) -> int:
    numel = ExpertBank(obj.experts.folder).num_params
    with _LiveVectors(numel) as count:
        _grads(obj, param, digits)
    return count.most


def test_parameter_vectors_held_at_once_stay_at_the_snapshot_budget(experts, digits):
    bank, param = ExpertBank(experts), _param(digits)

    def most(steps, snapshots, **kw):
        obj = _objective(
            ConstantMemoryMatching, bank, digits, syn_steps=steps, snapshots=snapshots, **kw
        )
        return _most_vectors(obj, param, digits)

    every = {n: most(n, 0) for n in (6, 16)}  # store-all keeps theta_0 .. theta_{N-2}
    few = {n: most(n, 3) for n in (6, 16)}
    temporaries = every[6] - 5  # g_i, theta_{i+1}, lambda, the HVP, ...: a few, fixed
    assert temporaries == every[16] - 15 == few[6] - 3 == few[16] - 3 < 10
    assert most(16, 5) == temporaries + 5
    first = {n: most(n, 0, first_order=True) for n in (6, 16)}  # replays from theta_0
    assert first[6] == first[16] <= temporaries + 1


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
    extra = param.summary_extra()  # the learnt step size, and the real rows it started from
    assert extra["syn_lr"] == pytest.approx(0.01) and len(extra["init_rows"]) == 20
    groups = param.param_groups()
    assert [len(g["params"]) for g in groups] == [1, 1] and groups[1]["lr"] == 1e-6
    assert param.stored_bytes() == 20 * 64 * 4 + 20 * 8 + 4
    with pytest.raises(DistillError, match="experts of at least"):
        _preset("mtt", experts, digits, max_start_epoch="6")
    with pytest.raises(DistillError, match="does not fit the student"):
        _preset("mtt", experts, digits, net_width="8")


def test_mtt_constant_memory_is_the_same_gradient(experts, digits):
    _, param, plain = _preset("mtt", experts, digits, syn_steps="5")
    _, param2, lean = _preset("mtt", experts, digits, syn_steps="5", constant_memory="true")
    assert isinstance(lean, ConstantMemoryMatching) and not lean.first_order
    loss, grads = _grads(plain, param, digits)
    loss2, grads2 = _grads(lean, param2, digits)
    assert loss2 == pytest.approx(loss, rel=1e-5)
    for a, b in zip(grads2, grads, strict=True):
        assert b.abs().sum() > 0 and float((a - b).norm() / b.norm()) < 1e-4


def test_tesla_preset_soft_labels_come_from_an_expert(experts, digits):
    cfg, param, obj = _preset("tesla", experts, digits)
    assert isinstance(obj, ConstantMemoryMatching) and not obj.first_order
    assert (
        obj.snapshots == 10 and _preset("tesla", experts, digits, snapshots="0")[2].snapshots == 0
    )
    with pytest.raises(DistillError, match="snapshots must be >= 0"):
        _preset("tesla", experts, digits, snapshots="-1")
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
    from datadistill.distill import run
    from datadistill.loop import RunOptions
    from datadistill.summary import Summary

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
    one_off = loaded.extra["one_off"]  # the experts' cost, recorded when they were trained
    files = sorted(experts.glob("*.safetensors"))
    assert one_off["kind"] == "2 experts" and one_off["bytes"] == sum(
        p.stat().st_size for p in files
    )
    assert (
        one_off["seconds"]
        == pytest.approx(sum(read_metadata(p)["train_seconds"] for p in files), abs=0.11)
        and one_off["seconds"] > 0
    )


def test_experts_folder_env(monkeypatch, tmp_path):
    from datadistill.experts import default_folder

    monkeypatch.setenv("DATADISTILL_EXPERTS", str(tmp_path))
    assert default_folder("cifar10", "convnet", {}) == tmp_path / "cifar10-convnet"
    assert default_folder("digits", "convnet", {"width": 16, "depth": 2}) == (
        tmp_path / "digits-convnet-depth2-width16"
    )
    assert os.fspath(default_folder("mnist", "mlp")).endswith("mnist-mlp")
