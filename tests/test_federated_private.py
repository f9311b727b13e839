"""The statistics scheme's sampled and private uploads (apps/federated statistics, private).

Sampling: each member reads a Bernoulli(q) sample of a client's rows, and the aggregate is
exactly the means over the union of the clients' samples. Privacy: a client's upload goes
through dp-dm's release (clip, sum, Gaussian noise once), with epsilon from Opacus.
"""

import math

import pytest
import torch
from federated_checks import image_shaped

from datadistill.errors import DistillError
from datadistill.objectives.distribution import network_from_seed
from datadistill_apps.federated import private, statistics, stats_flower
from datadistill_apps.federated.partition import partition
from datadistill_apps.privacy import release


def _pool(digits, q: float, members: int = 2):
    return statistics.describe_pool(
        members=members, seed=0, num_classes=10, dsa_strategy=digits.spec.dsa_strategy,
        sample_rate=q,
    )  # fmt: skip


def _central_means(data, pool, rows: torch.Tensor, member: int) -> torch.Tensor:
    """Member `member`'s class means [K, D] over `rows`, computed directly."""
    net = network_from_seed(pool.arch, data, int(pool.seeds[member]), "cpu")
    draws = pool.draws(member)
    y = data.y_train[rows]
    out = []
    with torch.no_grad():
        for c in range(data.spec.num_classes):
            x = data.x_train[rows[y == c]]
            x = pool.aug.apply(x, draws[c], index=torch.zeros(len(x), dtype=torch.long))
            out.append(net.embed(x).mean(0))
    return torch.stack(out)


def test_sampled_aggregate_equals_central_means_on_the_union_of_the_samples(digits):
    # Prepare
    pool = _pool(digits, q=0.3)
    parts = partition(digits.y_train, num_partitions=3, alpha=0.5, seed=0)
    n = len(digits.y_train)
    # Execute
    uploads = [
        statistics.client_statistics(digits, rows, pool, partition=pid)
        for pid, rows in enumerate(parts)
    ]
    total = statistics.aggregate(uploads)
    # Assert
    for m in range(pool.size):
        union = torch.cat(
            [
                rows[statistics.sample(pool, partition=pid, rows=rows, examples=n)[m]]
                for pid, rows in enumerate(parts)
            ]
        )
        assert 0.2 * n < len(union) < 0.4 * n  # about q of the rows
        counts = torch.bincount(digits.y_train[union], minlength=10)
        assert total.member_counts[m].tolist() == counts.float().tolist()
        assert torch.allclose(total.means[m], _central_means(digits, pool, union, m), atol=1e-5)
    assert total.counts.tolist() == digits.class_counts()  # the partitions', not the samples'
    assert not torch.equal(total.member_counts[0], total.member_counts[1])


def test_a_rows_membership_depends_on_the_member_the_partition_and_its_index_alone(digits):
    pool = _pool(digits, q=0.5)
    rows = torch.arange(100, 400)
    n = len(digits.y_train)
    full = statistics.sample(pool, partition=1, rows=rows, examples=n)
    fewer = statistics.sample(pool, partition=1, rows=rows[1::2], examples=n)
    assert torch.equal(full[:, 1::2], fewer)  # removing rows changes no other row's draw
    assert not torch.equal(full[0], full[1])
    assert not torch.equal(full, statistics.sample(pool, partition=2, rows=rows, examples=n))
    assert statistics.sample(_pool(digits, q=1.0), partition=1, rows=rows, examples=n) is None


def test_a_class_whose_sample_is_empty_gives_zeros_not_nan_and_a_named_error(digits):
    pool = _pool(digits, q=0.02)
    rows = torch.arange(60)  # about 6 a class: most members' samples miss most classes
    upload = statistics.client_statistics(digits, rows, pool, partition=0)
    held = upload.counts > 0
    assert (upload.member_counts[:, held] == 0).any()
    assert torch.isfinite(upload.means).all()
    with pytest.raises(DistillError, match="raise --sample-rate"):
        statistics.aggregate([upload])


def _clean(digits, rows, pool, bound):
    chosen = statistics.sample(pool, partition=0, rows=rows, examples=len(digits.y_train))
    return release.clipped_sums(
        digits, pool.embedders(), clip_norm=bound, count_share=private.COUNT_SHARE,
        rows=rows, sample=chosen,
    )  # fmt: skip


def test_clipping_bounds_one_examples_contribution_to_a_clients_sums(digits):
    pool = _pool(digits, q=0.5)
    rows = torch.arange(200)
    bound = 3.0  # far below the embeddings' norms (about 0.5 sqrt(128) a member): it binds
    with_it, without = _clean(digits, rows, pool, bound), _clean(digits, rows[1:], pool, bound)
    weight = bound * math.sqrt(private.COUNT_SHARE)
    moved = torch.cat(
        [(with_it.sums - without.sums).flatten(), (with_it.counts - without.counts) * weight]
    )
    assert with_it.norms.max() > 2 * bound  # clipping did bind
    assert float(moved.norm()) <= bound * (1 + 1e-5)
    assert float(moved.norm()) > 0.5 * bound


def test_a_private_upload_carries_the_stated_noise_and_opacuss_epsilon(digits):
    from opacus.accountants import PRVAccountant

    pool = _pool(digits, q=0.5)
    rows = torch.arange(len(digits.y_train))  # one client holding every class richly
    budget = private.ClientPrivacy(epsilon=10.0)
    upload, record = private.private_statistics(
        digits, rows, pool, budget, partition=0, generator=torch.Generator().manual_seed(1)
    )
    bound = record["clip_norm"]
    clean = _clean(digits, rows, pool, bound)
    # Assert: the released sums are the clean ones plus N(0, (sigma C)^2) on every coordinate
    sums = upload.means * upload.member_counts[:, :, None]
    noise = (sums - clean.sums).flatten()
    expected = record["noise_multiplier"] * bound
    assert (
        abs(float(noise.std()) / expected - 1) < 0.1 and abs(float(noise.mean())) < 0.1 * expected
    )
    assert torch.allclose(upload.member_counts, 0.5 * upload.counts.expand(2, -1))
    assert bound == pytest.approx(0.6 * math.sqrt(128 * max(1.0, 0.5 * 2)))
    # epsilon is Opacus's answer for the recorded mechanism, within the budget
    acc = PRVAccountant()
    acc.history = [(record["noise_multiplier"], 1.0, 1)]
    assert record["epsilon"] == pytest.approx(acc.get_epsilon(delta=record["delta"]), rel=1e-6)
    assert 9.0 < record["epsilon"] <= 10.0 and record["delta"] == 1e-5
    # and it travels as no image-shaped tensor, with the record beside it
    content = stats_flower.stats_to_record(upload, partition_id=0, privacy=record)
    assert image_shaped(content, digits.spec.shape) == []
    back = stats_flower.record_to_stats(content)
    assert torch.equal(back.means, upload.means) and dict(content[stats_flower.PRIVACY]) == record


def test_the_pool_and_the_budget_travel_in_the_servers_query(digits):
    pool = _pool(digits, q=0.25)
    budget = private.ClientPrivacy(epsilon=2.0, delta=1e-6, clip=0.5)
    content = stats_flower.pool_to_record(pool, budget)
    assert stats_flower.record_to_pool(content).sample_rate == 0.25
    assert stats_flower.record_to_privacy(content) == budget
    assert stats_flower.record_to_privacy(stats_flower.pool_to_record(pool)) is None


def test_bad_privacy_and_sampling_requests_are_one_line_errors(digits):
    pool = _pool(digits, q=0.5)
    budget = private.ClientPrivacy(epsilon=1.0, delta=0.01)
    with pytest.raises(DistillError, match=r"got 0\.01: .* use e\.g\. --client-delta 0\.001"):
        private.private_statistics(
            digits, torch.arange(200), pool, budget, partition=3, generator=torch.Generator()
        )
    with pytest.raises(DistillError, match="--client-epsilon must be positive"):
        private.ClientPrivacy(epsilon=0.0)
    with pytest.raises(DistillError, match="--sample-rate"):
        _pool(digits, q=0.0)
    from datadistill_apps.federated.config import FedConfig

    with pytest.raises(DistillError, match="--sample-rate must be in"):
        FedConfig(sample_rate=1.5)
    with pytest.raises(DistillError, match="--client-epsilon must be >= 0"):
        FedConfig(client_epsilon=-1.0)


def test_the_default_sample_rate_aims_at_dms_real_batch():
    q = statistics.default_sample_rate(batch_real=256, num_classes=10, examples=60000)
    assert q * 6000 == pytest.approx(256)
    assert statistics.default_sample_rate(batch_real=128, num_classes=10, examples=1000) == 1.0


def test_a_clients_upload_is_kept_and_reused_by_every_cell_of_its_key(tmp_path):
    import dataclasses

    from datadistill_apps.federated import cache
    from datadistill_apps.federated.config import FedConfig

    cfg = FedConfig(mode="statistics", client_epsilon=1.0, cache=str(tmp_path))
    counts = torch.tensor([2.5, 0.0])
    upload = statistics.ClassStatistics(counts, 0.5 * counts.expand(3, -1), torch.randn(3, 2, 4))
    calls = []

    def compute():
        calls.append(1)
        return upload, {"epsilon": 0.99, "noise": "secure"}

    first, hit = cache.cached_statistics(cfg, 1, compute)
    other_ipc = dataclasses.replace(cfg, ipc=50, iterations=7)
    (stats, record), again = cache.cached_statistics(other_ipc, 1, compute)
    assert (hit, again, len(calls)) == (False, True, 1)
    assert torch.equal(stats.means, upload.means) and record == first[1]
    cache.cached_statistics(dataclasses.replace(cfg, client_epsilon=2.0), 1, compute)
    cache.cached_statistics(cfg, 2, compute)
    assert len(calls) == 3  # another budget or another client computes its own


def test_a_delta_some_client_would_refuse_stops_the_run_before_any_client_is_asked():
    import ray

    from datadistill_apps.federated.config import FedConfig
    from datadistill_apps.federated.simulate import simulate

    cfg = FedConfig(
        dataset="digits", clients=10, mode="statistics", client_epsilon=10.0, client_delta=0.01
    )  # digits' clients hold about 140 examples: delta must be below 1/140
    with pytest.raises(DistillError, match=r"got 0\.01: .* use e\.g\. --client-delta 0\.00"):
        simulate(cfg)
    assert not ray.is_initialized()
