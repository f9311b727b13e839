"""apps/federated without Flower's runtime: partitions, client distillation, records,
the server's union training, accounting and the failure path (a fake Grid)."""

import dataclasses
import sys
import tomllib
import types
from pathlib import Path

import pytest
import torch

from datadistill.errors import DistillError
from datadistill.results import ROW_KEYS
from datadistill.train import TrainConfig
from datadistill_apps.federated import flower_app, local, partition, records, rows, server
from datadistill_apps.federated.config import FedConfig

# -- partitions -------------------------------------------------------------------------


def _covers(parts, n):
    rows_ = torch.cat(parts)
    return len(rows_) == n and len(torch.unique(rows_)) == n


def test_iid_partitions_cover_every_row_once_balanced_and_seeded(digits):
    parts = partition.iid(digits.y_train, num_partitions=7, seed=3)
    n = len(digits.y_train)
    assert _covers(parts, n)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    again = partition.iid(digits.y_train, num_partitions=7, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_small_alpha_skews_labels_and_is_seeded(digits):
    y = digits.y_train

    def classes_per_client(alpha):
        parts = partition.dirichlet(y, num_partitions=10, alpha=alpha, seed=0)
        assert _covers(parts, len(y)) and min(map(len, parts)) >= 1
        return sum(int((torch.bincount(y[p], minlength=10) > 0).sum()) for p in parts) / 10

    assert classes_per_client(0.1) < classes_per_client(0.5) < classes_per_client(100.0)
    a = partition.partition(y, num_partitions=5, alpha=0.1, seed=1)
    b = partition.partition(y, num_partitions=5, alpha=0.1, seed=1)
    c = partition.partition(y, num_partitions=5, alpha=0.1, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


@pytest.mark.parametrize("kw", [{"alpha": 0.0}, {"alpha": -1.0}])
def test_dirichlet_rejects_bad_alpha(digits, kw):
    with pytest.raises(DistillError, match="alpha"):
        partition.dirichlet(digits.y_train, num_partitions=3, seed=0, **kw)


def test_too_many_clients_is_refused(digits):
    with pytest.raises(DistillError, match="--clients"):
        partition.iid(digits.y_train[:5], num_partitions=6, seed=0)


# -- client -----------------------------------------------------------------------------


def _skewed_rows(digits):
    """A client holding all of class 2, all of class 7 and 3 images of class 5."""
    y = digits.y_train
    few = torch.nonzero(y == 5).flatten()[:3]
    return torch.cat([torch.nonzero(y == 2).flatten(), torch.nonzero(y == 7).flatten(), few])


def test_client_distils_only_its_classes_and_sends_small_classes_as_is(digits):
    rows_ = _skewed_rows(digits)
    s = local.distil_partition(digits, rows_, method="dm", ipc=4, iterations=2, seed=0)
    counts = torch.bincount(s.labels, minlength=10)
    assert counts.tolist() == [0, 0, 4, 0, 0, 3, 0, 4, 0, 0]
    assert s.spec == digits.spec and torch.isfinite(s.images).all()
    assert s.extra["distilled_classes"] == [2, 7] and s.extra["real_classes"] == [5]
    assert s.extra["examples"] == len(rows_)
    real5 = digits.x_train[rows_[-3:]]
    assert torch.equal(s.images[s.labels == 5], real5)  # sent unchanged
    assert s.stored_bytes == s.images.numel() * 4 + s.labels.numel() * 8


def test_client_works_with_a_selection_method_too(digits):
    s = local.distil_partition(digits, _skewed_rows(digits), method="random", ipc=2, seed=1)
    assert torch.bincount(s.labels, minlength=10).tolist() == [0, 0, 2, 0, 0, 2, 0, 2, 0, 0]


def test_soft_labels_are_mapped_back_to_global_columns():
    soft = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    out = local._to_global(soft, torch.tensor([3, 6]), 10)
    assert out.shape == (2, 10) and torch.equal(out[:, [3, 6]], soft)
    assert out.sum() == soft.sum()


def test_fedavg_local_fit_lowers_the_loss(digits):
    rows_ = torch.arange(300)
    net = server.build_net("convnet", digits, seed=0, device="cpu")
    x, y = digits.x_train[rows_], digits.y_train[rows_]
    before = torch.nn.functional.cross_entropy(net(x), y).item()
    local.local_fit(net, digits, rows_, epochs=2, batch_size=64, seed=0)
    net.eval()
    assert torch.nn.functional.cross_entropy(net(x), y).item() < before


# -- records, server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_summaries(digits):
    parts = partition.dirichlet(digits.y_train, num_partitions=2, alpha=0.5, seed=0)
    return [
        local.distil_partition(digits, p, method="dm", ipc=3, iterations=2, seed=i)
        for i, p in enumerate(parts)
    ]


def test_summary_record_round_trip(digits, two_summaries):
    s = two_summaries[0]
    content = records.summary_to_record(s, partition_id=4)
    back = records.record_to_summary(content, spec=digits.spec)
    assert torch.equal(back.images, s.images) and torch.equal(back.labels, s.labels)
    assert back.stored_bytes == s.stored_bytes and back.extra["partition_id"] == 4
    assert back.extra["distilled_classes"] == s.extra["distilled_classes"]
    tensor_bytes = s.images.numel() * 4 + s.labels.numel() * 8
    assert tensor_bytes < records.payload_bytes(content) < tensor_bytes + 2000


def test_foreign_reply_is_refused(digits):
    from flwr.app import ConfigRecord, RecordDict

    with pytest.raises(DistillError, match="lacks"):
        records.record_to_summary(RecordDict({"x": ConfigRecord({"a": 1})}), spec=digits.spec)


def test_union_training_learns_from_the_summaries(digits, two_summaries):
    x, y = server.union(two_summaries, num_classes=10)
    assert len(x) == sum(s.n for s in two_summaries) == len(y)
    _, acc = server.train_on_union(
        two_summaries, digits, config=TrainConfig(epochs=30, dsa=False), seed=0
    )
    assert acc > 0.3  # chance is 0.1


def test_union_mixes_hard_and_soft_labels(digits, two_summaries):
    soft = dataclasses.replace(
        two_summaries[1], labels=torch.nn.functional.one_hot(two_summaries[1].labels, 10).float()
    )
    _, y = server.union([two_summaries[0], soft], num_classes=10)
    assert y.shape == (sum(s.n for s in two_summaries), 10)
    with pytest.raises(DistillError, match="no client summary"):
        server.union([], num_classes=10)


# -- config -----------------------------------------------------------------------------


def test_run_config_round_trip_and_flower_app_defaults():
    cfg = FedConfig(clients=3, alpha=0.1, mode="fedavg", dsa=False, fail_clients="1,2")
    assert FedConfig.from_run_config(cfg.to_run_config()) == cfg
    assert cfg.failing == {1, 2} and cfg.dirichlet_alpha == 0.1
    app = Path(flower_app.__file__).parent / "flwr_app" / "pyproject.toml"
    defaults = tomllib.loads(app.read_text())["tool"]["flwr"]["app"]["config"]
    assert defaults == FedConfig().to_run_config()


@pytest.mark.parametrize(
    "bad", [{"mode": "gossip"}, {"alpha": -0.5}, {"clients": 0}, {"ipc": 0}, {"rounds": 0}]
)
def test_bad_config_is_refused(bad):
    with pytest.raises(DistillError):
        FedConfig(**bad)
    with pytest.raises(DistillError, match="unknown federated setting"):
        FedConfig.from_run_config({"colour": "red"})


# -- the ServerApp's logic on a fake Grid: failure path and accounting ---------------------


class FakeGrid:
    """Answers `query.summary` by calling the client's plain function; node 11 fails."""

    def __init__(self, cfg, data, parts):
        self.cfg, self.data, self.parts = cfg, data, parts

    def get_node_ids(self):
        return [10, 11, 12]

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for m in messages:
            node = m.metadata.dst_node_id
            pid = node - 10
            meta = types.SimpleNamespace(src_node_id=node)
            if pid in self.cfg.failing:
                error = types.SimpleNamespace(reason="client crashed")
                replies.append(
                    types.SimpleNamespace(metadata=meta, has_error=lambda: True, error=error)
                )
                continue
            s = local.distil_partition(self.data, self.parts[pid], ipc=2, iterations=2, seed=pid)
            content = records.summary_to_record(s, partition_id=pid)
            replies.append(
                types.SimpleNamespace(metadata=meta, has_error=lambda: False, content=content)
            )
        return replies


def _fake_message(content, *, dst_node_id, message_type):
    meta = types.SimpleNamespace(dst_node_id=dst_node_id, message_type=message_type)
    return types.SimpleNamespace(content=content, metadata=meta)


def test_server_finishes_without_a_failed_client_and_names_it(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(flower_app, "Message", _fake_message)  # needs a Flower run otherwise
    cfg = FedConfig(clients=3, alpha=0.5, ipc=2, epochs=5, fail_clients="1", timeout=5.0)
    cfg = dataclasses.replace(cfg, report=str(tmp_path / "report.json"))
    _, parts = flower_app._data_and_parts("digits", 3, 0.5, 0)
    report = flower_app.run_server(FakeGrid(cfg, digits, parts), cfg)
    assert report["missing_clients"] == [1] and report["received"] == [0, 2]
    assert report["failed_nodes"] == [11] and report["rounds"] == 1
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["bytes_up_per_client"]["node-11"] == 0
    assert set(report["bytes_down_per_client"]) == {"0", "2", "node-11"}
    assert report["bytes_up"] > report["stored_bytes"] > 0
    assert (tmp_path / "report.json").exists()
    row = rows.rows_from_report(report)[0]
    assert set(ROW_KEYS) <= set(row) and row["variant"] == "summary,alpha=0.5,clients=3"


def test_a_one_shot_row_cites_the_union_its_model_trained_on(digits, tmp_path, monkeypatch):
    from datadistill import evidence
    from datadistill.results import append_rows, load_rows
    from datadistill.summary import Summary

    monkeypatch.setattr(flower_app, "Message", _fake_message)
    monkeypatch.chdir(tmp_path)  # rows cite paths relative to the working folder
    cfg = FedConfig(clients=3, alpha=0.5, ipc=2, epochs=2, timeout=5.0, keep=str(tmp_path / "k"))
    _, parts = flower_app._data_and_parts("digits", 3, 0.5, 0)
    report = flower_app.run_server(FakeGrid(cfg, digits, parts), cfg)
    append_rows("rows.json", rows.rows_from_report(report))
    (row,) = load_rows("rows.json")
    assert row["summary"].startswith("k/") and not Path(row["summary"]).is_absolute()
    assert row["summary_sha256"] == evidence.sha256(row["summary"])
    kept = Summary.load(row["summary"])
    assert kept.n == report["images"] and kept.stored_bytes == report["stored_bytes"]
    before = Path(row["summary"]).read_bytes()
    flower_app.run_server(FakeGrid(cfg, digits, parts), cfg)  # a rerun never replaces it
    assert Path(row["summary"]).read_bytes() == before and evidence.verify(row, ".") is None


def test_a_single_summary_is_kept_as_it_is(digits, two_summaries, tmp_path):
    from datadistill.summary import Summary

    cfg = FedConfig(mode="statistics", alpha=0.5, ipc=3, keep=str(tmp_path))
    kept = Summary.load(server.keep_training_set(two_summaries[:1], cfg, digits))
    assert torch.equal(kept.images, two_summaries[0].images)
    assert kept.config == two_summaries[0].config and kept.extra == two_summaries[0].extra
    nowhere = dataclasses.replace(cfg, keep="")
    assert server.keep_training_set(two_summaries, nowhere, digits) is None


def test_fedavg_rows_one_per_round():
    report = {
        "config": FedConfig(mode="fedavg", rounds=3, alpha=0.1).to_run_config(),
        "missing_clients": [],
        "wall_seconds": 1.0,
        "per_round": {
            str(r): {"accuracy": 0.1 * r, "bytes_up": 100 * r, "bytes_down": 100 * r}
            for r in (1, 2, 3)
        },
    }
    report["per_round"]["3"]["missing_clients"] = [4]  # round 3 lacked partition 4's update
    out = rows.rows_from_report(report)
    assert [r["rounds"] for r in out] == [1, 2, 3] and out[2]["bytes_total"] == 600
    assert [r["missing_clients"] for r in out] == [[], [], [4]]
    assert all(set(ROW_KEYS) <= set(r) for r in out)
    assert out[0]["variant"] == "fedavg,alpha=0.1,clients=10,rounds=1"


# -- CLI --------------------------------------------------------------------------------


def test_cli_simulate_writes_rows(monkeypatch, tmp_path, capsys):
    from datadistill import plugins
    from datadistill.cli import main as cli
    from datadistill.results import load_rows

    monkeypatch.setattr(
        plugins,
        "entry_points",
        lambda group: [
            types.SimpleNamespace(name="federated", value="datadistill_apps.federated.plugin")
        ],
    )
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))
    seen = {}

    def fake_simulate(cfg):
        seen["cfg"] = cfg
        return {
            "config": cfg.to_run_config(), "accuracy": 0.5, "images": 10, "stored_bytes": 99,
            "rounds": 1, "bytes_up": 120, "bytes_down": 20, "bytes_total": 140,
            "missing_clients": [3], "wall_seconds": 2.0,
        }  # fmt: skip

    fake = types.SimpleNamespace(simulate=fake_simulate)
    monkeypatch.setitem(sys.modules, "datadistill_apps.federated.simulate", fake)
    out = tmp_path / "r.json"
    argv = ["federated", "simulate", "--clients", "4", "--alpha", "0.1", "--device", "cpu"]
    argv += ["--out", str(tmp_path / "run")]
    assert cli.main([*argv, "--results", str(out), "--cache", str(tmp_path / "c")]) == 0
    assert "| one-shot dm | digits | alpha=0.1 | 4 |" in capsys.readouterr().out
    assert load_rows(tmp_path / "run" / "rows.json") == load_rows(out)
    assert seen["cfg"].clients == 4 and seen["cfg"].alpha == 0.1 and seen["cfg"].method == "dm"
    assert seen["cfg"].cache == str((tmp_path / "c").resolve())
    (row,) = load_rows(out)
    assert row["acc_mean"] == 0.5 and row["missing_clients"] == [3]


def test_experiment_script_resumes_per_alpha_and_side(monkeypatch, tmp_path):
    import importlib.util

    path = Path(__file__).parents[1] / "experiments" / "federated_fmnist.py"
    spec = importlib.util.spec_from_file_location("federated_fmnist", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from datadistill_apps.federated import table

    ran = []

    def fake_simulate(cfg):
        ran.append((cfg.mode, cfg.alpha))
        report = {
            "config": cfg.to_run_config(), "missing_clients": [], "wall_seconds": 1.0,
            "accuracy": 0.5, "images": 10, "stored_bytes": 99, "rounds": cfg.rounds,
            "bytes_up": 120, "bytes_down": 20, "bytes_total": 140,
        }  # fmt: skip
        if cfg.mode == "fedavg":
            report["per_round"] = {
                str(r): {"accuracy": 0.1 * r, "bytes_up": r, "bytes_down": r}
                for r in range(1, cfg.rounds + 1)
            }
        return report

    monkeypatch.setattr(script, "simulate", fake_simulate)
    out = tmp_path / "fed.json"
    argv = ["--dataset", "digits", "--rounds", "2", "--device", "cpu", "--results", str(out)]
    script.main([*argv, "--alphas", "0.1"])
    assert ran == [("summary", 0.1), ("fedavg", 0.1)]
    script.main([*argv, "--alphas", "0.1", "0.5"])  # 0.1 is done: only 0.5 runs
    assert ran[2:] == [("summary", 0.5), ("fedavg", 0.5)]
    script.main([*argv, "--alphas", "0.5", "--iterations", "7"])  # other budget: reruns
    assert ran[4:] == [("summary", 0.5)]
    note = out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").exists() and "alpha=0.5" in note
    assert "FedAvg never reaches 50.00% in 2 rounds" in note  # FedAvg's rows: 10%, 20%
    fed = [{"rounds": r, "acc_mean": a, "bytes_total": 100 * r} for r, a in [(1, 0.4), (5, 0.6)]]
    one = {"acc_mean": 0.5, "bytes_total": 10}
    assert "between rounds 2 and 5" in table.matching_round(fed, one)
    assert "at round 1 (40.00%, 100 B: 10x" in table.matching_round(fed, one | {"acc_mean": 0.4})
    lost = [r | {"alpha": 0.5, "method": "fedavg", "missing_clients": m}
            for r, m in zip(fed, ([], [2]), strict=True)]  # fmt: skip
    assert table.complete_rounds(lost, 0.5) == lost[:1]  # read only up to the first lossy round
