"""The embedder pool: exact against fresh-network DM, reused without recomputing, resumable."""

import pytest
import torch

from datadistill import checkpoint
from datadistill.distill import run
from datadistill.loop import CHECKPOINT_FILE, RunOptions
from datadistill.methods.distribution import DMConfig, mean_embedding
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.params.images import FreeImages

STRATEGY = "color_crop_cutout_scale_rotate"


def objective(pool=0, statistic="batch", strategy=STRATEGY):
    return MeanEmbedding(
        batch_real=8, dsa_strategy=strategy, pool=pool, pool_statistic=statistic,
        target_precision="fp32",
    )  # fmt: skip


def losses_and_grads(obj, digits, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    param = FreeImages(digits, 2, init="noise", generator=torch.Generator().manual_seed(1))
    out = []
    for step in range(steps):
        param.zero_grad()
        loss = obj.loss(param, digits, gen, step)
        loss.backward()
        out.append((loss.detach().clone(), param.images.grad.clone()))
    return out, gen


@pytest.mark.parametrize("strategy", [STRATEGY, None])
def test_a_pool_visited_once_is_fresh_network_dm_exactly(digits, strategy):
    fresh, _ = losses_and_grads(objective(0, strategy=strategy), digits, 4)
    pooled, _ = losses_and_grads(objective(4, strategy=strategy), digits, 4)
    for (lf, gf), (lp, gp) in zip(fresh, pooled, strict=True):
        assert torch.equal(lf, lp)
        assert torch.equal(gf, gp)


def test_a_full_pool_reuses_its_members_without_touching_data_or_generator(digits, monkeypatch):
    obj = objective(3)
    first, gen = losses_and_grads(obj, digits, 3)
    state = gen.get_state()
    cached = [m.means.clone() for m in obj.pool.members]

    def no_real_side(*args, **kwargs):
        raise AssertionError("a filled pool sampled real images")

    monkeypatch.setattr(type(digits), "sample_per_class", no_real_side)
    param = FreeImages(digits, 2, init="noise", generator=torch.Generator().manual_seed(1))
    again = [float(obj.loss(param, digits, gen, step).detach()) for step in range(3, 6)]
    assert torch.equal(gen.get_state(), state)
    assert again == [float(loss) for loss, _ in first]  # same images, same members in turn
    assert all(torch.equal(a, m.means) for a, m in zip(cached, obj.pool.members, strict=True))


def test_the_fills_are_the_one_off_steps_the_estimate_leaves_out(digits):
    obj = objective(3)
    param = FreeImages(digits, 2, init="noise", generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(0)
    left = []
    for step in range(5):
        left.append(obj.one_off_steps(step))
        obj.loss(param, digits, gen, step)
    assert left == [3, 2, 1, 0, 0]
    assert objective(0).one_off_steps(0) == 0


def test_class_statistic_is_the_mean_over_the_whole_class(digits):
    obj = objective(2, statistic="class", strategy=None)
    losses_and_grads(obj, digits, 1)
    member = obj.pool.members[0]
    net = obj._network(digits, member.seed, "cpu", torch.contiguous_format)
    with torch.no_grad():
        expected = torch.stack(
            [net.embed(digits.x_train[digits.y_train == c]).mean(0) for c in range(10)]
        )
    torch.testing.assert_close(member.means, expected, rtol=1e-5, atol=1e-6)


def test_pool_state_round_trips(digits):
    obj = objective(3)
    losses_and_grads(obj, digits, 2)
    state = obj.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    back = objective(3)
    back.load_state_dict(state)
    for a, b in zip(obj.pool.members, back.pool.members, strict=True):
        assert a.seed == b.seed and torch.equal(a.means, b.means)
        assert [d.op for d in a.draws] == [d.op for d in b.draws]
        assert all(torch.equal(x.values, y.values) for x, y in zip(a.draws, b.draws, strict=True))


def test_a_resumed_pooled_run_is_bit_identical_and_names_its_pool(digits, tmp_path):
    opts = dict(iterations=7, checkpoint_every=2, progress=False)
    settings = {"batch_real": 16, "pool": 3}
    full = run("dm", digits, 1, options=RunOptions(**opts), overrides=settings)

    def crash(it, record):
        if it == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run("dm", digits, 1, options=RunOptions(**opts), overrides=settings,
            out_dir=tmp_path, callbacks=[crash])  # fmt: skip
    resumed = run(
        "dm", digits, 1, options=RunOptions(**opts, resume=True), overrides=settings,
        out_dir=tmp_path,
    )  # fmt: skip
    assert torch.equal(full.images, resumed.images)
    pool = resumed.metadata()["extra"]["pool"]
    # the checkpoint on disk holds the real class means the pool counts
    stored = checkpoint.load_state(tmp_path / CHECKPOINT_FILE)["objective"]["pool_means"]
    assert stored.shape[:2] == (3, 10)
    assert pool == {"size": 3, "statistic": "batch", "filled": 3,
                    "cache_bytes": stored.numel() * 4}  # fmt: skip


def test_a_pool_larger_than_the_run_is_clamped_with_a_warning(digits):
    with pytest.warns(UserWarning, match="larger than the run"):
        obj = mean_embedding(DMConfig(iterations=5, pool=50), digits)
    assert obj.pool.size == 5


@pytest.mark.parametrize("bad", [{"pool": -1}, {"pool": 2, "pool_statistic": "median"}])
def test_bad_pool_settings_are_refused_in_one_line(digits, bad):
    with pytest.raises(Exception, match="pool") as err:
        mean_embedding(DMConfig(iterations=5, **bad), digits)
    assert "\n" not in str(err.value)


def test_dm_pools_by_default_and_its_clamp_is_silent_and_exact(digits, recwarn):
    obj = mean_embedding(DMConfig(iterations=3), digits)
    assert obj.pool.size == 3
    assert not [w for w in recwarn.list if "pool" in str(w.message)]
    fresh, _ = losses_and_grads(objective(0), digits, 3)
    pooled, _ = losses_and_grads(objective(DMConfig().pool), digits, 3)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(fresh, pooled, strict=True))
