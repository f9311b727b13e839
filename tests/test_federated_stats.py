"""The statistics scheme of apps/federated: clients upload DM's class statistics once.

Exactness (aggregated client statistics equal the central ones of core's "class" pool on the
union of the partitions), what an upload holds, the server's distillation, and the scheme
end to end on Flower's simulation engine and on a loopback deployment with a failing client.
"""

import functools
from dataclasses import replace

import pytest
import torch
from federated_checks import image_shaped

from datadistill.errors import DistillError
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.params.images import FreeImages
from datadistill_apps.federated import cache, records, statistics, stats_flower, stats_server
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.partition import partition
from datadistill_apps.federated.statistics import ClassStatistics, PoolDescription


def _central_pool(data, members: int) -> dict:
    """Core's pool with the "class" statistic, filled on the whole training set."""
    objective = MeanEmbedding(
        pool=members,
        pool_statistic="class",
        siamese="batch",
        dsa_strategy=data.spec.dsa_strategy,
        target_precision="fp32",
        batch_real=8,
    )
    gen = torch.Generator().manual_seed(3)
    param = FreeImages(data, 1, init="noise", generator=gen)
    for step in range(members):
        objective.loss(param, data, gen, step)
    return objective.state_dict()


def test_aggregated_client_statistics_equal_the_central_statistics_of_the_union(digits):
    # Prepare: core's pool filled centrally, described to clients by its seeds and draws
    central = _central_pool(digits, members=2)
    pool = PoolDescription(
        arch="convnet",
        dsa_strategy=digits.spec.dsa_strategy,
        seeds=central["pool_seeds"],
        ops=central["pool_ops"],
        values=central["pool_values"][:, :, :1],  # batch mode: every row is the same draw
    )
    parts = partition(digits.y_train, num_partitions=3, alpha=0.3, seed=0)
    # Execute
    uploads = [statistics.client_statistics(digits, rows, pool) for rows in parts]
    total = statistics.aggregate(uploads)
    # Assert
    assert any((u.counts == 0).any() for u in uploads)  # label skew: some class is absent
    assert total.counts.tolist() == digits.class_counts()
    assert torch.allclose(total.means, central["pool_means"], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(uploads[0].means, central["pool_means"], atol=1e-3)


def test_the_pool_description_is_a_function_of_its_seed():
    a, b = (statistics.describe_pool(members=3, seed=5, num_classes=4, dsa_strategy="color_crop")
            for _ in range(2))  # fmt: skip
    c = statistics.describe_pool(members=3, seed=6, num_classes=4, dsa_strategy="color_crop")
    assert all(torch.equal(a.tensors()[k], b.tensors()[k]) for k in a.tensors())
    assert not torch.equal(a.seeds, c.seeds)
    assert a.values.shape[:3] == (3, 4, 1)


def test_a_client_upload_holds_no_tensor_with_an_image_shape(digits):
    pool = statistics.describe_pool(
        members=2, seed=0, num_classes=10, dsa_strategy=digits.spec.dsa_strategy
    )
    rows = partition(digits.y_train, num_partitions=3, alpha=0.5, seed=0)[0]
    stats = statistics.client_statistics(digits, rows, pool)
    content = stats_flower.stats_to_record(stats, partition_id=0)
    assert image_shaped(content, digits.spec.shape) == []
    assert stats.means.shape[:2] == (2, 10) and int(stats.counts.sum()) == len(rows)
    # the check can fail: a summary upload carries images
    summary = stats_server.distil_from_statistics(
        digits.spec, pool, statistics.aggregate([stats, _rest(digits, rows, pool)]), ipc=1,
        iterations=1,
    )  # fmt: skip
    assert image_shaped(records.summary_to_record(summary, partition_id=0), digits.spec.shape)
    back = stats_flower.record_to_stats(content)
    assert torch.equal(back.means, stats.means) and torch.equal(back.counts, stats.counts)


def _rest(data, rows, pool) -> ClassStatistics:
    others = torch.tensor(sorted(set(range(len(data.y_train))) - set(rows.tolist())))
    return statistics.client_statistics(data, others, pool)


def test_a_class_no_client_holds_is_named():
    counts = torch.tensor([3, 0, 2])
    held = ClassStatistics(
        counts=counts, member_counts=counts[None].float(), means=torch.ones(1, 3, 4)
    )
    with pytest.raises(DistillError, match=r"class\(es\) \[1\]"):
        statistics.aggregate([held, held])


def test_the_server_distils_against_the_aggregated_statistics(digits):
    pool = statistics.describe_pool(
        members=2, seed=0, num_classes=10, dsa_strategy=digits.spec.dsa_strategy
    )
    total = statistics.aggregate([statistics.client_statistics(digits, torch.arange(600), pool)])
    losses = []
    summary = stats_server.distil_from_statistics(digits.spec, pool, total, ipc=2, iterations=30)
    assert summary.images.shape == (20, *digits.spec.shape)
    assert torch.isfinite(summary.images).all()
    cache = total.means.numel() * 4  # the aggregated means are the pool's whole cache
    assert summary.extra["pool"] == {
        "size": 2, "statistic": "class", "filled": 2, "cache_bytes": cache
    }  # fmt: skip
    # the loss against the aggregated means went down from the noise it started at
    method = stats_server.statistics_method(pool, total)
    cfg = stats_server.dm_config(digits.spec, pool)
    data = stats_server.StatisticsData(digits.spec, tuple(total.counts.tolist()))
    for images in (None, summary.images):
        param, objective = method.build(cfg, data, 2, torch.Generator().manual_seed(0))
        if images is not None:
            param.images.data.copy_(images)
        with torch.no_grad():
            losses.append(sum(float(objective.loss(param, data, None, s)) for s in range(2)))
    assert losses[1] < losses[0]


def test_the_servers_distillation_stopped_mid_way_resumes_to_the_same_summary(
    digits, tmp_path, monkeypatch
):
    pool = statistics.describe_pool(
        members=2, seed=0, num_classes=10, dsa_strategy=digits.spec.dsa_strategy
    )
    total = statistics.aggregate([statistics.client_statistics(digits, torch.arange(600), pool)])
    cfg = FedConfig(dataset="digits", mode="statistics", pool=2, cache=str(tmp_path))
    folder = cache.server_run_folder(cfg, total)
    run = functools.partial(stats_server.distil_from_statistics, digits.spec, pool, total, ipc=2)
    whole = run(iterations=8)
    run(iterations=3, out_dir=folder)  # stopped after 3 steps, its checkpoint kept
    steps, loss = [], MeanEmbedding.loss
    monkeypatch.setattr(MeanEmbedding, "loss", lambda *a: steps.append(1) or loss(*a))
    resumed = run(iterations=8, out_dir=folder)
    assert len(steps) == 5  # the 5 steps left, not 8 from the start
    assert resumed.extra["run"]["iterations"] == 8
    assert torch.equal(resumed.images, whole.images)
    # other statistics (one client more) never resume this run
    more = statistics.aggregate(
        [total, statistics.client_statistics(digits, torch.arange(600, 700), pool)]
    )
    assert cache.server_run_folder(cfg, more) != folder
    assert cache.server_run_folder(replace(cfg, cache=""), total) is None


@pytest.mark.xdist_group("ray")  # they count Ray processes machine-wide: one worker runs them
def test_the_statistics_scheme_runs_on_the_simulation_engine_with_a_warm_fedavg():
    """Three simulated clients, one failing: the run finishes without it; a warm-started
    FedAvg round follows, its bytes counted on top of the statistics round's."""
    from federated_checks import ray_left_behind, ray_pids

    from datadistill import data, results
    from datadistill_apps.federated import server
    from datadistill_apps.federated.rows import rows_from_report
    from datadistill_apps.federated.simulate import simulate

    others = ray_pids()
    cfg = FedConfig(
        clients=3, alpha=0.5, mode="statistics", pool=2, ipc=2, iterations=3, epochs=2,
        warm_rounds=1, fail_clients="2", sample_rate=0.5, client_epsilon=10.0,
    )  # fmt: skip
    report = simulate(cfg)
    assert report["received"] == [0, 1] and report["missing_clients"] == [2]
    assert 0.0 <= report["accuracy"] <= 1.0 and report["images"] == 20
    up = report["statistics_bytes"]["bytes_up"]
    floats = 2 * 10 * 128  # members x classes x the ConvNet's embedding on 8x8 digits
    assert 2 * 4 * floats <= up < 2 * 4 * floats + 4_000  # two uploads, no image in them
    net = server.build_net("convnet", data.load("digits"), seed=0, device="cpu")
    model = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    warm = report["warm_fedavg"]["per_round"]["1"]
    assert warm["bytes_up"] >= up + 2 * model and warm["missing_clients"] == [2]
    rows = [results.check_row(r) for r in rows_from_report(report)]
    assert [(r["method"], r["rounds"]) for r in rows] == [("dm-statistics", 1), ("fedavg-warm", 2)]
    assert rows[0]["bytes_up"] == up and rows[1]["bytes_total"] > rows[0]["bytes_total"]
    # each client's upload went through dp-dm's release at epsilon 10, on half its rows
    assert sorted(report["client_privacy"]) == ["0", "1"] and report["sample_rate"] == 0.5
    assert all(0 < r["client_epsilon"] <= 10 and r["noise_multiplier"] > 0 for r in rows)
    assert "q=0.5,client_epsilon=" in rows[0]["variant"]
    assert ray_left_behind(others) == []


def test_the_statistics_scheme_deploys_on_loopback_without_a_failed_client(tmp_path):
    """Three SuperNodes on a loopback SuperLink, one failing on purpose: the run finishes,
    names the missing client and leaves no Flower process."""
    import time

    from federated_checks import flower_processes

    from datadistill_apps.federated.deploy import deploy

    home = tmp_path / "flwr-home"
    cfg = FedConfig(
        clients=3, alpha=0.5, mode="statistics", pool=2, ipc=2, iterations=3, epochs=2,
        fail_clients="2", timeout=120.0,
    )  # fmt: skip
    started = time.monotonic()
    report = deploy(cfg, home=home, logs=tmp_path / "logs", timeout=240)
    assert report["received"] == [0, 1] and report["missing_clients"] == [2]
    assert report["nodes"] == 3 and len(report["failed_nodes"]) == 1
    assert report["bytes_up_per_client"]["0"] > 0 and 0.0 <= report["accuracy"] <= 1.0
    assert flower_processes(str(home)) == []
    print(f"deployment took {time.monotonic() - started:.0f} s")
