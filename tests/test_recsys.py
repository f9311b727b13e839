"""Recommender modality: data, infinity-AE, EASE, metrics, Distill-CF, summary, CLI."""

import gzip
import json
import math

import pytest
import torch

from datadistill.errors import DistillError, SummaryFormatError
from datadistill.kernels import FCNTK
from datadistill.recsys import data as recdata
from datadistill.recsys.distill_cf import DistillCF, GumbelPrior, multi_gumbel
from datadistill.recsys.ease import EASE
from datadistill.recsys.evaluate import evaluate_support
from datadistill.recsys.infinite_ae import InfiniteAE
from datadistill.recsys.metrics import ranking_metrics
from datadistill.recsys.summary import RecSummary

TINY = recdata.PowerLawConfig(users=150, items=60, topics=4, min_items=5, max_items=30)


@pytest.fixture(scope="module")
def tiny():
    return recdata.split("tiny", recdata.powerlaw(TINY), TINY.items)


def test_generator_is_seeded_and_heavy_tailed():
    a, b = recdata.powerlaw(TINY), recdata.powerlaw(TINY)
    assert a == b
    assert recdata.powerlaw(recdata.PowerLawConfig(**{**TINY.__dict__, "seed": 1})) != a
    pop = torch.zeros(TINY.items)
    for items in a:
        pop[items] += 1
    top = pop.sort(descending=True).values
    assert top[: TINY.items // 10].sum() > 0.2 * pop.sum()  # 10% of items hold > 20%
    sizes = torch.tensor([len(x) for x in a])
    assert sizes.min() >= TINY.min_items and sizes.max() <= TINY.max_items
    assert sizes.float().median() < sizes.float().mean()  # right-skewed activity


def test_split_is_disjoint_and_keeps_a_test_item_per_user(tiny):
    assert tiny.train.shape == (150, 60) and tiny.val.dtype == torch.bool
    overlap = (tiny.train > 0) & tiny.val | (tiny.train > 0) & tiny.test | tiny.val & tiny.test
    assert not overlap.any()
    assert tiny.test.any(1).all()
    assert (tiny.train.sum(1) >= 1).all()


def test_infinite_ae_closed_form_matches_a_direct_solve(tiny):
    support, context = tiny.train[:20], tiny.train[20:50]
    model = InfiniteAE(reg=0.1).fit(support)
    k = FCNTK(depth=1, w_var=2.0, b_var=0.01)
    k_ss = k(support)
    ridge = 0.1 * torch.trace(k_ss) / len(support)
    alpha = torch.linalg.solve(k_ss + ridge * torch.eye(len(support), dtype=k_ss.dtype),
                               support.double())  # fmt: skip
    expected = k(context, support) @ alpha
    torch.testing.assert_close(model.predict(context), expected, rtol=1e-8, atol=1e-10)


def test_ease_columns_are_ridge_regressions_without_the_item_itself():
    x = (torch.rand(40, 8, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    b = EASE(reg=3.0).fit(x).weights
    assert torch.all(torch.diagonal(b) == 0)
    for j in range(8):
        others = [i for i in range(8) if i != j]
        a = x[:, others]
        w = torch.linalg.solve(a.T @ a + 3.0 * torch.eye(7, dtype=a.dtype), a.T @ x[:, j])
        torch.testing.assert_close(b[others, j], w, rtol=1e-8, atol=1e-10)


def test_metrics_on_a_hand_worked_example():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    context = torch.tensor([[1.0, 0, 0, 0, 0]])  # item 0 seen: never recommended
    held = torch.tensor([[False, False, True, False, True]])
    m = ranking_metrics(scores, context, held, k=2)
    assert m["hr@2"] == pytest.approx(0.5)  # top 2 of unseen = items 1, 2; one hit of 2
    gain = 1 / math.log2(3)  # the hit sits at rank 2; ideal: hits at ranks 1 and 2
    assert m["ndcg@2"] == pytest.approx(gain / (1 + gain))
    assert m["auc"] == pytest.approx(1 / 4)  # positives 2, 4 vs negatives 1, 3: 1 of 4 pairs


def test_full_data_beats_popularity_free_noise(tiny):
    full = evaluate_support(tiny.train, tiny)
    noise = evaluate_support(torch.rand(5, 60, generator=torch.Generator().manual_seed(0)), tiny)
    assert 0 <= noise["hr@10"] < full["hr@10"] <= 1 and full["auc"] > 0.6


def test_gumbel_sampling_is_bounded_and_differentiable():
    logits = torch.zeros(3, 10, requires_grad=True)
    x = multi_gumbel(logits, draws=4, tau=10.0, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 10) and (x >= 0).all() and (x <= 1).all()
    assert torch.allclose(x.sum(1), torch.full((3,), 4.0))  # smooth draws: no entry clamps
    sharp = multi_gumbel(logits, draws=40, tau=0.05, generator=torch.Generator().manual_seed(0))
    assert sharp.max() == 1.0 and (sharp.sum(1) < 40).all()  # near one-hot draws: hardtanh
    (x * torch.arange(10.0)).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_distill_cf_lowers_its_loss(tiny):
    gen = torch.Generator().manual_seed(0)
    param = GumbelPrior(tiny, 8, draws=40, tau=10.0, init="real", generator=gen)
    objective = DistillCF()
    opt = torch.optim.SGD(param.parameters(), lr=1000.0, momentum=0.9)
    losses = []
    for step in range(25):
        loss = objective.loss(param, tiny, gen, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) < sum(losses[:5])
    assert objective.reg > 0  # picked on validation at the first step


def test_summary_round_trip_and_foreign_files(tiny, tmp_path):
    from datadistill.distill import run
    from datadistill.loop import RunOptions

    s = run("distill-cf", tiny, 6, options=RunOptions(iterations=3, progress=False),
            overrides={"draws": "20"}, out_dir=tmp_path)  # fmt: skip
    loaded = RecSummary.load(tmp_path / "summary.safetensors")
    assert loaded.interactions.shape == (6, 60) and torch.isfinite(loaded.interactions).all()
    torch.testing.assert_close(loaded.interactions, s.interactions)
    assert loaded.params["logits"].shape == (6, 60)
    meta = loaded.metadata()
    assert meta["modality"] == "recsys" and meta["config"]["draws"] == 20
    assert loaded.extra["run"]["iterations"] == 3 and "reg" in loaded.extra
    from datadistill.summary import Summary

    with pytest.raises(SummaryFormatError, match="recsys summary"):
        Summary.load(tmp_path / "summary.safetensors")


def test_image_summary_is_refused_by_the_recsys_loader(digits, tmp_path):
    from datadistill.distill import run
    from datadistill.loop import RunOptions

    run("random", digits, 1, options=RunOptions(progress=False), out_dir=tmp_path)
    with pytest.raises(SummaryFormatError, match="image summary"):
        RecSummary.load(tmp_path / "summary.safetensors")


def test_loaders_read_tiny_fake_files(tmp_path):
    (tmp_path / "ml-1m").mkdir()
    lines = [f"{u}::{i}::4::978300760" for u in (1, 2) for i in range(10, 14)]
    (tmp_path / "ml-1m" / "ratings.dat").write_text("\n".join(lines) + "\n")
    ml = recdata.load("ml-1m", root=tmp_path)
    assert ml.spec.num_users == 2 and ml.spec.num_items == 4
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t5\t3\t1\n1\t6\t3\t1\n1\t7\t3\t1\n2\t5\t4\t1\n")
    small = recdata.load("ml-100k", root=tmp_path)
    assert small.spec.num_users == 1  # user 2 has fewer than 3 interactions
    (tmp_path / "ratings.csv").write_text("itemA,u1,5,1\nitemB,u1,4,1\nitemC,u1,3,1\n")
    amazon = recdata.load("amazon:ratings.csv", root=tmp_path)
    assert amazon.spec.num_items == 3 and amazon.spec.name == "amazon-ratings"
    with gzip.open(tmp_path / "reviews.json.gz", "wt") as f:
        for item in "xyz":
            f.write(json.dumps({"reviewerID": "r1", "asin": item, "overall": 5}) + "\n")
    assert recdata.load("amazon:reviews.json.gz", root=tmp_path).spec.num_items == 3
    with pytest.raises(DistillError, match="not found"):
        recdata.load("ml-1m", root=tmp_path / "missing")


def test_cli_runs_distill_cf_and_accepts_users(tmp_path, capsys, monkeypatch):
    from datadistill.cli import main as cli

    monkeypatch.setattr(recdata, "load", lambda name, root=None: recdata.split(
        "tiny", recdata.powerlaw(TINY), TINY.items))  # fmt: skip
    code = cli.main(["run", "--method", "distill-cf", "--dataset", "powerlaw", "--set",
                     "users=4", "--set", "draws=10", "--iterations", "2", "--out",
                     str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "4 synthetic users" in out and "random users" in out and "ease" in out
    assert RecSummary.load(tmp_path / "summary.safetensors").n == 4
