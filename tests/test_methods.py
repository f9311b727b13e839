"""Every registered method, parametrised over the registry: a tiny run yields a valid summary."""

import pytest
import torch

from core import methods
from core.distill import RunOptions, run
from core.summary import Summary


@pytest.mark.parametrize("name", methods.available())
def test_every_method_produces_a_valid_summary(name, digits, tmp_path):
    m = methods.get(name)
    overrides = {"batch_real": "16"} if name == "dm" else {}
    if not m.learnt and "feature_epochs" in {f for f in vars(m.config_cls())}:
        overrides["feature_epochs"] = "1"
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
