"""Graph condensation (core/graph): data, networks, parameterisations, objectives, loop, file.

Tiny generated graphs only (a 240-node CSBM, 30 small graphs, the 34-node karate club), a few
iterations each; the Planetoid/TU loaders read tiny fake raw files written here.
"""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from datadistill import methods
from datadistill.distill import run
from datadistill.errors import DistillError, SummaryFormatError
from datadistill.graph import data as gd
from datadistill.graph.baselines import random_subset
from datadistill.graph.evaluate import GraphEvalConfig, evaluate_summary, evaluate_whole
from datadistill.graph.nets import GCN, SGC, GraphGCN, GraphSAGE, gcn_norm, mean_norm
from datadistill.graph.params import AdjacencyGenerator, BernoulliGraphs, class_sizes
from datadistill.graph.summary import GraphSummary
from datadistill.loop import RunOptions
from datadistill.results import check_row

QUIET = RunOptions(progress=False)


@pytest.fixture(scope="module")
def small_csbm():
    return gd.csbm(
        nodes=240,
        classes=3,
        feature_dim=8,
        p_in=0.08,
        p_out=0.01,
        train_per_class=10,
        val=60,
        test=100,
        seed=1,
    )


@pytest.fixture(scope="module")
def small_families():
    return gd.graph_families(graphs_per_class=10, min_nodes=6, max_nodes=10, seed=1)


# --- data ------------------------------------------------------------------------------------


def test_csbm_is_seeded_homophilous_and_split_like_planetoid(small_csbm):
    g = small_csbm
    again = gd.csbm(
        nodes=240,
        classes=3,
        feature_dim=8,
        p_in=0.08,
        p_out=0.01,
        train_per_class=10,
        val=60,
        test=100,
        seed=1,
    )
    assert torch.equal(g.features, again.features) and torch.equal(g.edge_index, again.edge_index)
    assert g.features.shape == (240, 8) and g.train_class_counts() == [10, 10, 10]
    src, dst = g.edge_index
    assert (src != dst).all() and g.adjacency().to_dense().equal(g.adjacency().to_dense().T)
    # expected share of edges inside a class: 80 * 0.08 / (80 * 0.08 + 160 * 0.01) = 0.8
    assert (g.labels[src] == g.labels[dst]).float().mean() > 0.65
    splits = torch.cat([g.train_idx, g.val_idx, g.test_idx])
    assert len(splits.unique()) == len(splits) == 30 + 60 + 100


def test_karate_is_the_real_club_split():
    g = gd.load("karate")
    assert (g.num_nodes, g.num_edges, g.num_classes) == (34, 78, 2)
    assert int(g.labels[0]) == 0 and int(g.labels[33]) == 1  # Mr. Hi and the Officer


def test_graph_families_have_degree_features(small_families):
    s = small_families
    assert len(s.features) == 30 and s.num_classes == 3 and s.num_features == 11
    x, adj, mask = s.batch(s.train_idx[:4])
    assert adj.shape == (4, x.shape[1], x.shape[1]) and mask.sum() == sum(
        len(s.features[i]) for i in s.train_idx[:4].tolist()
    )
    degree = s.adjacency[0].sum(1).long().clamp(max=10)
    assert torch.equal(s.features[0].argmax(1), degree)


def test_unknown_dataset_and_missing_files_are_clear(tmp_path):
    with pytest.raises(DistillError, match="unknown graph dataset"):
        gd.load("nope")
    with pytest.raises(DistillError, match="ind.cora.x"):
        gd.load("cora", root=tmp_path)
    with pytest.raises(DistillError, match="MUTAG_A.txt"):
        gd.load("mutag", root=tmp_path)


def _fake_planetoid(raw, rng):
    """Planetoid's raw format: 6 labelled nodes, 504 more, 10 test nodes (val needs 500)."""
    raw.mkdir(parents=True)
    d, k, n_all, n_test = 5, 3, 510, 10
    onehot = lambda n: np.eye(k)[rng.integers(0, k, n)]
    items = {
        "x": sp.csr_matrix(rng.random((6, d))),
        "allx": sp.csr_matrix(rng.random((n_all, d))),
        "tx": sp.csr_matrix(rng.random((n_test, d))),
        "y": onehot(6),
        "ally": onehot(n_all),
        "ty": onehot(n_test),
        "graph": {i: [(i + 1) % (n_all + n_test)] for i in range(n_all + n_test)},
    }
    for name, obj in items.items():
        with open(raw / f"ind.cora.{name}", "wb") as f:
            pickle.dump(obj, f)
    (raw / "ind.cora.test.index").write_text(
        "".join(f"{i}\n" for i in range(n_all, n_all + n_test))
    )


def test_planetoid_loader_reads_raw_files(tmp_path):
    pytest.importorskip("torch_geometric")
    _fake_planetoid(tmp_path / "Cora" / "raw", np.random.default_rng(0))
    g = gd.load("cora", root=tmp_path)
    assert (g.num_nodes, g.num_features, g.num_classes) == (520, 5, 3)
    assert (len(g.train_idx), len(g.val_idx), len(g.test_idx)) == (6, 500, 10)
    assert g.num_edges == 520  # a ring


def test_tu_loader_reads_raw_files(tmp_path):
    pytest.importorskip("torch_geometric")
    raw = tmp_path / "MUTAG" / "raw"
    raw.mkdir(parents=True)
    # graph 1: a triangle (nodes 1-3), graph 2: a path (nodes 4-5); 1-based, both directions
    edges = [(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (4, 5), (5, 4)]
    (raw / "MUTAG_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / "MUTAG_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n")
    (raw / "MUTAG_graph_labels.txt").write_text("1\n-1\n")
    s = gd.load("mutag", root=tmp_path)
    assert len(s.features) == 2 and s.num_classes == 2
    assert s.adjacency[0].sum() == 6 and s.adjacency[1].sum() == 2
    assert s.num_features == 11  # no node labels: one-hot degree


# --- networks and parameterisations --------------------------------------------------------


def test_normalisations_agree_dense_and_sparse(small_csbm):
    a = small_csbm.adjacency()
    for norm in (gcn_norm, mean_norm):
        assert torch.allclose(norm(a).to_dense(), norm(a.to_dense()), atol=1e-6)
    dense = a.to_dense()
    p = gcn_norm(dense)
    assert torch.allclose(p, p.T)
    rows = mean_norm(dense).sum(1)[dense.sum(1) > 0]
    assert torch.allclose(rows, torch.ones_like(rows))


def test_node_nets_shapes_and_sgc_fold(small_csbm):
    g = small_csbm
    for net in (GCN(8, 3, hidden=16), SGC(8, 3), GraphSAGE(8, 3, hidden=16)):
        net.eval()
        p = net.propagation(g.adjacency())
        out = net(g.features, p)
        assert out.shape == (240, 3) and torch.isfinite(out).all()
        assert torch.allclose(net(*net.fold(g.features, p)), out, atol=1e-5)
        dense = net(g.features, net.propagation(g.adjacency().to_dense()))
        assert torch.allclose(dense, out, atol=1e-5)


def test_graph_gcn_ignores_padding(small_families):
    s = small_families
    net = GraphGCN(s.num_features, 3, hidden=8).eval()
    x, adj, mask = s.batch(s.train_idx[:3])
    padded = net(x, adj, mask)
    single = torch.cat([net(*s.batch(s.train_idx[i : i + 1])) for i in range(3)])
    assert torch.allclose(padded, single, atol=1e-5)


def test_adjacency_generator_is_gconds_formula(gen):
    """A'_ij = sigmoid((MLP([x_i; x_j]) + MLP([x_j; x_i])) / 2), zero diagonal (eq. 5)."""
    x = torch.randn(5, 4, generator=gen)
    g = AdjacencyGenerator(4, hidden=6, layers=3)
    adj = g(x)
    pairs = torch.cat([x.repeat_interleave(5, 0), x.repeat(5, 1)], dim=1)  # [x_i; x_j]
    h = g.first(pairs)
    h = g.hidden[0](torch.relu(g.norms[0](h)))
    m = g.out(torch.relu(g.norms[1](h))).view(5, 5)
    expected = torch.sigmoid((m + m.T) / 2) * (1 - torch.eye(5))
    assert torch.allclose(adj, expected, atol=1e-5)
    assert torch.allclose(adj, adj.T) and (adj.diagonal() == 0).all()


def test_class_sizes_follow_label_proportions():
    assert class_sizes([10, 30, 60], 10) == [1, 3, 6]
    assert sum(class_sizes([7, 7, 9], 8)) == 8
    with pytest.raises(ValueError):
        class_sizes([10, 10], 1)


def test_bernoulli_graphs_sample_and_materialize(gen):
    adj = (torch.rand(4, 6, 6, generator=gen) > 0.5).float()
    adj = torch.triu(adj, 1) + torch.triu(adj, 1).transpose(1, 2)
    p = BernoulliGraphs(torch.randn(4, 6, 3, generator=gen), adj, torch.tensor([0, 0, 1, 1]))
    x, soft, y = p.sample(temperature=1.0, generator=gen)
    assert torch.allclose(soft, soft.transpose(1, 2)) and (soft.diagonal(dim1=1, dim2=2) == 0).all()
    assert ((soft > 0) & (soft < 1) | (soft == 0)).all()
    soft.sum().backward()
    assert p.logits.grad.abs().sum() > 0
    _, hard, _ = p.materialize()
    assert torch.equal(hard, adj)  # logits start at 10 A - 5: the most likely graph is A
    _, cold, _ = p.sample(temperature=0.01, generator=gen)  # near-binary, mostly A (p = 0.993)
    assert ((cold < 0.01) | (cold > 0.99)).float().mean() > 0.98
    assert ((cold - adj).abs() < 0.5).float().mean() > 0.9


# --- objectives: the loss goes down on fixed draws -----------------------------------------


def _loss_before_after(name, data, ipc, steps, overrides):
    """Loss on one fixed draw (same generator state: same network, batch, noise) before and
    after `steps` optimisation steps."""
    build = methods.get(name).build
    cfg = methods.get(name).config(data.name, overrides)
    param, objective = build(cfg, data, ipc, torch.Generator().manual_seed(0))

    def fixed_loss():
        fresh = build(cfg, data, ipc, torch.Generator().manual_seed(0))[1]
        return float(fresh.loss(param, data, torch.Generator().manual_seed(7), 0))

    before = fixed_loss()
    lrs = {"features": cfg.lr_feat, "structure": cfg.lr_adj}
    opts = [torch.optim.Adam(g["params"], lr=lrs[g["name"]]) for g in param.param_groups()]
    gen = torch.Generator().manual_seed(7)
    for it in range(steps):
        loss = objective.loss(param, data, gen, it)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        gen = torch.Generator().manual_seed(7)  # the same draw every step
    return before, fixed_loss()


@pytest.mark.parametrize("name", ["gcond", "gcdm"])
def test_node_objectives_decrease_their_loss(name, small_csbm):
    sets = {"outer_loop": "100", "inner_loop": "0", "lr_feat": "0.05", "lr_adj": "0.01"}
    before, after = _loss_before_after(name, small_csbm, 3, 15, sets)
    assert np.isfinite(before) and after < 0.8 * before


def test_doscond_decreases_its_loss(small_families):
    sets = {"batch_real": "8", "hidden": "16", "lr_feat": "0.05", "lr_adj": "0.5"}
    before, after = _loss_before_after("doscond", small_families, 1, 15, sets)
    assert np.isfinite(before) and after < 0.8 * before


# --- the loop, the file, evaluation, the CLI -------------------------------------------------


def test_condense_writes_a_summary_that_round_trips(small_csbm, tmp_path):
    s = run(
        "gcond",
        small_csbm,
        2,
        options=RunOptions(iterations=3, progress=False),
        overrides={"outer_loop": "2", "inner_loop": "1"},
        out_dir=tmp_path,
    )
    assert s.features.shape == (6, 8) and s.adjacency.shape == (6, 6)
    assert s.labels.tolist() == [0, 0, 1, 1, 2, 2] and s.extra["run"]["iterations"] == 3
    loaded = GraphSummary.load(tmp_path / "summary.safetensors")
    for k in ("features", "adjacency", "labels"):
        assert torch.equal(getattr(loaded, k), getattr(s, k))
    assert loaded.metadata()["config"] == s.config and loaded.stored_bytes == s.stored_bytes
    assert loaded.metadata()["modality"] == "graph" and loaded.task == "node"
    assert s.stored_bytes == 6 * 8 * 4 + 6 * 6 * 4 + 6 * 8 < small_csbm.stored_bytes()


def test_resumed_run_equals_uninterrupted(small_csbm, tmp_path):
    sets = {"outer_loop": "2", "inner_loop": "2"}
    whole = run(
        "gcond",
        small_csbm,
        2,
        options=RunOptions(iterations=6, progress=False),
        overrides=sets,
    )
    run(
        "gcond",
        small_csbm,
        2,
        options=RunOptions(iterations=3, progress=False),
        overrides=sets,
        out_dir=tmp_path,
    )
    resumed = run(
        "gcond",
        small_csbm,
        2,
        overrides=sets,
        out_dir=tmp_path,
        options=RunOptions(iterations=6, resume=True, progress=False),
    )
    assert torch.equal(whole.features, resumed.features)
    assert torch.equal(whole.adjacency, resumed.adjacency)


def test_doscond_summary_is_discrete_graphs(small_families, tmp_path):
    s = run(
        "doscond",
        small_families,
        2,
        options=RunOptions(iterations=2, progress=False),
        overrides={"batch_real": "4", "hidden": "8"},
        out_dir=tmp_path,
    )
    n = small_families.mean_nodes()
    assert s.features.shape == (6, n, 11) and s.adjacency.shape == (6, n, n)
    assert set(s.adjacency.unique().tolist()) <= {0.0, 1.0}
    assert GraphSummary.load(tmp_path / "summary.safetensors").task == "graph"


def test_reduction_sets_the_node_count(small_csbm):
    s = run(
        "gcdm",
        small_csbm,
        1,
        options=RunOptions(iterations=1, progress=False),
        overrides={"reduction": "0.05"},
    )
    assert s.n == 12 and s.extra["reduction"] == pytest.approx(0.05)


def test_bad_requests_are_clear(small_csbm, small_families, tmp_path):
    with pytest.raises(DistillError, match="node classification"):
        run("gcond", small_families, 1, options=QUIET)
    with pytest.raises(DistillError, match="--ipc 1 to 10"):
        run("gcond", small_csbm, 11, options=QUIET)
    with pytest.raises(DistillError, match="not a graph one"):
        run("dm", small_csbm, 1, options=QUIET)
    with pytest.raises(DistillError, match="adjacency"):
        GraphSummary(
            torch.zeros(3, 2),
            torch.zeros(2, 2),
            torch.zeros(3).long(),
            task="node",
            dataset="x",
            num_classes=2,
            method="m",
            ipc=1,
        )
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(SummaryFormatError):
        GraphSummary.load(bad)


def test_image_summary_is_refused(tmp_path):
    from datadistill.spec import DataSpec
    from datadistill.summary import Summary

    spec = DataSpec("digits", 1, 8, 10, (0.5,), (0.5,))
    img = Summary(
        images=torch.zeros(2, 1, 8, 8),
        labels=torch.tensor([0, 1]),
        spec=spec,
        method="random",
        ipc=1,
    )
    img.save(tmp_path / "img.safetensors")
    with pytest.raises(SummaryFormatError, match="not a graph summary"):
        GraphSummary.load(tmp_path / "img.safetensors")


def test_evaluation_rows_have_the_results_schema(small_csbm, small_families):
    quick = GraphEvalConfig(archs=("gcn", "sgc", "sage"), runs=1, epochs=5)
    rows = evaluate_summary(random_subset(small_csbm, 2), small_csbm, config=quick)
    rows += evaluate_whole(small_csbm, config=GraphEvalConfig(runs=1, epochs=5))
    graphs = GraphEvalConfig(runs=1, epochs=3, hidden=8)
    rows += evaluate_summary(random_subset(small_families, 2), small_families, config=graphs)
    rows += evaluate_whole(small_families, config=graphs)
    for r in rows:
        check_row(r)
        assert 0 <= r["acc_mean"] <= 1 and r["train_seconds"] > 0
    assert [r["arch"] for r in rows[:3]] == ["gcn", "sgc", "sage"]
    assert rows[3]["method"] == "whole" and rows[3]["images"] == 240


def test_distill_run_cli_condenses_karate(tmp_path, capsys):
    from datadistill.cli.main import main

    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--method",
            "gcond",
            "--dataset",
            "karate",
            "--ipc",
            "2",
            "--iterations",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert "of the data" in capsys.readouterr().out
    assert GraphSummary.load(out / "summary.safetensors").n == 4
    assert main(["run", "--method", "gcond", "--dataset", "digits", "--quiet"]) == 2


def test_graph_methods_are_registered_as_graph():
    for name in ("gcond", "gcdm", "doscond"):
        m = methods.get(name)
        assert m.modality == "graph" and m.stepper is not None and m.summarise is not None
