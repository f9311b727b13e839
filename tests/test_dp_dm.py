"""dp-dm: one private release of DM's pooled class statistics, then free optimisation."""

import copy
import math
import warnings

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from datadistill.data import Dataset
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.loop import RunOptions
from datadistill_apps.privacy import release
from datadistill_apps.privacy.dp_dm_method import DPDMConfig

# three narrow embedders keep the release and every run here to seconds on a CPU
SMALL = {"pool": "3", "net_width": "8", "delta": "1e-4"}


def _run(digits, overrides, *, iterations=3, out=None, resume=False):
    opts = RunOptions(iterations=iterations, progress=False, checkpoint_every=1, resume=resume)
    return run("dp-dm", digits, 1, options=opts, overrides={**SMALL, **overrides}, out_dir=out)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Balle & Wang (ICML 2018), Theorem 8: the Gaussian mechanism with sensitivity 1 and
    noise std sigma is (eps, delta)-DP iff Phi(1/(2 sigma) - eps sigma) - e^eps
    Phi(-1/(2 sigma) - eps sigma) <= delta; the smallest such eps, by bisection."""

    def delta_of(eps):
        return _phi(1 / (2 * sigma) - eps * sigma) - math.exp(eps) * _phi(
            -1 / (2 * sigma) - eps * sigma
        )

    lo, hi = 0.0, 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


# --- accounting -----------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.0, 4.0, 8.0])
def test_opacus_one_release_is_the_analytic_gaussian_mechanism(sigma):
    exact = analytic_gaussian_epsilon(sigma, 1e-5)
    prv, rdp = PRVAccountant(), RDPAccountant()
    prv.history = rdp.history = [(sigma, 1.0, 1)]
    with warnings.catch_warnings():  # Opacus's log(1 - q) at q = 1
        warnings.simplefilter("ignore")
        eps_prv, eps_rdp = prv.get_epsilon(delta=1e-5), rdp.get_epsilon(delta=1e-5)
    # PRV is a numerical upper bound within its eps_error (0.01); RDP's conversion is looser
    assert exact - 1e-3 <= eps_prv <= exact + 0.02
    assert eps_rdp >= exact - 1e-9


def test_epsilon_in_the_metadata_is_opacus_answer(digits):
    p = _run(digits, {"epsilon": "2"}).extra["privacy"]
    assert (p["accountant"], p["releases"], p["sample_rate"], p["pool"]) == ("prv", 1, 1.0, 3)
    assert p["history"] == [[p["noise_multiplier"], 1.0, 1]]
    acc = PRVAccountant()
    acc.history = [tuple(h) for h in p["history"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert p["epsilon"] == acc.get_epsilon(delta=p["delta"]) <= 2
        assert p["noise_multiplier"] == get_noise_multiplier(
            target_epsilon=2, target_delta=1e-4, sample_rate=1.0, steps=1, accountant="prv"
        )
    width = 8 * 2 * 2  # ConvNet-2 of width 8 on 8 px images: 8 channels of 2 x 2
    assert p["embedding_dim"] == width
    assert p["clip"] == pytest.approx(DPDMConfig().clip * math.sqrt(3 * width))


# --- the mechanism --------------------------------------------------------------------------


def _embedders(digits, size=3):
    return release.draw_embedders(
        arch="convnet", net_config={"depth": 2, "width": 8},
        dsa_strategy=digits.spec.dsa_strategy, size=size, classes=10,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip


def _without(data: Dataset, row: int) -> Dataset:
    keep = torch.ones(len(data.y_train), dtype=torch.bool)
    keep[row] = False
    return Dataset(data.spec, data.x_train[keep], data.y_train[keep], data.x_test, data.y_test)


def _vector(s: release.ClassSums, clip_norm: float, share: float) -> torch.Tensor:
    """Everything the mechanism adds noise to: the class sums and the count coordinate."""
    return torch.cat([s.sums.flatten(), s.counts * clip_norm * math.sqrt(share)])


@pytest.mark.parametrize("clip_norm", [0.5, 1e4])
def test_one_example_moves_the_released_vector_by_at_most_the_clip(digits, clip_norm):
    small = Dataset(digits.spec, digits.x_train[:300], digits.y_train[:300], digits.x_test,
                    digits.y_test)  # fmt: skip
    emb, share = _embedders(digits), 0.1
    full = release.clipped_sums(small, emb, clip_norm=clip_norm, count_share=share)
    for row in (0, 7, 123):
        less = release.clipped_sums(_without(small, row), emb, clip_norm=clip_norm,
                                    count_share=share)  # fmt: skip
        moved = (_vector(full, clip_norm, share) - _vector(less, clip_norm, share)).norm()
        assert moved <= clip_norm * (1 + 1e-5)
        # the embedding part is the example's own vector, scaled to at most C sqrt(1 - s)
        own = min(float(full.norms[row]), clip_norm * math.sqrt(1 - share))
        expected = math.sqrt(own**2 + clip_norm**2 * share)
        assert float(moved) == pytest.approx(expected, rel=1e-4)
    if clip_norm < 1:  # every example clipped: each moves the vector by exactly C
        assert float(full.norms.min()) > clip_norm


def test_noise_has_the_stated_std():
    gen = torch.Generator().manual_seed(1)
    clean = release.ClassSums(torch.randn(4, 10, 300, generator=gen), torch.full((5000,), 50.0))
    sigma, clip_norm, share = 2.0, 3.0, 0.25
    noisy = release.privatise(clean, noise_multiplier=sigma, clip_norm=clip_norm,
                              count_share=share, generator=gen)  # fmt: skip
    resid = noisy.sums - clean.sums
    assert abs(float(resid.mean())) < 0.05 * sigma * clip_norm
    assert float(resid.std()) == pytest.approx(sigma * clip_norm, rel=0.03)
    # a count is read back from a coordinate of weight C sqrt(s): std sigma / sqrt(s)
    assert float((noisy.counts - clean.counts).std()) == pytest.approx(
        sigma / math.sqrt(share), rel=0.05
    )
    public = release.privatise(clean, noise_multiplier=sigma, clip_norm=clip_norm,
                               count_share=0, generator=gen)  # fmt: skip
    assert torch.equal(public.counts, clean.counts)


def test_a_run_release_carries_noise_of_its_recorded_std(digits):
    """The summary's means times its counts, minus the noiseless sums recomputed from the
    same embedders: the noise the run added, of std sigma * C as the metadata says."""
    s = _run(digits, {"noise": "2", "epsilon": "inf", "pool": "6", "noise_seed": "5"})
    p = s.extra["privacy"]
    tensors = {k.removeprefix(release.PREFIX): v for k, v in s.preprocess.items()}
    emb, means, counts = release.from_tensors(tensors, p)
    clean = release.clipped_sums(digits, emb, clip_norm=p["clip"],
                                 count_share=p["count_share"])  # fmt: skip
    resid = means * counts[None, :, None] - clean.sums
    assert float(resid.std()) == pytest.approx(p["noise_multiplier"] * p["clip"], rel=0.05)
    assert p["noise"].startswith("reproducible")


# --- the release is reused, never remade ----------------------------------------------------


class Untouchable:
    """Training tensors that fail on any use: proof that nothing reads them."""

    def __getattr__(self, name):
        raise AssertionError(f"the training data were read ({name})")

    def __getitem__(self, index):
        raise AssertionError("the training data were read")

    def __len__(self):
        raise AssertionError("the training data were read")


def _no_training_data(digits, *, keep_labels=False):
    """The data with its training images (and labels, unless kept) unreadable."""
    gone = copy.copy(digits)
    gone.x_train = Untouchable()
    if not keep_labels:
        gone.y_train = Untouchable()
    return gone


def test_optimising_again_from_a_stored_release_reads_no_data(digits, tmp_path):
    first = _run(digits, {"epsilon": "4"}, iterations=3, out=tmp_path / "a")
    stored = tmp_path / "a" / "summary.safetensors"
    again = _run(_no_training_data(digits), {"release": str(stored)}, iterations=6)
    p, q = first.extra["privacy"], again.extra["privacy"]
    assert q["epsilon"] == p["epsilon"] and q["history"] == p["history"]
    assert q["releases"] == 1 and q["release_file"] == str(stored)
    for name, t in first.preprocess.items():
        assert torch.equal(again.preprocess[name], t)
    assert again.extra["run"]["iterations"] == 6
    assert not torch.equal(again.images, first.images)


def test_a_resumed_run_keeps_its_release(digits, tmp_path):
    first = _run(digits, {"epsilon": "4"}, iterations=2, out=tmp_path)
    # the labels stay: the delta check reads their number (public, as for dp-dsa)
    resumed = _run(_no_training_data(digits, keep_labels=True), {"epsilon": "4"}, iterations=4,
                   out=tmp_path, resume=True)  # fmt: skip
    assert resumed.extra["run"]["iterations"] == 4
    assert resumed.extra["privacy"]["epsilon"] == first.extra["privacy"]["epsilon"]
    for name, t in first.preprocess.items():
        assert torch.equal(resumed.preprocess[name], t)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epsilon": "0"}, "epsilon must be positive"),
        ({"epsilon": "-1"}, "epsilon must be positive"),
        ({"delta": "0.001"}, "delta must be in"),  # 1/n is 7e-4 for digits
        ({"delta": "0.5"}, "delta must be in"),
        ({"init": "real"}, "would copy private images"),
        ({"count_share": "1"}, "count_share must be in"),
        ({"clip": "0"}, "clip must be positive"),
    ],
)
def test_bad_budgets_are_refused_in_one_line(digits, overrides, message):
    with pytest.raises(DistillError, match=message) as e:
        _run(digits, overrides, iterations=1)
    assert "\n" not in str(e.value)


def test_a_pool_too_large_for_the_budget_warns_with_its_signal_to_noise(digits):
    with pytest.warns(UserWarning, match=r"signal-to-noise at most 0\.\d+.*lower --set pool"):
        _run(digits, {"epsilon": "0.5", "pool": "40"}, iterations=0)


def test_a_summary_without_a_release_is_refused(digits, tmp_path):
    run("dm", digits, 1, options=RunOptions(iterations=1, progress=False),
        overrides={"pool": "0"}, out_dir=tmp_path)  # fmt: skip
    with pytest.raises(DistillError, match="holds no dp-dm release"):
        _run(digits, {"release": str(tmp_path / "summary.safetensors")}, iterations=1)


# --- the audit's most exposed members -------------------------------------------------------


def test_the_most_exposed_members_are_those_clipped_hardest(digits):
    from datadistill_apps.privacy import exposure

    s = _run(digits, {"epsilon": "4", "clip": "0.5"}, iterations=1)
    cands, ratios = exposure.exposed_candidates(s, digits, 5)
    every = exposure.clip_ratios(s, digits)
    assert torch.equal(ratios, every.sort(descending=True).values[:5])
    assert ratios[0] == every.max() and ratios.min() > 1  # clip 0.5 < the RMS: all clipped
    assert cands.member.tolist() == [True] * 5 + [False] * 5
    assert torch.equal(cands.x[:5], digits.x_train[cands.member_rows])
    outside = exposure.clip_ratios(s, digits, split="test").argsort(descending=True)[:5]
    assert torch.equal(cands.x[5:], digits.x_test[outside])


def test_the_cli_audits_a_dp_dm_summary(tmp_path):
    import json

    from datadistill.cli import main as cli
    from datadistill.results import check_row

    out = tmp_path / "run"
    sets = [a for kv in ("pool=3", "net_width=8", "epsilon=5", "delta=1e-4") for a in ("--set", kv)]
    assert cli.main(["run", "--method", "dp-dm", "--ipc", "1", "--iterations", "2", "--quiet",
                     *sets, "--out", str(out)]) == 0  # fmt: skip
    results = tmp_path / "audit.json"
    args = ["privacy", "audit", str(out / "summary.safetensors"), "--candidates", "20"]
    args += ["--references", "1", "--epochs", "2", "--quiet", "--results", str(results)]
    assert cli.main(args) == 0
    (row,) = json.loads(results.read_text())
    check_row(row)
    assert row["method"] == "dp-dm" and row["target"] == "dp-dm"
    assert row["privacy"]["releases"] == 1 and 0 < row["privacy"]["epsilon"] <= 5


def test_a_checkpoint_of_another_release_is_refused(digits, tmp_path):
    _run(digits, {"epsilon": "4"}, iterations=1, out=tmp_path)
    with pytest.raises(DistillError, match="holds a release made with sigma"):
        _run(digits, {"epsilon": "8"}, iterations=2, out=tmp_path, resume=True)


# --- the noiseless sums are kept for the next epsilon ---------------------------------------


def test_a_second_epsilon_reuses_the_passes_and_ends_as_if_it_had_made_them(digits, monkeypatch):
    """Two releases that differ only in epsilon read the data once; the second summary is
    the one a run without the cache makes (same noise seed), and another clip norm is not
    served the first one's sums."""
    calls = []
    passes = release.clipped_sums
    monkeypatch.setattr(release, "clipped_sums", lambda *a, **k: calls.append(1) or passes(*a, **k))
    seeded = {"noise_seed": "3", "pool": "4"}  # a pool no other test here uses: a cold cache
    _run(digits, {**seeded, "epsilon": "1"})
    cached = _run(digits, {**seeded, "epsilon": "8"})
    assert len(calls) == 1
    fresh = _run(digits, {**seeded, "epsilon": "8", "reuse_sums": "false"})
    assert len(calls) == 2
    assert torch.equal(cached.images, fresh.images)
    for name, t in fresh.preprocess.items():
        assert torch.equal(cached.preprocess[name], t)
    _run(digits, {**seeded, "epsilon": "8", "clip": "0.3"})
    assert len(calls) == 3
