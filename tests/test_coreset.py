"""Coreset baselines: exact picks on toy features, and per-class counts on digits."""

import torch

from datadistill import coreset
from datadistill.distill import run
from datadistill.loop import RunOptions


def test_herding_first_pick_is_nearest_the_mean_then_balances():
    feats = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-10.0, 0.0], [1.0, 0.0]])
    picks = coreset.herding(feats, 3).tolist()
    # nearest the mean (0.25, 0); then the pick whose running mean is closest to it
    assert picks == [0, 3, 2]


def test_kcenter_takes_the_farthest_point_each_time():
    feats = torch.tensor([[0.0], [1.0], [7.0], [-4.0]])
    picks = coreset.kcenter(feats, 3).tolist()
    # nearest the mean (1.0), then 7.0 (6 away), then -4.0 (5 away from its nearest centre)
    assert picks == [1, 2, 3]


def test_random_select_per_class_without_replacement(digits, gen):
    rows = coreset.random_select(digits, 7, gen)
    assert len(rows) == 70 and len(set(rows.tolist())) == 70
    assert (digits.y_train[rows] == torch.arange(10).repeat_interleave(7)).all()


def test_herding_and_kcenter_summaries_on_digits(digits):
    for name in ("herding", "kcenter"):
        s = run(
            name, digits, 3, options=RunOptions(progress=False), overrides={"feature_epochs": "2"}
        )
        assert s.n == 30 and s.objective == "selection"
        assert (s.labels == torch.arange(10).repeat_interleave(3)).all()
