"""Tests for the network registry and zoo in ``datadistill.nets``."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from datadistill.nets import available, build, register
from datadistill.spec import DataSpec

NAMES = available()


def make_spec(size: int, channels: int) -> DataSpec:
    return DataSpec(
        name=f"toy{channels}x{size}",
        channels=channels,
        size=size,
        num_classes=10,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
    )


def test_registry_has_the_zoo() -> None:
    expected = {"convnet", "convnet_bn", "convnet_nonorm", "mlp", "lenet", "alexnet"}
    expected |= {"alexnet_bn", "vgg11", "vgg11_bn", "resnet18", "resnet18_bn"}
    assert expected <= set(NAMES)
    assert NAMES == sorted(NAMES)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("name", NAMES)
def test_forward_and_embed_shapes(name: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    net = build(name, make_spec(size, channels))
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        out = net(x)
        emb = net.embed(x)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert emb.shape == (2, net.feature_dim)
    assert torch.isfinite(emb).all()


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'nope'") as err:
        build("nope", make_spec(8, 1))
    for name in NAMES:
        assert name in str(err.value)


def test_duplicate_registration_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("convnet")(lambda spec: None)


def test_bad_norm_rejected() -> None:
    with pytest.raises(ValueError, match="unknown norm 'foo'"):
        build("convnet", make_spec(8, 1), norm="foo")


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"])
@pytest.mark.parametrize("pooling", ["avgpool", "maxpool", "none"])
def test_convnet_config(norm: str, pooling: str) -> None:
    net = build("convnet", make_spec(8, 3), width=16, depth=2, norm=norm, pooling=pooling)
    side = 8 if pooling == "none" else 2
    assert net.feature_dim == 16 * side * side
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(("size", "dim"), [(28, 128 * 3 * 3), (32, 128 * 4 * 4), (8, 128)])
def test_convnet_feature_dim(size: int, dim: int) -> None:
    assert build("convnet", make_spec(size, 1)).feature_dim == dim


def test_convnet_deep_on_small_input_keeps_maps() -> None:
    net = build("convnet", make_spec(8, 1), width=8, depth=4)
    assert net.feature_dim == 8
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_construction_is_deterministic() -> None:
    spec = make_spec(8, 1)
    torch.manual_seed(1)
    a = build("convnet", spec, width=16)
    torch.manual_seed(1)
    b = build("convnet", spec, width=16)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", ["convnet", "mlp"])
def test_functional_call_matches_forward(name: str) -> None:
    torch.manual_seed(0)
    net = build(name, make_spec(28, 1))
    x = torch.randn(2, 1, 28, 28)
    state = {**dict(net.named_parameters()), **dict(net.named_buffers())}
    torch.testing.assert_close(functional_call(net, state, (x,)), net(x))


@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith("_bn")])
def test_vmap_over_parameters(name: str) -> None:
    torch.manual_seed(0)
    spec = make_spec(8, 1)
    nets = [build(name, spec) for _ in range(2)]
    params, buffers = stack_module_state(nets)
    x = torch.randn(2, 1, 8, 8)

    def run(p: dict, b: dict) -> torch.Tensor:
        return functional_call(nets[0], (p, b), (x,))

    out = vmap(run)(params, buffers)
    for i, net in enumerate(nets):
        torch.testing.assert_close(out[i], net(x), rtol=1e-4, atol=1e-4)


def test_convnet_gradient_reaches_input() -> None:
    torch.manual_seed(0)
    net = build("convnet", make_spec(28, 1))
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_small_inputs_still_reach_the_output(name: str) -> None:
    """At 8 px no net may collapse to a constant (e.g. instance norm over 1x1 maps)."""
    torch.manual_seed(0)
    net = build(name, make_spec(8, 1))
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    net(x).square().sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
