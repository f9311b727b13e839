"""Meta-model matching (DD, KIP, RFAD, FRePO): exact meta-gradients, loss going down, resume."""

import pytest
import torch
from own_loss import own_loss_at
from resume import full_and_resumed

from datadistill import methods
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.kernels import FCNTK
from datadistill.krr_eval import kernel_for, krr_accuracy
from datadistill.loop import RunOptions
from datadistill.objectives.meta import BackpropThroughTime, FeatureRegression
from datadistill.params.images import FreeImages

# tiny settings per preset: a few seconds per run on one CPU thread
TINY = {
    "dd": {"net_width": "16", "net_depth": "1", "batch_real": "256", "lr_inner": "0.1"},
    "kip": {},
    "rfad": {"n_models": "2", "width": "32"},
    "frepo": {"net_width": "32", "pool_size": "3", "max_steps": "4", "batch_real": "512"},
}


def _tiny_dd(**kw):
    return BackpropThroughTime(
        arch="convnet", net_config={"width": 4, "depth": 1}, batch_real=30, lr=0.1, **kw
    )


# --- DD: the unrolled meta-gradient -----------------------------------------------------------


def test_dd_meta_gradient_matches_finite_differences(digits):
    param = FreeImages(digits, 1, generator=torch.Generator().manual_seed(0)).double()
    obj = _tiny_dd(inner_epochs=3, momentum=0.5)  # 3 unrolled steps with momentum

    def meta_loss():  # the same network and real batch at every call
        return obj.loss(param, digits, torch.Generator().manual_seed(3), 0)

    g_img, g_lr = torch.autograd.grad(meta_loss(), [param.images, obj.lr.log])

    def central(tensor, index, eps=1e-6):
        with torch.no_grad():
            tensor[index] += eps
            up = float(meta_loss())
            tensor[index] -= 2 * eps
            down = float(meta_loss())
            tensor[index] += eps
        return (up - down) / (2 * eps)

    for index in [(0, 0, 3, 4), (5, 0, 2, 2), (9, 0, 6, 1)]:
        assert float(g_img[index]) == pytest.approx(central(param.images, index), rel=1e-5)
    assert float(g_lr) == pytest.approx(central(obj.lr.log, ()), rel=1e-5)


def test_dd_truncation_backpropagates_through_the_last_steps_only(digits):
    param = FreeImages(digits, 1, generator=torch.Generator().manual_seed(0)).double()

    def grad(truncate):
        obj = _tiny_dd(inner_epochs=3, truncate=truncate)
        loss = obj.loss(param, digits, torch.Generator().manual_seed(3), 0)
        return torch.autograd.grad(loss, param.images)[0]

    full = grad(0)
    assert torch.equal(grad(3), full)  # a window as long as the unroll is full BPTT
    last = grad(1)
    assert torch.isfinite(last).all() and last.abs().sum() > 0
    assert not torch.allclose(last, full)


@pytest.mark.parametrize("snapshots", [0, 2])
@pytest.mark.parametrize("truncate", [0, 3])
def test_recomputed_unroll_gives_the_full_graphs_meta_gradient(digits, snapshots, truncate):
    """Rebuilding one step's graph at a time (all states kept, or 2 on revolve's schedule)
    is the same gradient as keeping the whole unroll's graph, momentum and window included."""
    param = FreeImages(digits, 2, generator=torch.Generator().manual_seed(0)).double()

    def grads(**kw):
        obj = _tiny_dd(inner_epochs=3, images_per_step=1, momentum=0.5, truncate=truncate, **kw)
        loss = obj.loss(param, digits, torch.Generator().manual_seed(3), 0)
        return (loss, *torch.autograd.grad(loss, [param.images, obj.lr.log]))

    full = grads()
    low = grads(recompute=True, snapshots=snapshots)  # 6 inner steps
    for a, b in zip(full, low, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert full[1].abs().sum() > 0


def test_dd_inner_schedule_follows_dd_steps_and_epochs():
    obj = BackpropThroughTime(inner_epochs=2, images_per_step=2)
    rows = obj.schedule(num_classes=2, ipc=3)  # class rows: [0, 1, 2] and [3, 4, 5]
    assert [r.tolist() for r in rows] == [[0, 1, 3, 4], [2, 5]] * 2
    whole = BackpropThroughTime(inner_epochs=3, images_per_step=0).schedule(2, 3)
    assert [r.tolist() for r in whole] == [[0, 1, 2, 3, 4, 5]] * 3


def test_dd_learns_its_inner_rate_and_records_it(digits):
    param = FreeImages(digits, 1, generator=torch.Generator().manual_seed(0))
    obj = _tiny_dd()
    assert obj.summary_extra() == {"syn_lr": pytest.approx(0.1)}
    obj.loss(param, digits, torch.Generator().manual_seed(1), 0).backward()
    obj.loss(param, digits, torch.Generator().manual_seed(2), 1)  # applies the pending step
    assert obj.summary_extra()["syn_lr"] != pytest.approx(0.1, rel=1e-6)
    assert obj.lr.log.grad is None


# --- every objective lowers its own loss ---------------------------------------------------


@pytest.mark.parametrize("name", ["dd", "kip", "rfad", "frepo"])
def test_each_objective_lowers_its_loss_on_digits(name, digits):
    overrides = TINY[name]
    before = run(name, digits, 2, options=RunOptions(iterations=0, progress=False))
    after = run(
        name, digits, 2, options=RunOptions(iterations=15, progress=False), overrides=overrides
    )
    assert torch.isfinite(after.images).all()
    assert own_loss_at(name, after, digits, overrides) < 0.9 * own_loss_at(
        name, before, digits, overrides
    )


@pytest.mark.parametrize("name", ["kip", "rfad", "frepo"])
def test_regression_methods_store_learnt_labels_for_mse(name, digits):
    s = run(name, digits, 1, options=RunOptions(iterations=2, progress=False), overrides=TINY[name])
    assert s.soft_labels and s.labels.shape == (10, 10)
    assert not torch.equal(s.labels, torch.eye(10))  # the labels moved
    _, obj = methods.get(name).build(
        methods.get(name).config("digits"), digits, 1, torch.Generator()
    )
    assert obj.summary_extra() == {"label_loss": "mse"}


# --- FRePO's model pool ------------------------------------------------------------------------


def test_frepo_pool_trains_one_network_per_step_and_resets_it(digits):
    param = FreeImages(digits, 1, generator=torch.Generator().manual_seed(0), learn_labels=True)
    obj = FeatureRegression(net_config={"width": 8, "depth": 1}, pool_size=2, max_steps=2)
    gen = torch.Generator().manual_seed(0)
    seen, resets = [], 0
    for step in range(12):
        before = list(obj._steps)
        loss = obj.loss(param, digits, gen, step)
        loss.backward()
        assert all(p.grad is None for net in obj._nets for p in net.parameters())
        if step == 0:
            assert obj._steps == [0, 1]  # staggered: max_steps // pool_size * i
        else:
            changed = [i for i in range(2) if obj._steps[i] != before[i]]
            assert changed == [seen[-1]]  # only the network used last time moved
            resets += obj._steps[seen[-1]] == 0
        assert max(obj._steps) <= 2
        seen.append(obj._last)
    assert resets > 0


@pytest.mark.parametrize("name", ["frepo", "rfad", "dd"])
def test_interrupted_run_resumes_to_the_same_result(name, digits, tmp_path):
    """FRePO's pool, RFAD's temperature and DD's rate live in the objective's state."""
    overrides = (
        {**TINY[name], "pool_size": "2", "max_steps": "2"} if name == "frepo" else TINY[name]
    )
    full, resumed = full_and_resumed(name, digits, tmp_path, overrides)
    assert torch.equal(full.images, resumed.images)
    assert torch.equal(full.labels, resumed.labels)


# --- KRR evaluation ------------------------------------------------------------------------------


def test_krr_accuracy_is_batch_independent_and_improves_with_kip(digits):
    before = run("kip", digits, 2, options=RunOptions(iterations=0, progress=False))
    after = run("kip", digits, 2, options=RunOptions(iterations=20, progress=False))
    acc = krr_accuracy(before, digits)
    assert acc == krr_accuracy(before, digits, FCNTK(depth=1), reg=1e-6, batch_size=7)
    assert 0.5 < acc < krr_accuracy(after, digits)


def test_krr_accuracy_needs_a_kernel_for_methods_without_one(digits):
    s = run("random", digits, 2)
    with pytest.raises(DistillError, match="has no kernel of its own"):
        kernel_for(s)
    assert krr_accuracy(s, digits, FCNTK()) > 0.5
    rfad = run("rfad", digits, 1, options=RunOptions(iterations=0), overrides=TINY["rfad"])
    assert kernel_for(rfad).n_models == 16 and 0.3 < krr_accuracy(rfad, digits) <= 1
