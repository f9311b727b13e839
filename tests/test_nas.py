"""apps/nas: the NAS-Bench-201 cell space, its network, the benchmark adapter, ranking."""

import json
import math
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from nas_201_api import NASBench201API
from nas_201_api.api_utils import ArchResults, ResultsCount

from datadistill import data as datasets
from datadistill import nets, plugins
from datadistill.cli import main as cli
from datadistill.errors import DistillError
from datadistill.results import ROW_KEYS, load_rows
from datadistill.spec import DataSpec
from datadistill.train import TrainConfig
from datadistill_apps.nas import plugin
from datadistill_apps.nas.agreement import agreement
from datadistill_apps.nas.benchmark import benchmark_accuracies, load_benchmark
from datadistill_apps.nas.cell import Cell
from datadistill_apps.nas.network import NASBench201Net
from datadistill_apps.nas.scoring import CellSetting, full_data, score_cells
from datadistill_apps.nas.space import EDGES, OPS, RESNET_CELL, SIZE, Arch, all_archs, sample_archs


def spec(channels=1, size=8):
    return DataSpec("tiny", channels, size, 10, (0.5,) * channels, (0.5,) * channels)


# ---- the space ----


def test_space_has_15625_cells_and_every_string_round_trips():
    seen = set()
    for arch in all_archs():
        text = str(arch)
        assert Arch.parse(text) == arch
        assert str(Arch.parse(text)) == text
        assert Arch.from_ordinal(arch.ordinal) == arch
        seen.add(text)
    assert len(seen) == SIZE == 15_625 == len(OPS) ** len(EDGES)


def test_strings_mean_what_nas_201_api_says():
    arch = Arch.parse(RESNET_CELL)
    m = arch.matrix()
    assert m[1, 0] == OPS.index("nor_conv_3x3")  # node 1 <- node 0
    assert m[2, 1] == OPS.index("nor_conv_3x3")
    assert m[3, 0] == OPS.index("skip_connect")
    assert arch.op(3, 0) == "skip_connect" and arch.op(2, 0) == "none"
    assert NASBench201API.str2lists(str(arch))[2] == (
        ("skip_connect", 0), ("none", 1), ("none", 2),
    )  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|none~0|conv_5x5~1|+|skip_connect~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~1|none~0|+|skip_connect~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|",
        "nor_conv_3x3",
    ],
)
def test_bad_strings_are_refused(bad):
    with pytest.raises(DistillError):
        Arch.parse(bad)


def test_sample_is_seeded_and_distinct():
    a, b = sample_archs(40, seed=0), sample_archs(40, seed=0)
    assert a == b and len(set(a)) == 40
    assert sample_archs(40, seed=1) != a
    with pytest.raises(DistillError):
        sample_archs(0, seed=0)


# ---- the network ----


@pytest.mark.parametrize("channels,size", [(1, 8), (1, 28), (3, 32)])
def test_sampled_cells_build_and_run(channels, size):
    s = spec(channels, size)
    x = torch.randn(2, channels, size, size)
    for arch in sample_archs(12, seed=size):
        net = NASBench201Net(s, arch=arch, width=2, cells=1)
        out = net(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        assert net.embed(x).shape == (2, net.feature_dim)


def test_network_is_registered_with_core_nets():
    net = nets.build("nas201", spec(), width=2, cells=2)
    assert str(net.arch) == RESNET_CELL
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.slow
def test_every_cell_builds_and_runs():
    s, x = spec(1, 8), torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for arch in all_archs():
            assert NASBench201Net(s, arch=arch, width=1, cells=1)(x).shape == (2, 10)


# ---- none edges ----


def _grads(arch_str):
    torch.manual_seed(0)
    cell = Cell(Arch.parse(arch_str), 3)
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    out = cell(x)
    out.sum().backward()
    conv = cell.edges[0][1].weight.grad  # edge 0 -> 1 is nor_conv_3x3 below
    return x, out, conv


def test_none_edges_cut_gradient_flow():
    # node1 = conv(x) feeds only `none` edges; node3 = x
    x, out, conv = _grads("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert torch.equal(out, x)
    assert conv is None or torch.count_nonzero(conv) == 0
    assert torch.equal(x.grad, torch.ones_like(x))
    # the same cell with node1 -> node3 a skip: the conv now gets gradient
    _, _, conv = _grads("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert conv is not None and torch.count_nonzero(conv) > 0


def test_all_none_cell_disconnects_the_stem():
    net = NASBench201Net(spec(), arch=Arch(("none",) * 6), width=2, cells=1)
    net(torch.randn(4, 1, 8, 8)).sum().backward()
    stem = net.features[0].weight.grad
    assert stem is None or torch.count_nonzero(stem) == 0
    assert torch.count_nonzero(net.classifier.bias.grad) > 0  # the graph itself is intact


# ---- the benchmark file ----


def _synthetic_benchmark(path, archs, numpy_scalars=False):
    """A small file in NAS-Bench-201-v1_1's layout, built with nas_201_api's own classes."""
    infos = {}
    for index, arch in enumerate(archs):
        hps = {}
        for hp, epochs in (("less", 12), ("full", 200)):
            res = ArchResults(index, arch)
            for dataset, test_set in (("cifar10", "ori-test"), ("cifar100", "x-test")):
                for seed in (777, 888):
                    acc = 50.0 + index + (seed == 888) + (epochs == 200) * 10
                    flop = np.float64(1.5) if numpy_scalars else 1.5
                    config = {"arch_str": arch, "channel": 16, "num_cells": 5, "class_num": 10}
                    accs, losses = (
                        dict.fromkeys(range(epochs), acc),
                        dict.fromkeys(range(epochs), 1.0),
                    )
                    rc = ResultsCount(
                        dataset, None, accs, losses, 0.1, flop, config, seed, epochs, [0.01]
                    )
                    keys = [f"{test_set}@{e}" for e in range(epochs)]
                    rc.update_eval({k: acc for k in keys}, {k: 1.0 for k in keys},
                                   {k: 0.1 for k in keys})  # fmt: skip
                    res.update(dataset, seed, rc)
            hps[hp] = res.state_dict()
        infos[index] = hps
    raw = {"meta_archs": list(archs), "arch2infos": infos, "evaluated_indexes": set(infos)}
    torch.save(raw, path)
    return path


def test_benchmark_adapter_reads_a_file_in_the_real_layout(tmp_path):
    archs = [str(a) for a in sample_archs(3, seed=0)]
    path = _synthetic_benchmark(tmp_path / "nb201.pth", archs)
    api = load_benchmark(path)
    got = benchmark_accuracies(api, [Arch.parse(a) for a in archs], dataset="cifar10")
    # mean of seeds 777 (50 + i + 10) and 888 (51 + i + 10) under the 200-epoch schedule
    assert got == pytest.approx({a: (60.5 + i) / 100 for i, a in enumerate(archs)})
    less = benchmark_accuracies(api, [Arch.parse(archs[2])], dataset="cifar100", hp="12")
    assert less[archs[2]] == pytest.approx(0.525)
    with pytest.raises(DistillError, match="no results for 'fashion-mnist'"):
        benchmark_accuracies(api, [Arch.parse(archs[0])], dataset="fashion-mnist")
    missing = next(a for a in sample_archs(10, seed=5) if str(a) not in archs)
    with pytest.raises(DistillError, match="not in the benchmark"):
        benchmark_accuracies(api, [missing], dataset="cifar10")


def test_benchmark_adapter_survives_weights_only_refusal(tmp_path):
    archs = [str(a) for a in sample_archs(2, seed=1)]
    path = _synthetic_benchmark(tmp_path / "nb201.pth", archs, numpy_scalars=True)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    with pytest.raises(DistillError, match="needs full unpickling.*--trust-benchmark-file"):
        load_benchmark(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api = load_benchmark(path, trust=True)
    assert any("weights_only=False" in str(w.message) for w in caught)
    assert len(api) == 2


def test_benchmark_adapter_refuses_wrong_files(tmp_path):
    with pytest.raises(DistillError, match="not found"):
        load_benchmark(tmp_path / "absent.pth")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(DistillError, match="not a NAS-Bench-201 file"):
        load_benchmark(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(DistillError, match="cannot read"):
        load_benchmark(tmp_path / "junk.pth")


# ---- rank agreement ----


def test_agreement_exact_values():
    truth = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    same = agreement(truth, truth, k=2)
    assert (same.spearman, same.kendall, same.top_k, same.n) == (1.0, 1.0, 1.0, 4)
    rev = agreement(truth, {k: -v for k, v in truth.items()}, k=2)
    assert rev.spearman == pytest.approx(-1) and rev.kendall == pytest.approx(-1)
    assert rev.top_k == 0.0
    swap = agreement(truth, {"a": 1.0, "b": 2.0, "c": 4.0, "d": 3.0}, k=2)
    assert swap.spearman == pytest.approx(0.8) and swap.kendall == pytest.approx(2 / 3)
    assert swap.top_k == 1.0
    flat = agreement(truth, dict.fromkeys(truth, 0.1))
    assert math.isnan(flat.spearman) and math.isnan(flat.kendall)
    with pytest.raises(DistillError):
        agreement(truth, {"a": 1.0})


# ---- scoring, cache and CLI on digits ----


@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits")


TINY = CellSetting(width=2, cells=1, train=TrainConfig(epochs=1, lr=0.1, dsa=False))


def test_scoring_caches_each_cell_and_resumes(digits, tmp_path, monkeypatch):
    archs = sample_archs(2, seed=3)
    cache = tmp_path / "cells.json"
    kw = dict(setting=TINY, seed=0, device=torch.device("cpu"), cache=cache, progress=False)
    rows = score_cells(archs, full_data(digits), digits, **kw)
    assert [r["arch"] for r in rows] == [str(a) for a in archs]
    assert all(set(ROW_KEYS) <= r.keys() and 0 <= r["acc_mean"] <= 1 for r in rows)
    assert len(load_rows(cache)) == 2

    def boom(*a, **k):
        raise AssertionError("a cached cell was trained again")

    monkeypatch.setattr("datadistill_apps.nas.scoring.train", boom)
    again = score_cells(archs, full_data(digits), digits, **kw)
    assert [r["acc_mean"] for r in again] == [r["acc_mean"] for r in rows]


@dataclass
class FakeEntryPoint:
    name: str
    value: str


@pytest.fixture
def nas_cli(monkeypatch):
    monkeypatch.setattr(plugins, "entry_points", lambda group: [FakeEntryPoint("nas", "x")])
    monkeypatch.setitem(sys.modules, "x", plugin)
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))


def test_cli_rank_writes_rows_and_a_plot(nas_cli, tmp_path, capsys):
    results = tmp_path / "nas.json"
    argv = ["nas", "rank", "--dataset", "digits", "--archs", "4", "--truth-epochs", "1",
            "--steps", "2", "--width", "2", "--results", str(results), "--quiet",
            "--device", "cpu", "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0
    rows = json.loads(results.read_text())
    assert {r["variant"] for r in rows} == {
        "proxy=random-subset", "proxy=cheap-train", "proxy=zero-cost",
    }  # fmt: skip
    assert sorted(r["method"] for r in rows if r["variant"] == "proxy=zero-cost") == [
        "grad-norm", "naswot", "synflow",
    ]  # fmt: skip
    for r in rows:
        assert set(ROW_KEYS) <= r.keys()
        assert {"spearman", "kendall", "top5", "proxy_seconds", "cost_ratio"} <= r.keys()
        assert {"spearman_ci", "kendall_ci", "top5_ci"} <= r.keys()
        assert r["cells_scored"] == 4
    out = tmp_path / "out"
    assert (out / "proxies.png").stat().st_size > 0
    assert len(load_rows(out / "cells.json")) == 4 * 3  # truth + 2 proxies
    assert load_rows(out / "rows.json") == rows
    assert not [f for f in tmp_path.rglob("*") if "lock" in f.name]  # no stale lock files
    assert "Spearman" in capsys.readouterr().out


def test_cli_rank_needs_something_to_rank(nas_cli, capsys):
    assert cli.main(["nas", "rank", "--archs", "3"]) == 2
    assert "--summary" in capsys.readouterr().err


def test_cli_rank_reads_the_benchmark_file_and_names_its_datasets(nas_cli, tmp_path, capsys):
    archs = [str(a) for a in sample_archs(3, seed=0)]
    path = _synthetic_benchmark(tmp_path / "nb201.pth", archs)
    argv = ["nas", "rank", "--dataset", "digits", "--archs", "3", "--benchmark-file", str(path),
            "--results", str(tmp_path / "r.json")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "NAS-Bench-201 has no results for 'digits'" in capsys.readouterr().err


def test_ground_truth_shards_running_at_once_fill_one_cache(tmp_path):
    """`experiments/nas_fmnist.py --shard I/K` in two processes at once: disjoint cells, one
    cache file (append_rows' lock), every sampled cell in it exactly once."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATADISTILL_COMPILE": "0",
        "OMP_NUM_THREADS": "1",
    }
    args = [sys.executable, str(root / "experiments" / "nas_fmnist.py"), "--dataset", "digits",
            "--archs", "4", "--truth-epochs", "1", "--truth-only", "--quiet", "--device", "cpu",
            "--results", str(tmp_path / "nas.json")]  # fmt: skip
    shards = [subprocess.Popen([*args, "--shard", f"{i}/2"], env=env) for i in range(2)]
    assert [p.wait(timeout=600) for p in shards] == [0, 0]
    rows = load_rows(tmp_path / "nas_cells.json")
    sampled = [str(a) for a in sample_archs(4, seed=0)]
    assert sorted(r["arch"] for r in rows) == sorted(sampled)
    for r in rows:  # cell i came from shard i mod 2, whose command the row records
        assert r["command"].endswith(f"--shard {sampled.index(r['arch']) % 2}/2")


def test_proxy_lr_replaces_the_protocols_and_leaves_cheap_training_alone(digits):
    from datadistill_apps.nas.scoring import (
        PROXY_TRAIN,
        TRUTH_TRAIN,
        cheap_subset,
        proxy_setting,
        random_subset,
    )

    subset = random_subset(digits, ipc=5, seed=0)
    assert proxy_setting(subset, width=2, cells=1, steps=20).train.lr == PROXY_TRAIN.lr
    faster = proxy_setting(subset, width=2, cells=1, steps=20, lr=0.1)
    assert faster.train.lr == 0.1 and "lr0.1" in faster.label()
    cheap = cheap_subset(digits, steps=2, batch_size=64, seed=0)
    assert proxy_setting(cheap, width=2, cells=1, steps=2, lr=0.5).train == TRUTH_TRAIN.with_(
        epochs=1
    )


@pytest.mark.slow
def test_proxy_cells_cached_by_shards_are_scored_without_training_again(tmp_path):
    """`--cells-only --shard I/K` fills the cache with the proxies' cells; the last run
    (no shard) scores every proxy from it and adds no cell. Five processes (42 s): under
    the slow marker; shards filling one cache run by default in
    test_ground_truth_shards_running_at_once_fill_one_cache."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "DATADISTILL_COMPILE": "0",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    args = [sys.executable, str(root / "experiments" / "nas_fmnist.py"), "--dataset", "digits",
            "--archs", "4", "--truth-epochs", "1", "--steps", "3", "--width", "2", "--quiet",
            "--device", "cpu", "--methods", "--ipc", "5",
            "--results", str(tmp_path / "n.json")]  # fmt: skip
    for mode in ("--truth-only", "--cells-only"):
        for i in range(2):
            subprocess.run([*args, mode, "--shard", f"{i}/2"], env=env, check=True, timeout=600)
    cache = tmp_path / "n_cells.json"
    cached = len(load_rows(cache))
    assert cached == 4 * 3  # truth, random IPC 5, cheap training
    out = subprocess.run(args, env=env, check=True, timeout=600, capture_output=True, text=True)
    assert len(load_rows(cache)) == cached
    rows = json.loads((tmp_path / "n.json").read_text())
    # zero-cost proxies score the cells at initialisation: they add rows, not cells
    assert sorted(r["method"] for r in rows) == [
        "cheap-train", "grad-norm", "naswot", "random", "synflow",
    ]  # fmt: skip
    assert all(r["cells_scored"] == 4 and len(r["spearman_ci"]) == 2 for r in rows)
    assert "Spearman" in out.stdout


def test_scatter_frames_the_cells_that_learn(tmp_path):
    """A cut-off cell at chance stays in the data but not in the frame of the panel."""
    from datadistill.plots import plt
    from datadistill_apps.nas.plots import zoom_past_chance

    fig, ax = plt.subplots()
    xs, ys = [10.0, 88.0, 90.0, 92.0], [10.0, 60.0, 65.0, 70.0]
    ax.scatter(xs, ys)
    zoom_past_chance(ax, xs, ys)
    assert ax.get_xlim()[0] > 80 and ax.get_ylim()[0] > 50
    assert any("1 cell(s) at chance" in t.get_text() for t in ax.texts)
    plt.close(fig)


def test_proxy_seconds_compare_only_with_a_truth_timed_on_the_same_machine(digits):
    from datadistill_apps.nas.pipeline import ProxyPlan, Truth, score_proxy
    from datadistill_apps.nas.scoring import proxy_setting, random_subset

    archs = sample_archs(2, seed=1)
    ts = random_subset(digits, ipc=3, seed=0)
    plan = ProxyPlan(width=2, cells=1, steps=2)
    setting = proxy_setting(ts, width=2, cells=1, steps=2)
    acc = {str(a): 0.5 + i / 10 for i, a in enumerate(archs)}
    kw = dict(plan=plan, seed=0, device=torch.device("cpu"), cache=None, progress=False)
    elsewhere = Truth(acc, 10.0, "t", device="cuda (NVIDIA H200)", images_seen=3000)
    row, _ = score_proxy(archs, ts, setting, digits, truth=elsewhere, **kw)
    assert row["cost_ratio"] is None
    assert row["images_seen_ratio"] == setting.train.epochs * 30 / 3000
    here = Truth(acc, 10.0, "t", device=row["device"], images_seen=3000)
    row, _ = score_proxy(archs, ts, setting, digits, truth=here, **kw)
    assert row["cost_ratio"] == pytest.approx(row["proxy_seconds"] / 10.0)


@pytest.mark.parametrize("lr", ["0", "-0.1", "nan"])
def test_cli_rank_refuses_a_proxy_lr_that_is_not_positive(nas_cli, capsys, lr):
    assert cli.main(["nas", "rank", "--dataset", "digits", "--proxy-lr", lr]) == 2
    assert "--proxy-lr must be a positive number" in capsys.readouterr().err


def test_cli_rank_trains_proxies_at_the_given_lr(nas_cli, tmp_path):
    results = tmp_path / "nas.json"
    argv = ["nas", "rank", "--dataset", "digits", "--archs", "3", "--truth-epochs", "1",
            "--steps", "2", "--width", "2", "--results", str(results), "--quiet",
            "--device", "cpu", "--baselines", "random", "--proxy-lr", "0.05",
            "--zero-cost", "", "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0
    (row,) = json.loads(results.read_text())
    assert row["variant"] == "proxy=random-subset-lr0.05" and "-lr0.05-" in row["setting"]


def test_proxy_without_augmentation_trains_as_the_truth_does(digits):
    from datadistill_apps.nas.pipeline import ProxyPlan
    from datadistill_apps.nas.scoring import proxy_setting, random_subset

    subset = random_subset(digits, ipc=5, seed=0)
    plain = proxy_setting(subset, width=2, cells=1, steps=20, lr=0.1, dsa=False)
    assert not plain.train.dsa and plain.label().endswith("-noaug")
    assert proxy_setting(subset, width=2, cells=1, steps=20).train.dsa
    assert ProxyPlan(lr=0.1, dsa=False).tag() == "-lr0.1-noaug" and ProxyPlan().tag() == ""


def test_truth_seeds_record_their_agreement_and_average_the_truth(tmp_path):
    """`--truth-seeds 0 1` trains the same cells from two inits: one row says how well
    seed 1 ranks them as seed 0 does, and proxies are scored against the mean."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "DATADISTILL_COMPILE": "0",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    args = [sys.executable, str(root / "experiments" / "nas_fmnist.py"), "--dataset", "digits",
            "--archs", "4", "--truth-epochs", "1", "--width", "2", "--quiet", "--device", "cpu",
            "--methods", "--baselines", "--zero-cost", "naswot", "--zero-cost-batch", "8",
            "--truth-seeds", "0", "1", "--results", str(tmp_path / "n.json")]  # fmt: skip
    subprocess.run(args, env=env, check=True, timeout=600, capture_output=True)
    rows = {r["method"]: r for r in load_rows(tmp_path / "n.json")}
    assert set(rows) == {"truth-seed1", "naswot"}
    cells = {r["seed"]: r for r in load_rows(tmp_path / "n_cells.json")}
    assert set(cells) == {0, 1}
    assert rows["truth-seed1"]["variant"] == "proxy=truth-seed" and rows["truth-seed1"]["seed"] == 0
    assert rows["naswot"]["truth"].endswith("mean of seeds 0,1")
    assert (tmp_path / "n_rho_cost.png").exists() and (tmp_path / "n_zero_cost.png").exists()
