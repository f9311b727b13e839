"""apps/privacy: the mechanism, its accounting, the dp-dsa method, DP-SGD and the audit."""

import dataclasses
import json
import math

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from resume import full_and_resumed

from datadistill import checkpoint, nets
from datadistill.cli import main as cli
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.loop import CHECKPOINT_FILE, RunOptions
from datadistill.objectives.gradient import GradientMatching
from datadistill.params.images import FreeImages
from datadistill.results import check_row
from datadistill.summary import Summary
from datadistill_apps.privacy import accounting, audit, mechanism, noise
from datadistill_apps.privacy.objective import DPGradientMatching

# a small matching network and short loops keep every run here to seconds on a CPU
SMALL = {"net_width": "8", "outer_loop": "2", "inner_loop": "2", "delta": "1e-4"}


def _run(digits, overrides, *, iterations=3, ipc=1, out=None):
    opts = RunOptions(iterations=iterations, progress=False)
    return run("dp-dsa", digits, ipc, options=opts, overrides={**SMALL, **overrides}, out_dir=out)


# --- accounting ---------------------------------------------------------------------------------


def test_epsilon_in_the_metadata_is_opacus_answer(digits, tmp_path):
    _run(digits, {"epsilon": "8"}, iterations=3, out=tmp_path)
    p = Summary.load(tmp_path / "summary.safetensors").extra["privacy"]
    assert (p["accountant"], p["steps"], p["sampling"]) == ("rdp", 3, "poisson")
    # Opacus, from scratch, on the recorded (sigma, q, steps): the same number
    acc = RDPAccountant()
    acc.history = [(p["noise_multiplier"], p["sample_rate"], p["steps"])]
    assert p["epsilon"] == acc.get_epsilon(delta=p["delta"])
    assert p["epsilon"] <= p["epsilon_budget"] == 8
    # sigma is Opacus's calibration for the planned steps
    assert p["noise_multiplier"] == get_noise_multiplier(
        target_epsilon=8, target_delta=1e-4, sample_rate=0.2, steps=3, accountant="rdp"
    )


def test_prv_accountant_reports_its_own_epsilon(digits):
    # a fixed sigma: PRV's calibration takes a binary search of ~2 s evaluations
    s = _run(digits, {"epsilon": "inf", "noise": "2", "accountant": "prv"}, iterations=2)
    p = s.extra["privacy"]
    acc = PRVAccountant()
    acc.history = [(2.0, 0.2, 2)]
    assert p["accountant"] == "prv" and p["epsilon"] == acc.get_epsilon(delta=1e-4)


def test_fixed_noise_reports_epsilon_and_stops_before_the_budget(digits):
    plan = accounting.plan(
        epsilon=4, delta=1e-4, noise=1.0, sample_rate=0.2, steps=100, n=len(digits.y_train)
    )
    allowed = accounting.steps_within_budget(plan, [], 100)
    assert (
        accounting.epsilon_of(plan, [], allowed) <= 4 < accounting.epsilon_of(plan, [], allowed + 1)
    )
    s = _run(digits, {"epsilon": "4", "noise": "1.0"}, iterations=allowed + 2)
    p = s.extra["privacy"]
    assert p["steps"] == s.extra["run"]["iterations"] == allowed
    assert p["stopped_by_budget"] and p["epsilon"] <= 4
    # no budget: every planned step runs, and the epsilon spent is reported
    p = _run(digits, {"epsilon": "inf", "noise": "1.0"}, iterations=2).extra["privacy"]
    assert p["steps"] == 2 and p["epsilon"] > 0 and p["epsilon_budget"] is None


def test_epsilon_infinity_is_the_noiseless_limit(digits, tmp_path):
    _run(digits, {"epsilon": "inf"}, iterations=2, out=tmp_path)
    summary = Summary.load(tmp_path / "summary.safetensors")
    assert summary.config["epsilon"] == "inf"  # JSON has no infinity
    p = summary.extra["privacy"]
    assert not p["private"] and p["noise_multiplier"] == 0 and p["epsilon"] is None
    assert p["steps"] == 2 and p["history"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epsilon": "0"}, "epsilon must be positive"),
        ({"epsilon": "-1"}, "epsilon must be positive"),
        ({"delta": str(1 / 1437)}, r"delta must be in \(0, 1/n\)"),
        ({"delta": "0.5"}, r"delta must be in \(0, 1/n\)"),
        ({"epsilon": "1e-6"}, "too small for even one step"),
        ({"epsilon": "0.01", "noise": "0.5"}, "too small for one step"),
        ({"init": "real"}, "copy private images"),
        ({"accountant": "gdp"}, "unknown accountant"),
    ],
)
def test_bad_privacy_requests_are_refused_clearly(digits, overrides, message):
    with pytest.raises(DistillError, match=message):
        _run(digits, overrides, iterations=1)


def test_an_epsilon_beyond_prv_calibration_is_refused_in_one_line():
    """PRV's discretisation fails (RuntimeError) for one release at epsilon 1e4."""
    with pytest.raises(DistillError, match="cannot calibrate epsilon=10000.*100 or less"):
        accounting.calibrate(epsilon=1e4, delta=1e-5, sample_rate=1.0, steps=1, kind="prv")


def test_cli_refuses_a_bad_budget_with_one_line(capsys):
    code = cli.main(["privacy", "run", "--epsilon", "0", "--iterations", "1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: epsilon must be positive") and err.count("\n") == 1


def test_cli_epsilon_is_opacus_answer(capsys):
    args = ["--noise", "1.1", "--sample-rate", "0.004", "--steps", "500", "--delta", "1e-5"]
    assert cli.main(["privacy", "epsilon", *args]) == 0
    acc = RDPAccountant()
    acc.history = [(1.1, 0.004, 500)]
    assert f"epsilon {acc.get_epsilon(delta=1e-5):.6g} " in capsys.readouterr().out


# --- the mechanism ------------------------------------------------------------------------------


def _net_and_batch(digits, n=12, width=8):
    torch.manual_seed(0)
    net = nets.build("convnet", digits.spec, width=width, depth=2)
    return net, digits.x_train[:n], digits.y_train[:n]


def test_backends_agree_with_a_per_example_loop(digits):
    net, x, y = _net_and_batch(digits, n=5)
    params = list(net.parameters())
    loop = [
        torch.autograd.grad(
            torch.nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1]), params
        )
        for i in range(len(x))
    ]
    for backend in mechanism.BACKENDS:
        got = mechanism.per_example_grads(net, x, y, backend=backend)
        for j, g in enumerate(got):
            want = torch.stack([row[j] for row in loop])
            assert torch.allclose(g, want, atol=1e-5), (backend, j)
    assert all(p.grad is None for p in params)  # the real side leaves the network untouched


@pytest.mark.parametrize("backend", mechanism.BACKENDS)
def test_clipping_bounds_each_examples_contribution(digits, backend):
    net, x, y = _net_and_batch(digits)
    clip = 0.05
    per = mechanism.per_example_grads(net, x, y, backend=backend)
    norms = torch.cat([g.flatten(1) for g in per], 1).norm(dim=1)
    assert (norms > clip).all()  # every example is clipped here: the bound binds
    # neighbouring batches: the same batch with one extra example, made extreme
    outlier = 50 * digits.x_train[12:13]
    base = mechanism.clipped_sum(net, x, y, clip=clip, backend=backend, chunk=5)
    plus = mechanism.clipped_sum(
        net, torch.cat([x, outlier]), torch.cat([y, digits.y_train[12:13]]), clip=clip,
        backend=backend, chunk=5,
    )  # fmt: skip
    diff = torch.cat([(a - b).flatten() for a, b in zip(plus, base, strict=True)]).norm()
    assert clip * 0.99 < diff <= clip * (1 + 1e-4)
    # the sum of clipped gradients is at most n * C, and chunks do not change it
    whole = mechanism.clipped_sum(net, x, y, clip=clip, backend=backend, chunk=100)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(base, whole, strict=True))
    assert torch.cat([g.flatten() for g in base]).norm() <= len(x) * clip


def test_noise_has_the_stated_std():
    zeros = [torch.zeros(200, 500), torch.zeros(1000)]
    out = mechanism.add_noise(
        zeros, clip=0.5, noise_multiplier=2.0, normaliser=4.0, generator=torch.Generator()
    )
    flat = torch.cat([o.flatten() for o in out])
    assert flat.std().item() == pytest.approx(2.0 * 0.5 / 4.0, rel=0.01)
    assert abs(flat.mean().item()) < 0.003
    silent = mechanism.add_noise(
        zeros, clip=0.5, noise_multiplier=0.0, normaliser=4.0, generator=torch.Generator()
    )
    assert all((s == 0).all() for s in silent)


def test_real_gradient_is_the_clipped_noised_mean(digits):
    """With sigma 0 and a clip no gradient reaches, the DP gradient is the class's mean
    gradient over the Poisson batch scaled by (drawn size / expected size)."""
    plan = accounting.Plan(0.0, 1.0, 1e-4, math.inf, "rdp")
    obj = DPGradientMatching(plan=plan, clip=1e6, planned_steps=1, net_config={"width": 8})
    plain = GradientMatching(net_config={"width": 8})
    net, x, _ = _net_and_batch(digits, n=10, width=8)
    params = list(net.parameters())
    obj._normaliser = [10.0] * 10
    dp = obj._real_gradient(net, x, 3, params, torch.Generator())
    ref = plain._real_gradient(net, x, 3, params, torch.Generator())
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(dp, ref, strict=True))


def test_poisson_sampling_includes_each_example_independently(digits):
    plan = accounting.Plan(1.0, 0.3, 1e-4, math.inf, "rdp")
    obj = DPGradientMatching(plan=plan, clip=1.0, planned_steps=1)
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor(
        [[len(b) for b in obj._real_batches(digits, g, "cpu")] for _ in range(200)]
    ).float()
    counts = torch.tensor(digits.class_counts()).float()
    assert torch.allclose(sizes.mean(0), 0.3 * counts, rtol=0.06)
    assert sizes.std(0).min() > 0  # variable batch sizes: Poisson, not fixed-size
    assert obj._normaliser == pytest.approx((0.3 * counts).tolist())


# --- the method ---------------------------------------------------------------------------------


def _dc_loss_at(images, digits, width=16):
    """The non-private matching loss over 4 fixed fresh networks and the full real classes."""
    param = FreeImages(digits, 2, init="noise", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        param.images.copy_(images)
    total = 0.0
    for i in range(4):
        obj = GradientMatching(batch_real=128, net_config={"depth": 2, "width": width})
        total += float(obj.loss(param, digits, torch.Generator().manual_seed(100 + i), 0).detach())
    return total / 4


def test_a_few_dp_iterations_lower_the_matching_loss(digits):
    kw = {
        "epsilon": "10",
        "sample_rate": "0.4",
        "lr_img": "1",
        "net_width": "16",
        "noise_seed": "0",
    }
    after = _run(digits, kw, iterations=8, ipc=2)
    p = after.extra["privacy"]
    assert p["epsilon"] <= 10 and p["noise_multiplier"] > 0.5
    # the run's initial images: the same draw from the run's seed
    before = FreeImages(digits, 2, init="noise", generator=torch.Generator().manual_seed(0))
    assert _dc_loss_at(after.images, digits) < 0.9 * _dc_loss_at(before.images.detach(), digits)


def test_interrupted_dp_run_resumes_with_its_accountant(digits, tmp_path):
    kw = {**SMALL, "epsilon": "5", "noise_seed": "3"}  # reproducible noise: bit for bit
    full, resumed = full_and_resumed("dp-dsa", digits, tmp_path, kw)
    assert torch.equal(full.images, resumed.images)
    assert full.extra["privacy"] == resumed.extra["privacy"]
    assert full.extra["privacy"]["steps"] == 6


def test_a_resumed_secure_run_draws_fresh_noise_and_keeps_its_accountant(digits, tmp_path):
    full, resumed = full_and_resumed("dp-dsa", digits, tmp_path, {**SMALL, "epsilon": "5"})
    # the steps redone after the checkpoint got new noise, never the noise drawn before
    assert not torch.equal(full.images, resumed.images)
    assert full.extra["privacy"] == resumed.extra["privacy"]
    assert resumed.extra["privacy"]["noise"] == noise.SECURE
    # the checkpoint holds no state of the secret generator
    blob = checkpoint.load_state(tmp_path / CHECKPOINT_FILE)
    assert "mechanism_rng" not in blob["objective"]["privacy"]


def test_a_checkpoint_is_refused_by_a_run_with_the_other_noise_setting(digits, tmp_path):
    _run(digits, {"epsilon": "5"}, iterations=2, out=tmp_path)
    with pytest.raises(DistillError, match="noise_seed=-1.*noise_seed=4; resume with the same"):
        opts = RunOptions(iterations=3, progress=False, resume=True)
        overrides = {**SMALL, "epsilon": "5", "noise_seed": "4"}
        run("dp-dsa", digits, 1, options=opts, overrides=overrides, out_dir=tmp_path)


# --- the noise's source -------------------------------------------------------------------------


def test_same_seed_private_runs_draw_different_noise_unless_it_is_seeded(digits):
    """The run's seed (recorded in the summary) must not replay the mechanism's draws."""
    a, b = (_run(digits, {"epsilon": "8"}, iterations=2) for _ in range(2))
    assert a.seed == b.seed == 0 and not torch.equal(a.images, b.images)
    for s in (a, b):
        assert s.extra["privacy"]["noise"] == noise.SECURE and noise.is_private_release(
            s.extra["privacy"]
        )
        assert "noise_seed" not in s.extra["privacy"]
    c, d = (_run(digits, {"epsilon": "8", "noise_seed": "7"}, iterations=2) for _ in range(2))
    assert torch.equal(c.images, d.images)
    p = c.extra["privacy"]
    assert p["noise"] == "reproducible, not a private release" and p["noise_seed"] == 7
    assert not noise.is_private_release(p)


def test_the_noiseless_limit_and_older_summaries_say_they_are_not_private():
    assert noise.mode(-1, private=False) == noise.NONE
    assert noise.marker({"private": False}) == noise.NONE
    # written before the noise had its own generator: drawn from the recorded seed
    assert noise.marker({"private": True, "epsilon": 1.0}) == noise.REPRODUCIBLE
    assert noise.marker(None) is None
    with pytest.raises(DistillError, match="noise_seed must be -1"):
        noise.generator(-2)


def test_show_says_where_the_noise_came_from(digits, tmp_path, capsys):
    _run(digits, {"epsilon": "8", "noise_seed": "1"}, iterations=1, out=tmp_path)
    cli.main(["show", str(tmp_path / "summary.safetensors"), "-o", str(tmp_path / "g.png")])
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("privacy:")]
    assert line and line[0].endswith("noise: reproducible, not a private release")


def test_dpsgd_noise_is_secret_unless_seeded(digits):
    from datadistill_apps.privacy.dpsgd import DPSGDConfig, train_dpsgd

    def weights(**kw):
        cfg = DPSGDConfig(epsilon=3, delta=1e-4, epochs=1, batch_size=512, net_width=8, **kw)
        net, row = train_dpsgd(digits, config=cfg, progress=False)
        return torch.cat([p.detach().flatten() for p in net.parameters()]), row["noise"]

    (a, ma), (b, _) = weights(), weights()
    assert ma == noise.SECURE and not torch.equal(a, b)
    (c, mc), (d, _) = weights(noise_seed=5), weights(noise_seed=5)
    assert mc == noise.REPRODUCIBLE and torch.equal(c, d)


# --- DP-SGD and the audit -----------------------------------------------------------------------


def test_dpsgd_baseline_spends_its_budget(digits):
    from datadistill_apps.privacy.dpsgd import DPSGDConfig, train_dpsgd

    cfg = DPSGDConfig(epsilon=3, delta=1e-4, epochs=2, batch_size=256, net_width=8, lr=1.0)
    net, row = train_dpsgd(digits, config=cfg, progress=False)
    assert 2.5 < row["epsilon"] <= 3.0 and row["noise_multiplier"] > 0
    assert row["variant"] == "epsilon=3" and 0 <= row["acc_mean"] <= 1
    with pytest.raises(DistillError, match="delta"):
        train_dpsgd(digits, config=DPSGDConfig(delta=0.01), progress=False)


def test_roc_metrics_on_known_scores():
    member = torch.tensor([True] * 100 + [False] * 100)
    perfect = audit.roc_metrics(member.float(), member)
    assert perfect == {"auc": 1.0, "tpr_at_1pct_fpr": 1.0}
    flipped = audit.roc_metrics(-member.float(), member)
    assert flipped["auc"] == 0.0 and flipped["tpr_at_1pct_fpr"] == 0.0


def test_logit_confidence_is_log_odds_of_the_true_class(digits):
    net, x, y = _net_and_batch(digits, n=6)
    phi = audit.logit_confidence(net, x, y)
    p = torch.softmax(net(x), 1).gather(1, y.view(-1, 1)).squeeze(1).detach()
    assert torch.allclose(phi, torch.log(p / (1 - p)), atol=1e-4)


def test_audit_sees_a_memorising_model_and_not_a_blind_one(digits):
    """Members trained on for many epochs are told apart; an untrained model is chance."""
    from datadistill.train import TrainConfig

    gen = torch.Generator().manual_seed(0)
    cands = audit.draw_candidates(digits, 60, gen)
    cfg = TrainConfig(epochs=40, dsa=False)
    rows = cands.member_rows
    target = audit.train_model(
        digits.x_train[rows], digits.y_train[rows], digits.spec, arch="mlp", config=cfg, seed=0
    )
    refs = audit.reference_models(digits, size=60, exclude=rows, count=2, config=cfg, arch="mlp")
    result = audit.audit(target, cands, refs)
    assert set(result) == {"loss", "lira"}
    assert result["loss"]["auc"] > 0.6 and result["lira"]["auc"] > 0.6
    torch.manual_seed(1)
    blind = nets.build("mlp", digits.spec)
    assert abs(audit.audit(blind, cands, [])["loss"]["auc"] - 0.5) < 0.15


def test_an_audit_of_a_summary_is_a_results_row_naming_its_target(digits):
    """Audit rows share the results schema; a summary's row carries its method, bytes and
    mechanism, and its variant keeps it apart from the summary's accuracy row."""
    from datadistill.train import TrainConfig

    summary = run("random", digits, 2)
    summary.extra["privacy"] = {"epsilon": 3.0}
    cands = audit.draw_candidates(digits, 10, torch.Generator().manual_seed(0))
    result = {"loss": {"auc": 0.5, "tpr_at_1pct_fpr": 0.01}}
    row = audit.audit_row(
        "random ipc 2", 0.7, result, cands=cands, references=0, config=TrainConfig(epochs=3),
        summary=summary, dataset="digits", seed=4,
    )  # fmt: skip
    check_row(row)
    assert (row["method"], row["ipc"], row["images"]) == ("random", 2, 20)
    assert row["stored_bytes"] == summary.stored_bytes and row["acc_mean"] == 0.7
    assert row["variant"] == "audit: random ipc 2" and row["seed"] == 4
    assert row["loss_auc"] == 0.5 and row["privacy"] == {"epsilon": 3.0}
    with pytest.raises(ValueError, match="summary or the real"):
        audit.audit_row("x", 0.7, result, cands=cands, references=0, config=TrainConfig(),
                        dataset="digits")  # fmt: skip


def test_a_real_initialised_summary_names_the_rows_it_started_from(digits):
    """DM from real images records them (`init_rows`); the audit's init members are exactly
    those rows, drawn again from the seed for summaries saved before they were recorded;
    a noise-initialised summary has none."""
    summary = run("dm", digits, 2, options=RunOptions(iterations=1, seed=3))
    rows = torch.tensor(summary.extra["init_rows"])
    assert len(rows) == 20 and (digits.y_train[rows] == summary.hard_labels()).all()
    older = dataclasses.replace(summary, extra={})  # as saved before init_rows existed
    assert torch.equal(audit.init_rows(older, digits), rows)
    cands = audit.init_candidates(summary, digits, torch.Generator().manual_seed(0))
    assert set(cands.member_rows.tolist()) == set(rows.tolist()) and len(cands.y) == 40
    noise = run("dm", digits, 2, options=RunOptions(iterations=1), overrides={"init": "noise"})
    assert "init_rows" not in noise.extra
    with pytest.raises(ValueError, match="did not start from real images"):
        audit.init_candidates(noise, digits, torch.Generator())


def test_cli_audit_of_a_summarys_initial_images(digits, tmp_path, capsys):
    """`--members init` audits the rows an IDC summary started from (every one of them, as
    members) and names them in its row; a noise start or no summary is refused by name."""
    out = tmp_path / "idc"
    assert cli.main(["run", "--method", "idc", "--ipc", "1", "--iterations", "1", "--quiet",
                     "--out", str(out)]) == 0  # fmt: skip
    results = tmp_path / "audit.json"
    args = ["privacy", "audit", str(out / "summary.safetensors"), "--members", "init"]
    args += ["--references", "0", "--epochs", "2", "--quiet", "--results", str(results)]
    args += ["--out", str(tmp_path / "audit")]
    assert cli.main(args) == 0
    (row,) = json.loads(results.read_text())
    check_row(row)
    assert row["target"] == "idc, its initial images" and row["method"] == "idc"
    assert row["members"] == "the summary's initial images"
    assert row["candidates"] == 40  # IDC at IPC 1 with factor 2: 4 real tiles a class
    assert cli.main(["privacy", "audit", "--real", "10", "--members", "init"]) == 2
    assert "pass a summary" in capsys.readouterr().err
    noise = tmp_path / "noise"
    assert cli.main(["run", "--method", "dm", "--ipc", "1", "--iterations", "1", "--quiet",
                     "--set", "init=noise", "--out", str(noise)]) == 0  # fmt: skip
    args[2] = str(noise / "summary.safetensors")
    assert cli.main(args) == 2
    assert "did not start from real images" in capsys.readouterr().err
    older = dataclasses.replace(Summary.load(out / "summary.safetensors"), extra={})
    with pytest.raises(ValueError, match="started from real images but does not name them"):
        audit.init_candidates(older, digits, torch.Generator())


def test_cli_privacy_run_reports_the_mechanism(tmp_path, capsys):
    args = ["privacy", "run", "--iterations", "2", "--ipc", "1", "--noise", "1.5", "--quiet"]
    args += ["--delta", "1e-4", "--out", str(tmp_path), "--set", "net_width=8"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    p = Summary.load(tmp_path / "summary.safetensors").extra["privacy"]
    assert p["epsilon_budget"] is None and p["noise_multiplier"] == 1.5 and p["steps"] == 2
    assert f"privacy: epsilon {p['epsilon']:.4g} at delta 0.0001 (rdp accountant)" in out


def test_cli_audit_of_a_real_model_writes_a_row(tmp_path, capsys):
    results = tmp_path / "audit.json"
    args = ["privacy", "audit", "--real", "40", "--references", "1", "--epochs", "3"]
    argv = [*args, "--quiet", "--results", str(results), "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    (row,) = json.loads(results.read_text())
    assert json.loads((tmp_path / "run" / "rows.json").read_text()) == [row]
    assert "| real (40 images) |" in capsys.readouterr().out  # one table, in percent
    check_row(row)  # the results schema: one script tabulates audits with everything else
    assert row["target"] == "real (40 images)" and row["candidates"] == 40
    assert row["method"] == "real" and row["images"] == 40 and row["variant"].startswith("audit")
    assert 0 <= row["loss_auc"] <= 1 and 0 <= row["lira_tpr_at_1pct_fpr"] <= 1
    assert cli.main(["privacy", "audit"]) == 2  # neither a summary nor --real
    assert "pass a summary file or --real N" in capsys.readouterr().err


def test_dp_matching_refuses_per_example_siamese_draws():
    """A draw per real example would let the synthetic side see the private batch size."""
    plan = accounting.Plan(1.0, 0.3, 1e-4, math.inf, "rdp")
    assert DPGradientMatching(plan=plan, clip=1.0, planned_steps=1).siamese == "batch"
    with pytest.raises(ValueError, match="siamese='batch'"):
        DPGradientMatching(plan=plan, clip=1.0, planned_steps=1, siamese="example")
