"""Every registered method, parametrised over the registry: a tiny run yields a valid summary."""

import pytest
import torch

from core import methods
from core.distill import RunOptions, run
from core.summary import Summary


@pytest.fixture(scope="module")
def tiny_experts(digits, tmp_path_factory):
    """One 2-epoch expert of a small ConvNet, for the trajectory-matching presets."""
    from core.experts import ExpertConfig, train_experts

    folder = tmp_path_factory.mktemp("experts")
    config = ExpertConfig(num=1, epochs=2, net_config={"depth": 2, "width": 16})
    train_experts(digits, config=config, folder=folder, progress=False)
    return folder


@pytest.mark.parametrize(
    "name", [n for n in methods.available() if methods.get(n).modality == "image"]
)
def test_every_method_produces_a_valid_summary(name, digits, tmp_path, request):
    m = methods.get(name)
    overrides = {"dm": {"batch_real": "16"}, "rfad": {"n_models": "2", "width": "64"}}.get(name, {})
    if not m.learnt and "feature_epochs" in {f for f in vars(m.config_cls())}:
        overrides["feature_epochs"] = "1"
    if m.family == "trajectory matching":
        folder = request.getfixturevalue("tiny_experts")
        overrides.update(experts=str(folder), net_width="16", max_start_epoch="1")
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
    else:  # a factorised summary decodes more examples than the 2 a class it stores
        assert loaded.n > 20 and loaded.n % 10 == 0 and loaded.params
    assert torch.isfinite(loaded.images).all()
    assert loaded.stored_bytes == s.stored_bytes > 0
    assert loaded.metadata()["config"] == s.config
