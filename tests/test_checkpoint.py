"""Resume state without pickle: round trips, refusals, the one-off converter, and a scan of
the source for unpickling."""

import ast
from pathlib import Path

import pytest
import torch

from datadistill import checkpoint, convert_state
from datadistill.errors import DistillError

ROOT = Path(__file__).resolve().parent.parent


def _nested():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    view = torch.arange(6.0)
    return {
        "opt": opt.state_dict(),  # integer keys, tuples (betas), tensors, None
        "net": net.state_dict(),
        "rng": torch.Generator().manual_seed(3).get_state(),
        "views": [view[:3], view[3:]],  # share storage: must still save
        "history": [(1.1, 0.004, 20)],
        "counters": {"iteration": 7, "nan": float("nan"), "flag": True, "none": None},
        "__tensor__": "a key that looks like a marker",
    }


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return type(a) is type(b) and a == b


def test_state_round_trips_exactly_without_pickle(tmp_path):
    state = _nested()
    checkpoint.save_state(tmp_path / "s.safetensors", state)
    assert not checkpoint.is_pickle(tmp_path / "s.safetensors")
    assert _same(state, checkpoint.load_state(tmp_path / "s.safetensors"))


def test_objects_beyond_data_are_refused_at_save(tmp_path):
    with pytest.raises(DistillError, match="holds a Linear"):
        checkpoint.save_state(tmp_path / "s.safetensors", {"net": torch.nn.Linear(1, 1)})
    assert not (tmp_path / "s.safetensors").exists()


def test_a_pickled_checkpoint_is_refused_with_the_converter_command(tmp_path):
    old = tmp_path / "checkpoint.pt"
    torch.save(_nested(), old)
    with pytest.raises(DistillError, match=r"pickled.*python -m datadistill.convert_state"):
        checkpoint.load_state(old)
    with pytest.raises(DistillError, match=r"convert_state \S+checkpoint.pt \S+ckpt"):
        checkpoint.refuse_pickled(tmp_path, "ckpt")
    assert convert_state.main([str(old), str(tmp_path / "ckpt")]) == 0
    checkpoint.refuse_pickled(tmp_path, "ckpt")  # converted: resuming reads the new file
    assert _same(torch.load(old, weights_only=True), checkpoint.load_state(tmp_path / "ckpt"))


def test_the_converter_never_runs_a_pickle(tmp_path, capsys):
    old = tmp_path / "evil.pt"
    torch.save({"x": Path("anything")}, old)  # an object: needs the full unpickler
    assert convert_state.main([str(old), str(tmp_path / "new")]) == 1
    assert "not converted" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def _torch_loads(tree):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
        ):
            yield node


# the one full unpickling: the NAS-Bench-201 file exists only as a pickle, and it is loaded
# only when the user names it and passes --trust-benchmark-file (tests/test_nas.py)
TRUSTED = {("apps/nas/benchmark.py", "load_benchmark")}


def test_no_code_path_unpickles_except_the_named_and_trusted_benchmark():
    files = [p for d in ("core", "apps", "experiments", "tests") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    unsafe = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for call in _torch_loads(tree):
            flag = {k.arg: k.value for k in call.keywords}.get("weights_only")
            if isinstance(flag, ast.Constant) and flag.value is True:
                continue
            node = call
            while node in parents and not isinstance(node, ast.FunctionDef):
                node = parents[node]
            where = (str(path.relative_to(ROOT)), getattr(node, "name", "<module>"))
            if where not in TRUSTED:
                unsafe.append(f"{where[0]}:{call.lineno} in {where[1]}")
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"
    for rel, func in TRUSTED:  # the exception stays guarded by the trust flag
        source = (ROOT / rel).read_text()
        assert f"def {func}(path: str | Path, *, trust: bool = False)" in source
        assert "if not trust:" in source


def test_no_pickle_file_is_tracked_in_git():
    import subprocess

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "*.pt", "*.pth", "*.pkl"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert tracked == []
