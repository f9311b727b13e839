"""apps/nas: zero-cost proxies against hand computations, bootstrap intervals, the table."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from datadistill import data as datasets
from datadistill.errors import DistillError
from datadistill.results import ROW_KEYS
from datadistill_apps.nas.agreement import agreement, bootstrap, kendall_rows, spearman_rows
from datadistill_apps.nas.cell import Cell
from datadistill_apps.nas.network import NASBench201Net
from datadistill_apps.nas.pipeline import Truth, rescore, zero_cost_row
from datadistill_apps.nas.scoring import cell_seed
from datadistill_apps.nas.space import Arch, sample_archs
from datadistill_apps.nas.table import markdown
from datadistill_apps.nas.zero_cost import grad_norm, naswot, synflow, zero_cost

# edges in order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2)
ONE_RELU = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
CHAIN = "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|"


def tiny_cell(arch: str) -> Cell:
    return Cell(Arch.parse(arch), channels=1)


# ---- zero-cost proxies, by hand ----


def test_naswot_is_the_log_determinant_of_the_agreement_kernel():
    # the cell's one ReLU sees its input: codes [1,0,1], [1,1,0], [0,0,0] on 3 units;
    # K[i, j] = units where i and j agree = [[3,1,1],[1,3,1],[1,1,3]], det 20
    x = torch.tensor([[1.0, -1, 1], [1, 1, -1], [-1, -1, -1]]).view(3, 1, 1, 3)
    assert naswot(tiny_cell(ONE_RELU), x) == pytest.approx(math.log(20))
    assert naswot(tiny_cell(ONE_RELU), x[:2]) == pytest.approx(math.log(8))  # [[3,1],[1,3]]
    with pytest.raises(DistillError, match="ReLU"):
        naswot(nn.Linear(3, 2), x.view(3, 3))


def test_synflow_is_the_summed_synaptic_flow_without_batchnorm():
    # ones in, |weights| a=0.5 then b=2 on a 2x2 map: R = a*b*4 = 4, and
    # |a dR/da| + |b dR/db| = 2R = 8. Batch norm kept would zero a constant map (score 0).
    cell = tiny_cell(CHAIN)
    convs = [m for m in cell.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        convs[0].weight.fill_(-0.5)
        convs[1].weight.fill_(2.0)
    assert synflow(cell, (1, 2, 2)) == pytest.approx(8.0)
    assert convs[0].weight.item() == -0.5 and convs[0].weight.grad is None  # left untouched


def test_grad_norm_is_the_summed_layer_gradient_norms():
    # the cell passes x on by its skip edge and its conv feeds only `none` (gradient 0);
    # the head W = 0 gives p = [.5, .5], dL/dW = (p - e_0) x^T = [[-.5, -1], [.5, 1]]
    net = nn.Sequential(tiny_cell(ONE_RELU), nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[2].weight.zero_()
    x, y = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2), torch.tensor([0])
    assert grad_norm(net, x, y) == pytest.approx(math.sqrt(2.5))
    assert all(p.grad is None for p in net.parameters())  # nothing left for a later step


def test_unknown_zero_cost_proxy_names_the_valid_ones():
    with pytest.raises(DistillError, match="naswot, synflow, grad-norm"):
        zero_cost("snip")


# ---- bootstrap ----


def test_identical_rankings_give_the_interval_one_to_one():
    truth = {f"c{i}": float(i) for i in range(12)}
    same = bootstrap(truth, {a: 3 * v + 1 for a, v in truth.items()}, k=3, resamples=2000)
    assert same.spearman == same.kendall == same.top_k == (1.0, 1.0)
    rev = bootstrap(truth, {a: -v for a, v in truth.items()}, k=3, resamples=2000)
    assert rev.spearman == rev.kendall == (-1.0, -1.0) and rev.top_k == (0.0, 0.0)


def test_vectorised_rank_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (30, 9)).astype(float)  # resamples repeat cells: many ties
    b = rng.normal(size=(30, 9))
    b[:, 2] = b[:, 5]
    want_rho = [stats.spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]
    want_tau = [stats.kendalltau(x, y).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(spearman_rows(a, b), want_rho, atol=1e-12)
    np.testing.assert_allclose(kendall_rows(a, b, chunk=7), want_tau, atol=1e-12)


def test_interval_is_seeded_and_holds_a_noisy_estimate():
    rng = np.random.default_rng(1)
    truth = {f"c{i:02d}": float(v) for i, v in enumerate(rng.normal(size=40))}
    proxy = {a: v + rng.normal() for a, v in truth.items()}
    point = agreement(truth, proxy)
    ci = bootstrap(truth, proxy, resamples=1000, seed=3)
    assert ci == bootstrap(truth, proxy, resamples=1000, seed=3)
    assert ci.spearman[0] < point.spearman < ci.spearman[1] < 1
    assert ci.kendall[0] < point.kendall < ci.kendall[1]
    assert ci.record()["bootstrap"]["resamples"] == 1000 and ci.undefined == 0
    with pytest.raises(DistillError):
        bootstrap(truth, proxy, level=1.5)


# ---- rows on digits ----


@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits")


def test_zero_cost_row_scores_the_truths_initialisation(digits):
    archs = sample_archs(4, seed=2)
    truth = Truth({str(a): 0.5 + i / 10 for i, a in enumerate(archs)}, 9.0, "t", "elsewhere",
                  images_seen=900)  # fmt: skip
    row = zero_cost_row(
        archs, digits, name="naswot", truth=truth, width=2, cells=1, seed=0,
        device=torch.device("cpu"), batch_size=16, top_k=2,
    )  # fmt: skip
    assert not [k for k in ROW_KEYS if k not in row]
    assert row["cost_ratio"] is None and row["images_seen_ratio"] == 16 / 900
    torch.manual_seed(cell_seed(archs[0], 0))
    net = NASBench201Net(digits.spec, arch=archs[0], width=2, cells=1)
    rows = torch.randperm(len(digits.x_train), generator=torch.Generator().manual_seed(0))[:16]
    assert row["proxy_score"][str(archs[0])] == pytest.approx(naswot(net, digits.x_train[rows]))
    assert row["spearman_ci"][0] <= row["spearman"] <= row["spearman_ci"][1]
    assert "zero-cost" in markdown([row]) and "[" in markdown([row])


def test_rescore_adds_intervals_from_stored_scores():
    truth = Truth({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}, None, "t")
    row = {"method": "dm", "variant": "proxy=summary", "top2": 0.0, "spearman": 0.0,
           "proxy_acc": {"a": 1.0, "b": 2.0, "c": 4.0, "d": 3.0}}  # fmt: skip
    new = rescore(row, truth)
    assert new["spearman"] == pytest.approx(0.8) and new["top2"] == 1.0
    assert len(new["spearman_ci"]) == 2 and new["bootstrap"]["resamples"] == 10_000
    with pytest.raises(DistillError, match="no per-cell scores"):
        rescore({"method": "x", "variant": "proxy=summary"}, truth)
