"""Factorised summaries (LinBa, HaBa, KFS): shapes, byte counts, gradients, round trips,
budget sizing, HaBa's contrastive term, and `--bytes` from the command line."""

import pytest
import torch

from datadistill import budget, methods
from datadistill.cli.main import main
from datadistill.errors import DistillError
from datadistill.objectives.contrast import HallucinatorContrast, supervised_contrastive
from datadistill.objectives.distribution import MeanEmbedding, fresh_network
from datadistill.params.factorised import shrink
from datadistill.params.haba import Hallucinated
from datadistill.params.kfs import LatentDecoders
from datadistill.params.linba import LinearBases
from datadistill.params.multiformation import MultiFormation
from datadistill.summary import Summary

K = 10  # digits' classes; digits images are 1 x 8 x 8


def _linba(digits, gen):
    return LinearBases(digits.spec, n_bases=3, per_class=2, downsample=2, generator=gen)


def _haba(digits, gen):
    return Hallucinated(digits, bases_per_class=2, n_halluc=3, downsample=1, generator=gen)


def _kfs(digits, gen):
    return LatentDecoders(
        digits, codes_per_class=2, n_decoders=3, width=4, downsample=2, generator=gen
    )


# (build, examples per class, stored bytes counted by hand)
CASES = {
    # bases 3 x (1 x 4 x 4) floats, coefficients 10 x 2 x 3 floats, 20 int64 labels
    "linba": (_linba, 2, 4 * (3 * 16 + 10 * 2 * 3) + 8 * 20),
    # bases 20 x 64 floats; per hallucinator: 2 convs (1 x 1 x 3 x 3 + 1 bias) and a
    # 6 x 6 scale and shift = 92 floats, three of them; 20 labels
    "haba": (_haba, 2 * 3, 4 * (20 * 64 + 3 * 92) + 8 * 20),
    # codes 20 x (1 x 4 x 4) floats; per decoder conv 1->4 (36 + 4) and 4->1 (36 + 1),
    # three of them; 20 labels
    "kfs": (_kfs, 2 * 3, 4 * (20 * 16 + 3 * 77) + 8 * 20),
}


@pytest.mark.parametrize("name", ["haba", "kfs", "idc"])
def test_a_real_initialisation_names_its_training_rows(name, digits):
    """HaBa's bases, KFS's codes and IDC's tiles start from real images: the summary's
    metadata names their training rows (what a membership audit targets), drawn exactly as
    `rows_per_class` draws them; a noise start names none."""
    build, per_class = {
        "haba": (lambda **kw: Hallucinated(digits, bases_per_class=2, n_halluc=3, **kw), 2),
        "kfs": (lambda **kw: LatentDecoders(digits, codes_per_class=2, downsample=2, **kw), 2),
        "idc": (lambda **kw: MultiFormation(digits, 2, factor=2, **kw), 8),
    }[name]
    param = build(generator=torch.Generator().manual_seed(5))
    rows = digits.rows_per_class(per_class, torch.Generator().manual_seed(5))
    assert param.summary_extra()["init_rows"] == rows.tolist()
    start = {"haba": "bases", "kfs": "codes"}.get(name)
    if start:  # the stored tensor is those very images, shrunk
        stored = getattr(param, start)
        assert torch.allclose(stored, shrink(digits.x_train[rows].float(), stored.shape[-1]))
    assert "init_rows" not in build(init="noise", generator=torch.Generator()).summary_extra()


@pytest.mark.parametrize("name", CASES)
def test_materialize_shape_count_and_class_order(name, digits, gen):
    build, per_class, _ = CASES[name]
    param = build(digits, gen)
    x, y = param.materialize()
    assert x.shape == (K * per_class, 1, 8, 8) and param.images_per_class == per_class
    assert torch.equal(y, torch.arange(K).repeat_interleave(per_class))
    x3, y3 = param.sample(torch.tensor([3]))
    assert torch.allclose(x3, x[3 * per_class : 4 * per_class]) and (y3 == 3).all()


@pytest.mark.parametrize("name", CASES)
def test_stored_bytes_match_a_hand_count(name, digits, gen):
    build, _, expected = CASES[name]
    assert build(digits, gen).stored_bytes() == expected


@pytest.mark.parametrize("name", CASES)
def test_gradients_reach_every_parameter(name, digits, gen):
    param = CASES[name][0](digits, gen)
    x, _ = param.sample()
    (x * torch.randn(x.shape, generator=gen)).sum().backward()
    for pname, p in param.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", CASES)
def test_param_tensors_round_trip_through_the_summary_file(name, digits, gen, tmp_path):
    param = CASES[name][0](digits, gen)
    with torch.no_grad():  # move away from the init so the check is not trivially true
        for p in param.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    x, y = param.materialize()
    summary = Summary(
        images=x,
        labels=y,
        spec=digits.spec,
        method=name,
        ipc=1,
        parameterisation=param.name,
        stored_bytes=param.stored_bytes(),
        params={k: v.detach() for k, v in param.tensors().items()},
    )
    loaded = Summary.load(summary.save(tmp_path / "s.safetensors"))
    assert loaded.params.keys() == dict(param.named_parameters()).keys()
    for k, v in param.named_parameters():
        assert torch.equal(loaded.params[k], v.detach())
    rebuilt = CASES[name][0](digits, torch.Generator().manual_seed(99))
    rebuilt.load_state_dict(loaded.params)  # the file alone rebuilds the parameterisation
    assert torch.allclose(rebuilt.materialize()[0], loaded.images, atol=1e-6)


def _sized(name, digits, nbytes, gen):
    if name == "linba":
        return LinearBases.for_budget(digits.spec, nbytes, n_bases=4, generator=gen)
    if name == "haba":
        return Hallucinated.for_budget(digits, nbytes, n_halluc=3, generator=gen)
    return LatentDecoders.for_budget(digits, nbytes, n_decoders=2, width=4, generator=gen)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("ipc", [1, 3])
def test_budget_sizing_fills_the_budget_without_exceeding_it(name, ipc, digits, gen):
    nbytes = budget.ipc_budget(digits.spec, ipc)
    param = _sized(name, digits, nbytes, gen)
    per_item = (param.stored_bytes() - _shared_bytes(param)) // (K * param.items_per_class)
    assert param.stored_bytes() <= nbytes < param.stored_bytes() + K * per_item
    assert param.images_per_class > ipc  # more examples than free images at that cost


def _shared_bytes(param) -> int:
    items = {"bases", "coefficients", "codes"}
    if isinstance(param, LinearBases):  # LinBa's bases are shared, its coefficients are items
        items = {"coefficients"}
    return sum(4 * p.numel() for n, p in param.named_parameters() if n not in items)


def test_haba_shrinks_its_resolution_only_when_a_budget_demands_it(digits, gen):
    roomy = Hallucinated.for_budget(digits, budget.ipc_budget(digits.spec, 3), generator=gen)
    tight = Hallucinated.for_budget(digits, budget.ipc_budget(digits.spec, 1), generator=gen)
    assert roomy.side == 8 and tight.side == 4


def test_a_budget_too_small_names_the_fix(digits, gen):
    with pytest.raises(DistillError, match="--bytes"):
        LatentDecoders.for_budget(digits, 500, n_decoders=4, width=8, generator=gen)


def test_bytes_resolve_to_ipc_for_free_images_and_a_setting_for_factorised(digits):
    per_ipc = budget.ipc_budget(digits.spec, 1)
    assert per_ipc == K * (64 * 4 + 8)
    assert budget.resolve(methods.get("dm"), digits.spec, ipc=10, nbytes=None) == (10, {})
    assert budget.resolve(methods.get("dm"), digits.spec, ipc=10, nbytes=3 * per_ipc + 5) == (
        3,
        {},
    )
    ipc, extra = budget.resolve(methods.get("kfs"), digits.spec, ipc=10, nbytes=2 * per_ipc)
    assert (ipc, extra) == (2, {"budget_bytes": str(2 * per_ipc)})
    with pytest.raises(DistillError, match="--bytes"):
        budget.resolve(methods.get("dm"), digits.spec, ipc=1, nbytes=per_ipc - 1)


def test_supervised_contrastive_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    za = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    zb = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    z, labels, t = torch.cat([za, zb]), torch.cat([y, y]), 0.5
    total = 0.0
    for i in range(12):  # Khosla et al. eq. 2, one anchor at a time
        others = [a for a in range(12) if a != i]
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        pos = [p for p in others if labels[p] == labels[i]]
        total += -sum(z[i] @ z[p] / t - denom for p in pos) / len(pos)
    assert torch.allclose(supervised_contrastive(za, zb, y, t), total / 12, atol=1e-5)


def test_contrastive_term_trains_the_extractor_but_not_through_the_summary_loss(digits, gen):
    param = _haba(digits, gen)
    inner = MeanEmbedding(arch="convnet", batch_real=8, dsa_strategy=None, net_config={"width": 8})
    extractor = fresh_network("convnet", digits, gen, "cpu", width=8, depth=2)
    objective = HallucinatorContrast(inner, extractor=extractor, lambda_club=1.0)
    weights = list(extractor.parameters())
    before = [p.detach().clone() for p in weights]
    loss = objective.loss(param, digits, gen, 0)
    assert any(not torch.equal(a, p) for a, p in zip(before, weights, strict=True))
    grads = [p.grad.clone() for p in weights]  # from its own step
    loss.backward()
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, weights, strict=True))
    assert all(p.grad.abs().sum() > 0 for p in param.parameters())


def test_a_combination_no_paper_ran_runs_from_the_cli(digits, tmp_path, capsys):
    nbytes = budget.ipc_budget(digits.spec, 2)
    argv = ["run", "--method", "haba-dm", "--bytes", str(nbytes), "--iterations", "2"]
    argv += ["--out", str(tmp_path), "--set", "batch_real=16", "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    loaded = Summary.load(tmp_path / "summary.safetensors")
    assert loaded.method == "haba-dm" and loaded.parameterisation == "haba"
    assert loaded.stored_bytes <= nbytes and loaded.n > 2 * K and loaded.params
    assert loaded.config["budget_bytes"] == nbytes
