"""apps/federated/cache.py: an interrupted one-shot run resumes from finished clients."""

import dataclasses
import json

import torch

from datadistill_apps.federated import cache, local
from datadistill_apps.federated.config import FedConfig


def _distil_counting(digits, calls):
    rows = torch.arange(200)

    def distil():
        calls.append(1)
        return local.distil_partition(digits, rows, method="random", ipc=2, seed=len(calls))

    return distil


def test_second_call_loads_the_summary_instead_of_distilling(digits, tmp_path):
    cfg = FedConfig(cache=str(tmp_path), iterations=3)
    calls = []
    first, hit1 = cache.cached(cfg, 4, _distil_counting(digits, calls))
    again, hit2 = cache.cached(cfg, 4, _distil_counting(digits, calls))
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert again.extra["real_classes"] == first.extra["real_classes"]
    assert cache.path_of(cfg, 4).exists() and not cache.path_of(cfg, 5).exists()


def test_a_client_stopped_mid_distillation_resumes_to_the_same_summary(
    digits, tmp_path, monkeypatch
):
    rows = torch.arange(300)
    monkeypatch.setattr(local, "CHECKPOINT_EVERY", 1)
    run = local.distill.run

    def stopped_at_3(*args, **kwargs):
        def stop(it, record):
            if it == 3:
                raise KeyboardInterrupt

        return run(*args, **kwargs, callbacks=[stop])

    settings = dict(method="dm", ipc=2, iterations=6, seed=1, overrides={"batch_real": 8})
    whole = local.distil_partition(digits, rows, **settings, out_dir=tmp_path / "whole")
    folder = cache.run_folder(FedConfig(cache=str(tmp_path), iterations=6), 2)
    monkeypatch.setattr(local.distill, "run", stopped_at_3)
    try:
        local.distil_partition(digits, rows, **settings, out_dir=folder)
    except KeyboardInterrupt:
        pass
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 3
    monkeypatch.setattr(local.distill, "run", run)
    resumed = local.distil_partition(digits, rows, **settings, out_dir=folder)
    steps = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in steps] == [1, 2, 3, 4, 5, 6]
    assert torch.equal(whole.images, resumed.images)


def test_no_cache_directory_means_always_distil(digits, tmp_path):
    calls = []
    for _ in range(2):
        _, hit = cache.cached(FedConfig(), 0, _distil_counting(digits, calls))
        assert not hit
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_corrupt_cached_file_is_distilled_again(digits, tmp_path):
    cfg = FedConfig(cache=str(tmp_path))
    calls = []
    cache.cached(cfg, 0, _distil_counting(digits, calls))
    cache.path_of(cfg, 0).write_bytes(b"not a summary")
    s, hit = cache.cached(cfg, 0, _distil_counting(digits, calls))
    assert not hit and len(calls) == 2 and s.n > 0


def test_key_changes_with_what_shapes_a_summary_only():
    base = FedConfig(dataset="fashion-mnist", alpha=0.5, iterations=200)
    same = [dataclasses.replace(base, **kw) for kw in ({"epochs": 5}, {"timeout": 1.0})]
    other = [
        dataclasses.replace(base, **kw)
        for kw in ({"alpha": 0.1}, {"iterations": 100}, {"ipc": 5}, {"seed": 1}, {"method": "dc"})
    ]
    assert all(c.summary_key() == base.summary_key() for c in same)
    assert len({c.summary_key() for c in [base, *other]}) == len(other) + 1


def test_fedavg_checkpoint_round_trip_and_corrupt_file(tmp_path):
    cfg = FedConfig(cache=str(tmp_path), mode="fedavg", rounds=5)
    assert cache.load_fedavg(cfg) is None  # nothing kept yet
    state = {"w": torch.randn(3, 4), "b": torch.arange(3.0)}
    curve = {1: {"accuracy": 0.5, "bytes_up": 10, "bytes_down": 20, "missing_clients": []}}
    curve[2] = {**curve[1], "accuracy": 0.6, "bytes_up": 30}
    cache.save_fedavg(cfg, 2, state, curve)
    rnd, loaded, back = cache.load_fedavg(cfg)
    assert rnd == 2 and back == curve
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # the same run with more rounds finds it; other partitions or a no-cache run do not
    assert cache.load_fedavg(dataclasses.replace(cfg, rounds=20)) is not None
    assert cache.load_fedavg(dataclasses.replace(cfg, alpha=0.5)) is None
    assert cache.load_fedavg(dataclasses.replace(cfg, cache="")) is None
    cache.fedavg_path(cfg).write_bytes(b"\x00" * 12)
    assert cache.load_fedavg(cfg) is None  # unusable: start again, never trust it


def test_fedavg_key_ignores_the_number_of_rounds_and_the_summary_settings():
    base = FedConfig(dataset="fashion-mnist", alpha=0.5, mode="fedavg", rounds=20)
    same = [dataclasses.replace(base, **kw) for kw in ({"rounds": 8}, {"ipc": 5}, {"epochs": 5})]
    other = [
        dataclasses.replace(base, **kw) for kw in ({"alpha": 0.1}, {"seed": 1}, {"clients": 3})
    ]
    assert all(c.fedavg_key() == base.fedavg_key() for c in same)
    assert len({c.fedavg_key() for c in [base, *other]}) == len(other) + 1
