"""Every registered method, parametrised over the registry: a tiny run yields a valid summary."""

import warnings

import pytest
import torch

from datadistill import methods
from datadistill.distill import run
from datadistill.errors import DivergenceWarning
from datadistill.loop import RunOptions
from datadistill.summary import Summary


@pytest.fixture(scope="module")
def tiny_experts(digits, tmp_path_factory):
    """One 2-epoch expert of a small ConvNet, for the trajectory-matching presets."""
    from datadistill.experts import ExpertConfig, train_experts

    folder = tmp_path_factory.mktemp("experts")
    config = ExpertConfig(num=1, epochs=2, net_config={"depth": 2, "width": 16})
    train_experts(digits, config=config, folder=folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def tiny_generator(digits, tmp_path_factory):
    """A 1-epoch conditional generator for IT-GAN's latents."""
    from datadistill.generators import GeneratorConfig, train_generator

    path = tmp_path_factory.mktemp("generators") / "digits.safetensors"
    config = GeneratorConfig(latent_dim=8, width=8, epochs=1)
    train_generator(digits, config=config, path=path, progress=False)
    return path


IMAGE_METHODS = [n for n in methods.available() if methods.get(n).modality == "image"]


# other modalities (graphs, recommender data, text) are tested in their own files
@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_every_method_produces_a_valid_summary(name, digits, tmp_path, request):
    m = methods.get(name)
    overrides = {
        "dm": {"batch_real": "16"},
        "dp-dm": {"pool": "3", "net_width": "8"},
        "rfad": {"n_models": "2", "width": "64"},
        "cafe": {"batch_real": "16", "watch_batch": "8", "window": "2", "net_width": "16"},
    }.get(name, {})
    if not m.learnt and "feature_epochs" in {f for f in vars(m.config_cls())}:
        overrides["feature_epochs"] = "1"
    if m.family == "trajectory matching":
        folder = request.getfixturevalue("tiny_experts")
        overrides.update(experts=str(folder), net_width="16", max_start_epoch="1")
    if name == "itgan":
        overrides.update(generator=str(request.getfixturevalue("tiny_generator")), batch_real="16")
    s = run(
        name,
        digits,
        2,
        options=RunOptions(iterations=2, progress=False),
        overrides=overrides,
        out_dir=tmp_path,
    )
    loaded = Summary.load(tmp_path / "summary.safetensors")
    assert loaded.method == name
    if loaded.parameterisation == "images":
        assert loaded.n == 20
    elif loaded.parameterisation == "generator_latents":  # one decoded image per latent
        assert loaded.n == 20 and loaded.params
    else:  # a factorised summary decodes more examples than the 2 a class it stores
        assert loaded.n > 20 and loaded.n % 10 == 0 and loaded.params
    assert torch.isfinite(loaded.images).all()
    assert loaded.stored_bytes == s.stored_bytes > 0
    assert loaded.metadata()["config"] == s.config


@pytest.mark.parametrize(
    "lrs, bounded", [({}, True), ({"lr_img": "100", "lr_halluc": "100"}, False)]
)
def test_haba_digits_preset_keeps_its_pixels_bounded(lrs, bounded, digits, tiny_experts, tmp_path):
    """HaBa's CIFAR-10 rates (100 on bases and hallucinators) blow digits' pixels up within
    an iteration (the quick bench scored chance); the preset's rates must not."""
    overrides = {"experts": str(tiny_experts), "net_width": "16", "max_start_epoch": "1", **lrs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(
            "haba",
            digits,
            10,
            options=RunOptions(iterations=3, progress=False, seed=0),
            overrides=overrides,
            out_dir=tmp_path,
        )
    peak = Summary.load(tmp_path / "summary.safetensors").images.abs().max().item()
    assert (peak < 20) == bounded, f"max |pixel| {peak:.3g} after 3 iterations"
    # a runaway summary is saved, and the user is told why it will not train
    said = [w for w in caught if issubclass(w.category, DivergenceWarning)]
    assert bool(said) != bounded
    assert not said or "lr_halluc" in str(said[0].message)
