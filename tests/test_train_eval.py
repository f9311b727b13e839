"""The training loop and the evaluation protocol."""

import warnings

import pytest
import torch

from datadistill import coreset, nets, profile
from datadistill.errors import DistillError
from datadistill.evaluate import EvalConfig, evaluate, host_fields
from datadistill.results import ROW_KEYS
from datadistill.summary import Summary
from datadistill.train import TrainConfig, loss_fn, train
from datadistill.train import test as accuracy


def _random_summary(digits, gen, ipc=10):
    rows = coreset.random_select(digits, ipc, gen)
    return Summary(
        images=digits.x_train[rows],
        labels=digits.y_train[rows],
        spec=digits.spec,
        method="random",
        ipc=ipc,
    )


def test_training_on_a_small_subset_beats_chance(digits, gen):
    s = _random_summary(digits, gen)
    torch.manual_seed(0)
    net = nets.build("convnet", digits.spec, width=32)
    before = accuracy(net, digits.x_test, digits.y_test)
    train(
        net, s.images, s.labels, config=TrainConfig(epochs=150), dsa_strategy="crop", generator=gen
    )
    after = accuracy(net, digits.x_test, digits.y_test)
    assert after > 0.6 and after > before + 0.3


def test_soft_and_mse_labels():
    logits = torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    onehot = torch.nn.functional.one_hot(y, 3).float()
    assert torch.allclose(loss_fn(logits, onehot), loss_fn(logits, y))
    assert torch.allclose(loss_fn(logits, y, "mse"), 0.5 * ((logits - onehot) ** 2).sum(1).mean())
    assert torch.allclose(loss_fn(logits, y, "mse_mean"), ((logits - onehot) ** 2).mean())


@pytest.mark.parametrize(
    "epochs, lrs", [(4, [0.01, 0.01, 0.001, 0.001]), (1, [0.01]), (2, [0.01, 0.001])]
)
def test_learning_rate_drops_tenfold_at_half_of_epochs(digits, gen, monkeypatch, epochs, lrs):
    seen, opt_lrs = [], []
    net = nets.build("mlp", digits.spec)
    orig = torch.optim.SGD.step

    def spy(self, *a, **k):
        opt_lrs.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    train(
        net,
        digits.x_train[:10],
        digits.y_train[:10],
        config=TrainConfig(epochs=epochs),
        dsa_strategy="crop",
        generator=gen,
        on_epoch=lambda epoch, loss: seen.append(loss),
    )
    assert len(seen) == epochs
    assert opt_lrs == pytest.approx(lrs)  # one epoch (a FedAvg round) keeps the full rate


@pytest.mark.parametrize(
    "n, max_steps, epochs", [(10, None, 6), (10, 4, 4), (600, 6, 2), (600, 3, 1)]
)
def test_max_steps_caps_sgd_steps_not_small_sets(digits, gen, monkeypatch, n, max_steps, epochs):
    steps = []
    orig = torch.optim.SGD.step

    def spy(self, *a, **k):
        steps.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    config = TrainConfig(epochs=6, max_steps=max_steps)
    assert config.epochs_for(n) == epochs
    net = nets.build("mlp", digits.spec)
    x, y = digits.x_train[:n], digits.y_train[:n]
    train(net, x, y, config=config, dsa_strategy="crop", generator=gen)
    assert len(steps) == epochs * -(-n // 256)  # 600 examples: 3 batches per epoch
    assert len(steps) <= (max_steps or len(steps))


def test_protocol_rows_per_architecture(digits, gen):
    s = _random_summary(digits, gen, ipc=2)
    cfg = EvalConfig(archs=("convnet", "mlp"), runs=2, train=TrainConfig(epochs=3))
    rows = evaluate(s, digits, config=cfg, device="cpu", progress=False)
    assert [r["arch"] for r in rows] == ["convnet", "mlp"]
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
        assert r["runs"] == 2 and len(r["accs"]) == 2
        assert r["images"] == 20 and r["stored_bytes"] == 20 * 64 * 4 + 20 * 8
        assert 0 <= r["acc_mean"] <= 1
        # a CPU row says which CPU and how many threads: its seconds mean little without them
        assert r["cpu"] == profile.cpu_name() and r["threads"] == torch.get_num_threads()
    assert host_fields("cuda") == {}


def test_protocol_is_deterministic(digits, gen):
    s = _random_summary(digits, gen, ipc=2)
    cfg = EvalConfig(runs=1, train=TrainConfig(epochs=3))
    a = evaluate(s, digits, config=cfg, device="cpu", progress=False)[0]["accs"]
    b = evaluate(s, digits, config=cfg, device="cpu", progress=False)[0]["accs"]
    assert a == b


def test_a_summary_whose_values_ran_away_is_flagged_before_training(digits, gen):
    from dataclasses import replace

    from datadistill.errors import DivergenceWarning

    s = _random_summary(digits, gen, ipc=1)
    cfg = EvalConfig(runs=1, train=TrainConfig(epochs=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)  # a sound summary: silent
        evaluate(s, digits, config=cfg, device="cpu", progress=False)
    blown = replace(s, images=s.images * 1e4)  # KFS's decoders under DM reached 2.3e6
    with pytest.warns(DivergenceWarning, match=r"\|x\| = .*without normalisation"):
        evaluate(blown, digits, config=cfg, device="cpu", progress=False)


def test_models_that_diverge_are_counted_and_said(digits, gen):
    from datadistill.errors import DivergenceWarning

    s = _random_summary(digits, gen, ipc=1)
    cfg = EvalConfig(runs=2, train=TrainConfig(epochs=2))
    assert evaluate(s, digits, config=cfg, device="cpu", progress=False)[0]["diverged_runs"] == 0
    wild = EvalConfig(runs=2, train=TrainConfig(epochs=2, lr=1e30))  # RFAD's targets on VGG-11
    with pytest.warns(DivergenceWarning, match="2 of 2 convnet models .* diverged"):
        (row,) = evaluate(s, digits, config=wild, device="cpu", progress=False)
    assert row["diverged_runs"] == 2


def test_summary_for_another_dataset_is_refused(digits, gen):
    from datadistill.spec import DataSpec

    spec = DataSpec("other", 1, 28, 10, (0.5,), (0.5,))
    s = Summary(
        images=torch.zeros(10, 1, 28, 28),
        labels=torch.arange(10),
        spec=spec,
        method="random",
        ipc=1,
    )
    with pytest.raises(DistillError, match="--dataset other"):
        evaluate(s, digits, config=EvalConfig(runs=1), device="cpu", progress=False)


def test_summary_syn_lr_overrides_protocol_lr(digits, gen):
    from datadistill.evaluate import train_config_for

    s = _random_summary(digits, gen, ipc=1)
    s.extra["syn_lr"] = 0.05
    assert train_config_for(s, TrainConfig()).lr == 0.05


def test_mixed_precision_trains_float32_weights_as_far_as_fp32(digits, gen):
    """bf16 autocast (the experts' default where bfloat16 is fast) changes rounding, not
    the outcome: float32 weights, accuracy within a few points of the fp32 run."""
    s = _random_summary(digits, gen)
    accs, weights = {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        net = nets.build("convnet", digits.spec, width=32)
        config = TrainConfig(epochs=300, precision=precision)
        train(
            net,
            s.images,
            s.labels,
            config=config,
            dsa_strategy="crop",
            generator=torch.Generator().manual_seed(1),
        )
        assert all(p.dtype == torch.float32 for p in net.parameters())
        accs[precision] = accuracy(net, digits.x_test, digits.y_test)
        weights[precision] = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert accs["bf16"] > 0.6 and abs(accs["bf16"] - accs["fp32"]) < 0.05
    drift = (weights["bf16"] - weights["fp32"]).norm() / weights["fp32"].norm()
    assert 0 < drift < 0.2


def test_unknown_training_precision_is_refused(digits, gen):
    net = nets.build("mlp", digits.spec)
    with pytest.raises(DistillError, match="training precision 'fp16'"):
        train(
            net,
            digits.x_train[:8],
            digits.y_train[:8],
            config=TrainConfig(epochs=1, precision="fp16"),
            dsa_strategy="crop",
            generator=gen,
        )


def _training(digits, epochs, resume_file=None, stop_after=None):
    torch.manual_seed(0)
    net = nets.build("convnet", digits.spec, width=8)

    def stop(epoch, _loss):
        if epoch + 1 == stop_after:
            raise KeyboardInterrupt

    x, y = digits.x_train[:300], digits.y_train[:300]  # two batches an epoch
    train(net, x, y, config=TrainConfig(epochs=epochs), dsa_strategy="crop",
          generator=torch.Generator().manual_seed(1), on_epoch=stop,
          resume_file=resume_file)  # fmt: skip
    return net


def test_a_training_stopped_mid_way_goes_on_bit_for_bit(digits, tmp_path):
    """Stopped after 2 of 4 epochs (at the lr drop) and after 3 (past it), then resumed: the
    weights equal an uninterrupted training's exactly."""
    whole = _training(digits, 4)
    for stop_after in (2, 3):
        state = tmp_path / f"stopped-{stop_after}.safetensors"
        with pytest.raises(KeyboardInterrupt):
            _training(digits, 4, state, stop_after=stop_after)
        resumed = _training(digits, 4, state)
        for (name, a), b in zip(
            whole.state_dict().items(), resumed.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    with pytest.raises(DistillError, match=r"not 8 over 300; delete it"):
        _training(digits, 8, state)
