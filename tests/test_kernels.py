"""Kernels: closed-form FC NNGP/NTK against wide random networks, KRR against a direct solve."""

import math

import pytest
import torch

from datadistill.kernels import (
    FCNNGP,
    FCNTK,
    ConvRandomFeatures,
    FeatureKernel,
    krr,
    krr_solve,
    relu_fc_diag,
    relu_fc_kernels,
)

W_VAR, B_VAR = 2.0, 0.01  # KIP's s_w^2 and s_b^2


def _inputs(d=6, seed=0):
    """Five inputs: a pair 1% apart, an opposite, and two others (every kind of angle)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, d, generator=g, dtype=torch.float64)
    x[1] = x[0] + 0.01 * torch.randn(d, generator=g, dtype=torch.float64)
    x[2] = -x[0]
    return x


def _wide_network_kernels(x, *, depth, width, nets, seed=1):
    """Monte-Carlo NNGP and NTK of random ReLU networks in the NTK parameterisation.

    NNGP: w_var <relu(h_L), relu(h_L')> / n + b_var, the readout's covariance given the
    last hidden layer. NTK: sum over layers of grad_W . grad_W' + grad_b . grad_b'; the
    gradient of f with respect to W_l is the outer product of the backpropagated signal
    delta_l and the layer's input, so each layer contributes
    (delta_l . delta_l') (w_var a_l . a_l' / n_l + b_var) without materialising gradients.
    """
    g = torch.Generator().manual_seed(seed)
    nngp = torch.zeros(len(x), len(x), dtype=torch.float64)
    ntk = torch.zeros_like(nngp)
    for _ in range(nets):
        acts, pre, weights = [x], [], []
        for layer in range(depth + 1):
            n_in, n_out = acts[-1].shape[1], 1 if layer == depth else width
            w = torch.randn(n_out, n_in, generator=g).double() * math.sqrt(W_VAR / n_in)
            b = torch.randn(n_out, generator=g).double() * math.sqrt(B_VAR)
            weights.append(w)
            pre.append(acts[-1] @ w.T + b)
            if layer < depth:
                acts.append(torch.relu(pre[-1]))
        a = acts[-1]
        nngp += W_VAR * a @ a.T / a.shape[1] + B_VAR
        delta = torch.ones(len(x), 1, dtype=torch.float64)  # d f / d h at the readout
        for layer in range(depth, -1, -1):
            a = acts[layer]
            ntk += (delta @ delta.T) * (W_VAR * a @ a.T / a.shape[1] + B_VAR)
            if layer:
                delta = (delta @ weights[layer]) * (pre[layer - 1] > 0).double()
    return nngp / nets, ntk / nets


def _rel(approx, exact):
    return float((approx - exact).norm() / exact.norm())


@pytest.mark.parametrize(("depth", "nets"), [(1, 64), (2, 6)])
def test_fc_kernels_match_wide_random_networks(depth, nets):
    x = _inputs()
    nngp, ntk = relu_fc_kernels(x, depth=depth, w_var=W_VAR, b_var=B_VAR)
    mc_nngp, mc_ntk = _wide_network_kernels(x, depth=depth, width=4096, nets=nets)
    assert _rel(mc_nngp, nngp) < 0.05
    assert _rel(mc_ntk, ntk) < 0.05


@pytest.mark.slow
def test_fc_kernels_match_wider_deeper_networks():
    x = _inputs(d=10, seed=3)
    nngp, ntk = relu_fc_kernels(x, depth=3, w_var=W_VAR, b_var=B_VAR)
    mc_nngp, mc_ntk = _wide_network_kernels(x, depth=3, width=4096, nets=16)
    assert _rel(mc_nngp, nngp) < 0.03
    assert _rel(mc_ntk, ntk) < 0.03


def test_depth_zero_is_the_linear_kernel_and_known_values():
    x = _inputs()
    nngp, ntk = relu_fc_kernels(x, depth=0, w_var=W_VAR, b_var=B_VAR)
    linear = W_VAR * x @ x.T / x.shape[1] + B_VAR
    assert torch.allclose(nngp, linear) and torch.allclose(ntk, linear)
    # one hidden layer, orthogonal unit-variance inputs: rho = b_var / (w_var + b_var)
    e = torch.eye(2, dtype=torch.float64) * math.sqrt(2)
    k0 = W_VAR + B_VAR
    theta = math.acos(B_VAR / k0)
    e_relu = k0 * (math.sin(theta) + (math.pi - theta) * math.cos(theta)) / (2 * math.pi)
    k1 = W_VAR * e_relu + B_VAR
    t1 = k1 + W_VAR * (math.pi - theta) / (2 * math.pi) * B_VAR
    nngp, ntk = relu_fc_kernels(e, depth=1, w_var=W_VAR, b_var=B_VAR)
    assert float(nngp[0, 1]) == pytest.approx(k1, rel=1e-12)
    assert float(ntk[0, 1]) == pytest.approx(t1, rel=1e-12)


@pytest.mark.parametrize("kind", [FCNNGP, FCNTK])
def test_fc_kernel_interface(kind):
    x = _inputs().float().view(5, 1, 2, 3)  # images are flattened
    k = kind(depth=2)
    full = k(x)
    assert full.shape == (5, 5) and full.dtype == torch.float64
    assert torch.allclose(full, full.T)
    assert torch.linalg.eigvalsh(full).min() > -1e-9  # positive semi-definite
    assert torch.allclose(k.diag(x), full.diagonal(), rtol=1e-5)  # clamp costs ~1e-6 at rho=1
    assert torch.allclose(k(x[:2], x), full[:2])
    k_ss, k_ts = k.gram(x[:3], x[3:])
    assert torch.allclose(k_ss, full[:3, :3]) and torch.allclose(k_ts, full[3:, :3])


def test_fc_ntk_gradient_is_finite_on_identical_inputs():
    # every diagonal entry has rho = 1, where arccos has an infinite slope
    x = _inputs().requires_grad_()
    k = FCNTK(depth=2)
    y = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pred = krr(k(x), y, k(x, x), reg=1e-6)
    (g,) = torch.autograd.grad(pred.square().sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_diag_helper_matches_full_matrix():
    x = _inputs()
    nngp, ntk = relu_fc_kernels(x, depth=3)
    d_nngp, d_ntk = relu_fc_diag(x, depth=3)
    assert torch.allclose(d_nngp, nngp.diagonal()) and torch.allclose(d_ntk, ntk.diagonal())


# --- kernel ridge regression -----------------------------------------------------------------


def _psd(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 2 * n, generator=g, dtype=torch.float64)
    return a @ a.T / (2 * n)


def test_krr_equals_a_direct_solve():
    g = torch.Generator().manual_seed(1)
    k_ss = _psd(6)
    y = torch.randn(6, 3, generator=g, dtype=torch.float64)
    k_ts = torch.randn(4, 6, generator=g, dtype=torch.float64)
    reg = 1e-2
    ridge = reg * torch.trace(k_ss) / 6
    direct = k_ts @ torch.linalg.solve(k_ss + ridge * torch.eye(6, dtype=torch.float64), y)
    assert torch.allclose(krr(k_ss, y, k_ts, reg=reg), direct, rtol=1e-10, atol=1e-12)
    # at zero ridge on the training points themselves, KRR interpolates
    assert torch.allclose(krr(k_ss, y, k_ss, reg=0.0), y, atol=1e-8)


def test_krr_falls_back_when_cholesky_fails_and_is_differentiable():
    indefinite = torch.diag(torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64))
    y = torch.ones(3, 1, dtype=torch.float64)
    assert torch.allclose(krr_solve(indefinite, y, reg=0.0), torch.linalg.solve(indefinite, y))
    k_ss = _psd(4).requires_grad_()
    y = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    k_ts = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    # Cholesky reads one triangle, so perturb k_ss symmetrically as every kernel matrix is
    sym = lambda a, b, c: krr((a + a.T) / 2, b, c, reg=1e-3)  # noqa: E731
    assert torch.autograd.gradcheck(sym, (k_ss, y, k_ts))


# --- feature kernels ---------------------------------------------------------------------------


def test_conv_random_features_is_a_seeded_nngp_estimate(digits):
    x = digits.x_train[:6]
    make = lambda seed, m=2: ConvRandomFeatures(  # noqa: E731
        1, 8, n_models=m, width=32, generator=torch.Generator().manual_seed(seed)
    )
    k = make(0)
    assert isinstance(k, FeatureKernel)
    assert torch.equal(k(x), make(0)(x))  # the same draw for the same seed
    full = k(x)
    assert full.shape == (6, 6) and torch.linalg.eigvalsh(full).min() > -1e-9
    assert torch.allclose(k.diag(x), full.diagonal())
    k_ss, k_ts = k.gram(x[:4], x[4:])
    assert torch.allclose(k_ts, full[4:, :4]) and torch.allclose(k_ss, full[:4, :4])
    # two independent draws of many networks agree: the estimate concentrates
    a, b = make(1, 32)(x), make(2, 32)(x)
    assert _rel(a, b) < 0.1
