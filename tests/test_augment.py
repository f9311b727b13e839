"""DSA: one draw applied to two batches is the same transform; gradients reach the images."""

import pytest
import torch

from datadistill import data
from datadistill.augment import DSA, OPS
from datadistill.errors import DistillError


@pytest.mark.parametrize("op", OPS)
def test_same_draw_gives_same_transform_on_both_batches(op, gen):
    x = torch.randn(6, 3, 16, 16)
    aug = DSA(op)
    draw = aug.draw(6, gen)
    real, syn = aug.apply(x, draw), aug.apply(x.clone()[:4], draw)
    assert torch.equal(real[:4], syn)


@pytest.mark.parametrize("op", OPS)
def test_same_seed_same_transform_and_transform_changes_images(op):
    x = torch.randn(8, 1, 12, 12)
    aug = DSA(op)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)


@pytest.mark.parametrize("op", OPS)
def test_gradients_reach_synthetic_images(op, gen):
    syn = torch.randn(4, 1, 12, 12, requires_grad=True)
    aug = DSA(op)
    aug.apply(syn, aug.draw(4, gen)).pow(2).sum().backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0


def test_index_maps_examples_to_rows_of_the_draw(gen):
    aug = DSA("rotate")
    x = torch.randn(6, 1, 10, 10)
    draw = aug.draw(6, gen)
    rows = torch.tensor([4, 1])
    assert torch.equal(aug.apply(x[rows], draw, index=rows), aug.apply(x, draw)[rows])


def test_unknown_op_is_refused():
    with pytest.raises(DistillError, match="unknown augmentation 'blur'"):
        DSA("crop_blur")


def test_strategies_per_dataset_drop_flip_for_digits():
    for name in ("digits", "mnist", "fashion-mnist", "svhn"):
        assert "flip" not in data.get_spec(name).dsa_strategy
    assert "flip" in data.get_spec("cifar10").dsa_strategy


def test_groups_get_their_own_draw_as_if_applied_one_by_one(gen):
    aug = DSA("color_crop_cutout_flip_scale_rotate")
    k, g = 6, 4
    x = torch.randn(k * g, 1, 8, 8, requires_grad=True)
    draws = [aug.draw(g, gen) for _ in range(k)]
    assert len({d.op for d in draws}) > 1  # the test needs several operations
    out = aug.apply_groups(x, draws)
    one_by_one = torch.cat([aug.apply(x[c * g : (c + 1) * g], d) for c, d in enumerate(draws)])
    assert torch.allclose(out, one_by_one)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_groups_index_selects_rows_of_each_draw(gen):
    aug = DSA("scale_rotate")
    draws = [aug.draw(5, gen) for _ in range(3)]
    x = torch.randn(3 * 2, 1, 8, 8)
    rows = torch.tensor([3, 1])
    out = aug.apply_groups(x, draws, index=rows)
    expect = torch.cat(
        [aug.apply(x[2 * c : 2 * c + 2], d, index=rows) for c, d in enumerate(draws)]
    )
    assert torch.allclose(out, expect)


@pytest.mark.parametrize("op", [o for o in OPS if o != "flip"])  # flip: a coin may repeat
def test_a_shared_draw_transforms_a_whole_batch_alike(op):
    """Batch mode (the reference code's siamese draw): one transformation for every example;
    a per-example draw gives copies of one image different transformations."""
    x = torch.rand(1, 1, 16, 16).expand(8, 1, 16, 16)
    aug = DSA(op)
    shared = aug.apply(x, aug.draw(8, torch.Generator().manual_seed(1), shared=True))
    apart = aug.apply(x, aug.draw(8, torch.Generator().manual_seed(1)))
    assert all(torch.equal(shared[0], s) for s in shared)
    assert not all(torch.equal(apart[0], s) for s in apart)


@pytest.mark.parametrize("siamese", ["batch", "example"])
def test_matching_objectives_pair_draws_as_their_siamese_mode_says(siamese, digits):
    """Gradient matching in batch mode augments a class's real and synthetic images alike."""
    from datadistill.objectives.gradient import GradientMatching

    obj = GradientMatching(dsa_strategy="scale_rotate_crop", siamese=siamese)
    x = digits.x_train[:1]
    same = 0
    for seed in range(4):
        xr, xs = obj._augment(x.expand(6, -1, -1, -1), x.expand(3, -1, -1, -1),
                              torch.Generator().manual_seed(seed))  # fmt: skip
        same += all(torch.equal(xr[0], t) for t in torch.cat([xr, xs]))
    assert same == (4 if siamese == "batch" else 0)


def test_unknown_siamese_mode_is_refused():
    from datadistill.objectives.distribution import MeanEmbedding

    with pytest.raises(DistillError, match="unknown siamese mode 'pairs'.*batch, example"):
        MeanEmbedding(dsa_strategy="crop", siamese="pairs")
