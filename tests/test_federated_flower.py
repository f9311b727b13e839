"""apps/federated end to end on Flower's runtimes (slow: each client process imports torch).

Deployment: a loopback SuperLink and three SuperNodes, one of which fails; the run must
finish, name the missing client, and leave no Flower process behind. Simulation: FedAvg
through Flower's strategy on the simulation engine, with byte accounting.
"""

import pytest
from federated_checks import flower_processes, ray_left_behind, ray_pids

from datadistill_apps.federated.config import FedConfig


@pytest.mark.slow  # about 60-90 s on 2 CPU cores
def test_deployment_on_loopback_finishes_without_a_failed_client(tmp_path):
    from datadistill_apps.federated.deploy import deploy

    home = tmp_path / "flwr-home"
    cfg = FedConfig(clients=3, alpha=0.5, ipc=2, iterations=2, epochs=3, fail_clients="2")
    report = deploy(cfg, home=home, logs=tmp_path / "logs", timeout=240)
    assert report["received"] == [0, 1] and report["missing_clients"] == [2]
    assert report["nodes"] == 3 and len(report["failed_nodes"]) == 1
    assert report["bytes_up_per_client"]["0"] > 0 and report["bytes_up_per_client"]["1"] > 0
    assert 0.0 <= report["accuracy"] <= 1.0
    assert flower_processes(str(home)) == []  # FLWR_HOME is in every process's environment


@pytest.mark.xdist_group("ray")  # they count Ray processes machine-wide: one worker runs them
@pytest.mark.slow  # about 60 s: Ray start-up dominates
def test_simulated_fedavg_counts_model_bytes_each_round():
    import torch

    from datadistill import data
    from datadistill_apps.federated import server
    from datadistill_apps.federated.simulate import simulate

    cfg = FedConfig(clients=3, mode="fedavg", rounds=2, local_epochs=2, fail_clients="1")
    others = ray_pids()  # another run's Ray, if any
    report = simulate(cfg)
    assert report["missing_clients"] == [1] and report["rounds"] == 2
    assert set(report["per_round"]) == {"1", "2"}
    assert all(point["missing_clients"] == [1] for point in report["per_round"].values())
    net = server.build_net("convnet", data.load("digits"), seed=0, device="cpu")
    model = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    for pid in ("0", "2"):
        assert 2 * model <= report["bytes_up_per_client"][pid] < 2 * model + 10_000
        assert 2 * model <= report["bytes_down_per_client"][pid] < 2 * model + 10_000
    assert report["per_round"]["2"]["bytes_up"] == report["bytes_up"]
    assert torch.isfinite(torch.tensor(report["accuracy"]))
    assert ray_left_behind(others) == []


@pytest.mark.xdist_group("ray")  # they count Ray processes machine-wide: one worker runs them
@pytest.mark.slow  # three simulations: about 3 min
def test_interrupted_fedavg_goes_on_from_its_last_round(tmp_path):
    """2 rounds kept, then a 3-round run does only round 3 and ends where an uninterrupted
    3-round run ends (same client seeds per round; bytes carried over)."""
    from datadistill_apps.federated import cache
    from datadistill_apps.federated.simulate import simulate

    cfg = FedConfig(clients=2, mode="fedavg", rounds=2, cache=str(tmp_path))
    first = simulate(cfg)
    assert cache.load_fedavg(cfg)[0] == 2
    resumed = simulate(FedConfig(**{**cfg.__dict__, "rounds": 3}))
    whole = simulate(FedConfig(**{**cfg.__dict__, "rounds": 3, "cache": ""}))
    assert resumed["resumed_from_round"] == 2 and whole["resumed_from_round"] == 0
    assert set(resumed["per_round"]) == {"1", "2", "3"}
    for r in ("1", "2"):
        assert resumed["per_round"][r] == first["per_round"][r]
    one_round = resumed["bytes_up"]  # this process sent only round 3
    assert resumed["per_round"]["3"]["bytes_up"] == first["per_round"]["2"]["bytes_up"] + one_round
    assert resumed["per_round"]["3"]["bytes_up"] == whole["per_round"]["3"]["bytes_up"]
    assert resumed["accuracy"] == pytest.approx(whole["accuracy"], abs=1.5 / 360)
