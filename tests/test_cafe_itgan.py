"""CAFE's layer-wise objective, IT-GAN's generator latents and the generator they decode with."""

import json
import math
import runpy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from resume import full_and_resumed

from datadistill import evidence, nets
from datadistill.cli import main as cli
from datadistill.data import Dataset
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.generators import GeneratorConfig, ensure_generator, store, train_generator
from datadistill.loop import RunOptions
from datadistill.objectives.distribution import MeanEmbedding, fresh_network
from datadistill.objectives.layerwise import (
    LayerwiseAlignment,
    discrimination_loss,
    feature_alignment,
)
from datadistill.params.generator_latents import GeneratorLatents
from datadistill.params.images import FreeImages
from datadistill.summary import Summary

REPO = Path(__file__).resolve().parents[1]
SMALL_NET = {"width": 16}
# settings that keep CAFE's watchers cheap on digits (the loop rules are tested on their own)
CAFE_FAST = {"batch_real": "16", "watch_batch": "8", "window": "2", "net_width": "16"}


def _tiny(digits, per_class=4) -> Dataset:
    """`per_class` images of every class: a real batch of that size is the whole class."""
    rows = torch.cat([digits.class_index(c)[:per_class] for c in range(10)])
    return Dataset(
        digits.spec, digits.x_train[rows], digits.y_train[rows], digits.x_test, digits.y_test
    )


def _cafe(**kwargs) -> LayerwiseAlignment:
    settings = dict(batch_real=8, dsa_strategy=None, watch_batch=4, window=2, max_inner_epochs=4)
    return LayerwiseAlignment(net_config=SMALL_NET, **{**settings, **kwargs})


# --- CAFE: the two terms -----------------------------------------------------------------------


def test_discrimination_term_on_a_hand_case():
    # two real examples, 1-D embeddings +1 and -1, synthetic centres +2 and -2: each real
    # example's logits are (2, -2) towards its own class, so each costs log(1 + e^-4)
    emb = torch.tensor([[1.0], [-1.0]])
    centres = torch.tensor([[2.0], [-2.0]])
    got = discrimination_loss(emb, torch.tensor([0, 1]), centres)
    assert float(got) == pytest.approx(2 * math.log1p(math.exp(-4)), rel=1e-5)
    # swapping the labels makes each example pay log(1 + e^4) instead
    swapped = discrimination_loss(emb, torch.tensor([1, 0]), centres)
    assert float(swapped) == pytest.approx(2 * math.log1p(math.exp(4)), rel=1e-6)


def test_feature_alignment_weights_each_layer():
    real = [torch.zeros(2, 3), torch.zeros(2, 1)]
    syn = [torch.ones(2, 3), 2 * torch.ones(2, 1)]
    # layer 1: 6 squared differences of 1; layer 2: 2 of 4
    assert float(feature_alignment(real, syn, (0.5, 0.25))) == pytest.approx(0.5 * 6 + 0.25 * 8)


def test_convnet_exposes_every_block_and_its_embedding(digits):
    net = nets.build("convnet", digits.spec, width=8, depth=3)
    x = digits.x_train[:5]
    feats = net.layer_features(x)
    assert len(feats) == 4  # three blocks, then the embedding
    assert [tuple(f.shape[1:]) for f in feats[:3]] == [(8, 8, 8), (8, 4, 4), (8, 2, 2)]
    assert torch.equal(feats[-1], net.embed(x))
    mlp = nets.build("mlp", digits.spec)
    assert torch.equal(mlp.layer_features(x)[0], mlp.embed(x))


def test_alignment_vanishes_when_synthetic_equals_real(digits):
    tiny = _tiny(digits)
    gen = torch.Generator().manual_seed(0)
    same = FreeImages(tiny, 4, init="real", generator=gen)
    other = FreeImages(digits, 4, init="real", generator=torch.Generator().manual_seed(1))
    obj = _cafe(batch_real=4, discrimination_weight=0.0)
    net = fresh_network("convnet", tiny, gen, "cpu", **SMALL_NET)
    loss_same = obj._match(net, same.sample()[0], 4, tiny, torch.Generator().manual_seed(2))
    loss_other = obj._match(net, other.sample()[0], 4, tiny, torch.Generator().manual_seed(2))
    assert float(loss_same.detach()) == pytest.approx(0.0, abs=1e-6 * float(loss_other.detach()))
    assert float(loss_other.detach()) > 0


def test_cafe_loss_is_finite_and_reaches_every_image(digits):
    param = FreeImages(digits, 2, init="real", generator=torch.Generator().manual_seed(0))
    obj = _cafe(dsa_strategy=digits.spec.dsa_strategy)
    gen = torch.Generator().manual_seed(0)
    for step in range(3):  # a fresh network, then two steps after inner training
        param.images.grad = None
        loss = obj.loss(param, digits, gen, step)
        assert torch.isfinite(loss)
        loss.backward()
        per_image = param.images.grad.flatten(1).abs().sum(1)
        assert (per_image > 0).all()
    assert all(p.grad is None for p in obj._net.parameters())  # the net is not the summary


def test_cafe_loss_decreases_as_the_images_learn(digits):
    param = FreeImages(digits, 2, init="noise", generator=torch.Generator().manual_seed(0))
    obj = _cafe()
    net = fresh_network("convnet", digits, torch.Generator().manual_seed(1), "cpu", **SMALL_NET)
    opt = torch.optim.SGD(param.parameters(), lr=0.1, momentum=0.5)  # CAFE's
    losses = []
    for _ in range(6):  # same network and real batch each time: plain descent on the images
        loss = obj._match(net, param.sample()[0], 2, digits, torch.Generator().manual_seed(3))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]


def test_wrong_number_of_layer_weights_is_a_clear_error(digits):
    param = FreeImages(digits, 1, init="real", generator=torch.Generator().manual_seed(0))
    obj = _cafe(layer_weights=(1.0, 1.0))
    with pytest.raises(DistillError, match="layer_weights"):
        obj.loss(param, digits, torch.Generator().manual_seed(0), 0)


# --- CAFE: the dynamic bi-level loop ------------------------------------------------------------


def test_outer_watcher_renews_the_network_once_accuracy_settles():
    obj = _cafe(window=3, outer_tolerance=0.04, max_steps_per_net=100)
    for acc in (0.1, 0.5, 0.9, 0.91):  # spread: keep matching with this network
        obj._watch_outer(acc)
        assert not obj._renew
    obj._watch_outer(0.92)  # window (0.9, 0.91, 0.92) spreads 0.02 < 0.04
    assert obj._renew
    capped = _cafe(window=3, max_steps_per_net=2)
    capped._watch_outer(0.1)
    capped._watch_outer(0.9)
    assert capped._renew  # the cap, even though accuracy still moves


def test_inner_loop_trains_until_accuracy_moves(digits, monkeypatch):
    param = FreeImages(digits, 1, init="real", generator=torch.Generator().manual_seed(0))
    x, y = param.materialize()
    obj = _cafe(window=3, inner_tolerance=0.03, max_inner_epochs=8)
    obj._net = fresh_network("convnet", digits, torch.Generator(), "cpu", **SMALL_NET)
    accs = iter([0.5, 0.5, 0.5, 0.5, 0.6, 0.6])
    monkeypatch.setattr(obj, "_real_accuracy", lambda *a: next(accs))
    # windows (.5 .5 .5) and (.5 .5 .5) are flat; (.5 .5 .6) spreads 0.1 > 0.03: 5 epochs
    assert obj._train_inner(x, y, digits, torch.Generator()) == 5
    monkeypatch.setattr(obj, "_real_accuracy", lambda *a: 0.5)
    assert obj._train_inner(x, y, digits, torch.Generator()) == 8  # flat: up to the cap


def test_cafe_resumes_identically(digits, tmp_path):
    full, resumed = full_and_resumed("cafe", digits, tmp_path, CAFE_FAST, iterations=4, crash_at=3)
    assert torch.equal(full.images, resumed.images)


# --- the generator ------------------------------------------------------------------------------

TINY_GEN = GeneratorConfig(latent_dim=8, width=8, epochs=2, batch_size=256)


@pytest.fixture(scope="module")
def tiny_generator(digits, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("generators") / "digits.safetensors"
    train_generator(digits, config=TINY_GEN, path=path, progress=False)
    return path


def test_generator_checkpoint_reloads_identically(digits, tiny_generator):
    model, meta = store.load(tiny_generator, digits.spec)
    assert meta["epochs_done"] == 2 and len(meta["losses"]) == 2
    assert meta["losses"][1] < meta["losses"][0]
    again, _ = store.load(tiny_generator, digits.spec)
    z, y = torch.randn(6, 8), torch.arange(6)
    with torch.no_grad():
        assert torch.equal(model.decoder(z, y), again.decoder(z, y))


def test_generator_training_resumes_to_the_same_weights(digits, tmp_path, tiny_generator):
    path = tmp_path / "g.safetensors"
    train_generator(digits, config=replace(TINY_GEN, epochs=1), path=path, progress=False)
    resumed = train_generator(digits, config=TINY_GEN, path=path, progress=False)
    straight, _ = store.load(tiny_generator)
    for (k, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_missing_generator_names_the_command(digits, tmp_path):
    with pytest.raises(DistillError, match="distill generator --dataset digits"):
        ensure_generator(digits, path=tmp_path / "none.safetensors", train=False)


def test_generator_file_for_other_images_is_refused(digits, tiny_generator):
    other = Dataset(
        digits.spec.__class__(**{**digits.spec.to_dict(), "name": "x", "size": 16}),
        torch.zeros(10, 1, 16, 16), torch.arange(10), torch.zeros(10, 1, 16, 16), torch.arange(10),
    )  # fmt: skip
    with pytest.raises(DistillError, match="trained on digits"):
        ensure_generator(other, path=tiny_generator)


def test_inversion_refinement_reconstructs_better(digits, tiny_generator):
    vae, _ = store.load(tiny_generator)
    x, y = digits.x_train[:20], digits.y_train[:20]
    with torch.no_grad():
        err0 = float(((vae.decoder(vae.invert(x, y), y) - x) ** 2).sum())
        err1 = float(((vae.decoder(vae.invert(x, y, steps=30), y) - x) ** 2).sum())
    assert err1 < err0
    assert all(p.grad is None for p in vae.parameters())


# --- IT-GAN's parameterisation ------------------------------------------------------------------


def _latents(digits, path, ipc=3, init="invert") -> GeneratorLatents:
    vae, _ = store.load(path)
    gen = torch.Generator().manual_seed(0)
    return GeneratorLatents(digits, ipc, vae=vae, init=init, invert_steps=5, generator=gen)


@pytest.mark.parametrize("init", ["invert", "prior"])
def test_latents_materialize_one_image_per_latent(digits, tiny_generator, init):
    param = _latents(digits, tiny_generator, init=init)
    x, y = param.materialize()
    assert x.shape == (30, *digits.spec.shape) and torch.isfinite(x).all()
    assert torch.equal(y, torch.arange(10).repeat_interleave(3))
    xs, ys = param.sample(torch.tensor([4]))
    assert torch.allclose(xs, x[12:15], atol=1e-6) and (ys == 4).all()


def test_latents_bytes_by_hand(digits, tiny_generator):
    param = _latents(digits, tiny_generator)
    assert param.stored_bytes() == 30 * 8 * 4 + 30 * 8  # float32 latents, int64 labels
    d = param.decoder
    by_hand = 4 * (
        d.fc.weight.numel() + d.fc.bias.numel()
        + sum(p.numel() for p in d.up.parameters()) + 2  # mean, std buffers
    )  # fmt: skip
    assert param.decoder_bytes() == by_hand
    assert param.summary_extra()["decoder_bytes"] == by_hand


def test_gradients_reach_every_latent_and_not_the_decoder(digits, tiny_generator):
    param = _latents(digits, tiny_generator)
    obj = MeanEmbedding(batch_real=8, dsa_strategy=digits.spec.dsa_strategy, net_config=SMALL_NET)
    obj.loss(param, digits, torch.Generator().manual_seed(0), 0).backward()
    assert (param.latents.grad.abs().sum(1) > 0).all()
    assert [g["params"] for g in param.param_groups()] == [[param.latents]]
    assert all(p.grad is None for p in param.decoder.parameters())


def test_itgan_summary_round_trips_its_latents(digits, tiny_generator, tmp_path):
    overrides = {"generator": str(tiny_generator), "batch_real": "8", "invert_steps": "5"}
    s = run(
        "itgan",
        digits,
        2,
        options=RunOptions(iterations=2, progress=False),
        overrides=overrides,
        out_dir=tmp_path,
    )
    loaded = Summary.load(tmp_path / "summary.safetensors")
    latents = loaded.params["latents"]
    assert latents.shape == (20, 8) and loaded.stored_bytes == 20 * 8 * 4 + 20 * 8
    assert loaded.extra["decoder_bytes"] == s.extra["decoder_bytes"] > loaded.stored_bytes
    vae, _ = store.load(tiny_generator)
    with torch.no_grad():  # the stored images are exactly the decoded stored latents
        assert torch.allclose(vae.decoder(latents, loaded.labels), loaded.images, atol=1e-6)


# --- presets end to end -------------------------------------------------------------------------


def _sets(settings: dict) -> list[str]:
    return [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]


@pytest.mark.parametrize("method", ["cafe", "itgan"])
def test_presets_run_through_the_cli(method, tiny_generator, tmp_path, capsys):
    settings = CAFE_FAST if method == "cafe" else {"generator": tiny_generator, "batch_real": 16}
    code = cli.main(
        ["run", "--method", method, "--dataset", "digits", "--ipc", "1", "--iterations", "2",
         "--out", str(tmp_path), "--quiet", "--device", "cpu", *_sets(settings)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert Summary.load(tmp_path / "summary.safetensors").method == method


def test_generator_command_trains_a_file(tmp_path, capsys):
    out = tmp_path / "g.safetensors"
    code = cli.main(["generator", "--dataset", "digits", "--epochs", "1", "--out", str(out),
                     "--quiet", "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert store.read_meta(out)["epochs_done"] == 1


@pytest.mark.parametrize("method", ["cafe", "itgan"])
def test_presets_run_through_cells(method, tiny_generator, tmp_path, monkeypatch):
    settings = CAFE_FAST if method == "cafe" else {"generator": tiny_generator, "batch_real": 16}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        "sys.argv",
        ["cells.py", "--name", "t", "--dataset", "digits", "--methods", method, "--ipc", "1",
         "--iterations", "2", "--runs", "1", "--epochs", "1", "--device", "cpu",
         "--set", *[f"{k}={v}" for k, v in settings.items()]],
    )  # fmt: skip
    runpy.run_path(str(REPO / "experiments" / "cells.py"), run_name="__main__")
    rows = json.loads((tmp_path / "experiments/results/t.json").read_text())
    assert [(r["method"], r["ipc"], r["iterations"]) for r in rows] == [(method, 1, 2)]
    assert rows[0]["images"] == 10 and rows[0]["stored_bytes"] > 0
    assert ("decoder_bytes" in rows[0]) == (method == "itgan")
    if method == "itgan":  # the decoder named by content, and what it learnt from
        assert rows[0]["decoder_sha256"] == evidence.sha256(tiny_generator)
        assert rows[0]["decoder_trained_on"] == "digits training split, 1,437 images"
        assert rows[0]["one_off"] == "generator" and rows[0]["one_off_seconds"] > 0
        assert rows[0]["one_off_bytes"] == tiny_generator.stat().st_size
