"""`distill eval | show | export | list` on every modality (core/modality.py, core/*/modality.py).

Tiny summaries made here with a few iterations on the built-in data: GCond on the karate club,
Distill-CF on `powerlaw`, text BPTT on `debian`, a random digits subset for images.
"""

import json
import struct

import numpy as np
import pytest
import safetensors.torch as st
import torch

from datadistill import modality
from datadistill.cli.main import main
from datadistill.distill import run
from datadistill.errors import SummaryFormatError
from datadistill.graph.summary import GraphSummary
from datadistill.loop import RunOptions
from datadistill.results import check_row
from datadistill.summary_header import modality_of
from datadistill.text.modality import embedded_test_split

NON_IMAGE = ("graph", "recsys", "text")


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def debian():
    from datadistill.text import data as textdata

    return textdata.load("debian")


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    from datadistill.graph import data as graph_data

    out = tmp_path_factory.mktemp("graph")
    options = RunOptions(iterations=2, progress=False)
    run("gcond", graph_data.load("karate"), 2, options=options, out_dir=out)
    return out / "summary.safetensors"


@pytest.fixture(scope="module")
def recsys_file(tmp_path_factory):
    from datadistill.recsys import data as recdata

    out = tmp_path_factory.mktemp("recsys")
    run("distill-cf", recdata.load("powerlaw"), 4, options=RunOptions(iterations=2, progress=False),
        overrides={"draws": "10"}, out_dir=out)  # fmt: skip
    return out / "summary.safetensors"


@pytest.fixture(scope="module")
def text_file(tmp_path_factory, debian):
    out = tmp_path_factory.mktemp("text")
    run("text-bptt", debian, 2, options=RunOptions(iterations=2, progress=False),
        overrides={"batch_real": "64"}, out_dir=out)  # fmt: skip
    return out / "summary.safetensors"


@pytest.fixture(scope="module")
def image_file(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("image")
    run("random", digits, 1, options=RunOptions(progress=False), out_dir=out)
    return out / "summary.safetensors"


def _file(request, name: str):
    return request.getfixturevalue(f"{name}_file")


# --- the header and the registry ---------------------------------------------------------


@pytest.mark.parametrize("name", NON_IMAGE)
def test_each_loader_refuses_another_modalitys_file_naming_the_right_loader(name, request):
    with pytest.raises(SummaryFormatError, match=f"is a {name} summary, not an image summary"):
        modality.get("image").load(_file(request, name))
    wrong = (
        f"is an image summary, not a {name} summary; load it with datadistill.summary.Summary.load"
    )
    with pytest.raises(SummaryFormatError, match=wrong):
        modality.get(name).load(_file(request, "image"))


@pytest.mark.parametrize("name", ("image", *NON_IMAGE))
def test_modality_is_read_from_the_header_alone(name, request, tmp_path):
    path = _file(request, name)
    assert modality_of(path) == name
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header_only = tmp_path / "header_only.safetensors"
    header_only.write_bytes(raw[: 8 + length])  # every tensor byte cut off
    assert modality_of(header_only) == name
    with pytest.raises(SummaryFormatError, match="truncated or corrupt"):
        modality.open_summary(header_only)  # the loaders do read the tensors
    kind, summary = modality.open_summary(path)
    assert kind.name == name and summary.metadata().get("modality", "image") == name


def test_every_method_modality_is_registered():
    from datadistill import methods

    used = {methods.get(m).modality for m in methods.available()}
    assert used <= set(modality.available()) and {"image", *NON_IMAGE} <= used


# --- eval ---------------------------------------------------------------------------------

EVAL = {
    "graph": (["--arch", "gcn,sgc", "--runs", "1", "--epochs", "3"], ["gcn", "sgc"]),
    "recsys": ([], ["infinite-ae", "ease"]),
    "text": (["--arch", "embbag", "--runs", "2", "--epochs", "2"], ["embbag"]),
}


@pytest.mark.parametrize("name", NON_IMAGE)
def test_eval_runs_the_modalitys_own_protocol_and_writes_rows(name, request, tmp_path, capsys):
    path = _file(request, name)
    args, archs = EVAL[name]
    results = tmp_path / "rows.json"
    argv = ["eval", str(path), *args, "--results", str(results), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    summary = modality.get(name).load(path)
    rows = json.loads(results.read_text())
    assert [r["arch"] for r in rows] == archs
    for r in rows:
        check_row(r)
        assert (r["method"], r["images"]) == (summary.method, summary.n)
        assert r["stored_bytes"] == summary.stored_bytes and 0 <= r["acc_mean"] <= 1
        assert r["iterations"] == 2 and r["command"].startswith("distill eval")
        assert f"| {summary.method} |" in out
    if name == "graph":
        assert rows[0]["modality"] == "graph" and rows[0]["eval_epochs"] == 3 and "edges" in out
    if name == "recsys":
        assert rows[0]["metric"] == "hr@10" and "nDCG@10" in out and rows[0]["reg"] > 0
    if name == "text":
        assert rows[0]["runs"] == 2 and len(rows[0]["accs"]) == 2 and rows[0]["eval_epochs"] == 2


def test_text_is_evaluated_in_the_summarys_own_embedding_space(text_file, debian):
    summary = modality.get("text").load(text_file)
    request = modality.EvalRequest()
    torch.testing.assert_close(embedded_test_split(summary, request).x_test, debian.dataset.x_test)
    summary.table = 2 * summary.table  # another table: the test sentences follow it
    twice = embedded_test_split(summary, request).x_test
    torch.testing.assert_close(twice, 2 * debian.dataset.x_test)


# --- show ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NON_IMAGE)
def test_show_describes_a_non_image_summary(name, request, capsys):
    path = _file(request, name)
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    s = modality.get(name).load(path)
    for fact in (f"method:        {s.method}", f"modality:      {name}", f"n:             {s.n}",
                 f"stored bytes:  {s.stored_bytes}", "2 iterations"):  # fmt: skip
        assert fact in out
    assert not path.with_suffix(".png").exists()
    if name == "graph":
        assert f"{s.n} nodes" in out and "edge density" in out
    if name == "recsys":
        assert f"4 synthetic users x {s.spec.num_items} items" in out and "density" in out
    if name == "text":
        decoded = [line for line in out.splitlines() if line.startswith("  [")]
        counts = torch.bincount(s.hard_labels(), minlength=s.spec.num_classes)
        assert len(decoded) == int(counts.clamp(max=2).sum())  # at most 2 a class by default
        first = s.sentences()[int(torch.nonzero(s.hard_labels() == 0)[0])]
        assert f"  [{s.spec.classes[0]}] {first or '(all padding)'}" in decoded


def test_show_max_per_class_limits_decoded_sentences(text_file, capsys):
    assert main(["show", str(text_file), "--max-per-class", "1"]) == 0
    decoded = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  [")]
    labels = modality.get("text").load(text_file).hard_labels()  # learnt: argmax classes
    assert len(decoded) == len(set(labels.tolist()))


def _save_graph(path, **fields):
    GraphSummary(dataset="hand", num_classes=2, method="random", ipc=1, **fields).save(path)
    return path


def test_show_counts_edges_and_density_exactly(tmp_path, capsys):
    path_ = [[1.0, 0.5, 0.0], [0.5, 1.0, 1.0], [0.0, 1.0, 1.0]]  # 2 edges of 3 possible
    node = _save_graph(tmp_path / "node.safetensors", features=torch.zeros(3, 4),
                       adjacency=torch.tensor(path_), labels=torch.tensor([0, 1, 1]),
                       task="node")  # fmt: skip
    assert main(["show", str(node)]) == 0
    assert "3 nodes, 2 edges, edge density 0.667, mean edge weight 0.75" in capsys.readouterr().out
    adj = torch.zeros(2, 3, 3)
    adj[0, 0, 1] = adj[0, 1, 0] = 1.0  # graph 0: two real nodes, one edge (density 1)
    adj[1] = torch.tensor(path_).ceil() - torch.eye(3)  # graph 1: a 3-node path (density 2/3)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    graphs = _save_graph(tmp_path / "graphs.safetensors", features=torch.zeros(2, 3, 4),
                         adjacency=adj, labels=torch.tensor([0, 1]), task="graph",
                         mask=mask)  # fmt: skip
    assert main(["show", str(graphs)]) == 0
    out = capsys.readouterr().out
    assert "2 graphs of 2.5 nodes on average (2-3), 1.5 edges and edge density 0.833" in out


# --- export -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NON_IMAGE)
def test_export_writes_the_files_tensors(name, request, tmp_path):
    path = _file(request, name)
    stored = st.load_file(str(path))
    out = tmp_path / "s.npz"
    assert main(["export", str(path), "--format", "npz", "-o", str(out)]) == 0
    arrays = np.load(out)
    assert set(arrays.files) == {*stored, "metadata"}
    for k, v in stored.items():
        np.testing.assert_array_equal(arrays[k], v.numpy())
    assert json.loads(str(arrays["metadata"]))["modality"] == name
    assert main(["export", str(path), "--format", "pt", "-o", str(tmp_path / "s.pt")]) == 0
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert saved["metadata"]["method"] == modality.get(name).load(path).method
    assert all(torch.equal(saved[k], v) for k, v in stored.items())


# --- refused requests and files -----------------------------------------------------------


@pytest.mark.parametrize(
    "name, command, options, phrases",
    [
        ("recsys", "eval", ["--arch", "convnet"], ["unknown recommender model 'convnet'",
                                                   "infinite-ae, ease"]),
        ("recsys", "eval", ["--runs", "3", "--no-dsa"], ["--runs, --no-dsa do not apply to a "
                                                         "recsys summary", "--arch, --dataset"]),
        ("recsys", "eval", ["--eval-seed", "0"], ["--eval-seed does not apply"]),
        ("text", "eval", ["--no-dsa"], ["--no-dsa does not apply to a text summary"]),
        ("graph", "eval", ["--arch", "convnet"], ["unknown architecture 'convnet'", "gcn, sgc"]),
        ("graph", "eval", ["--dataset", "csbm"], ["not csbm", "--dataset karate"]),
        ("graph", "show", ["-o", "g.png"], ["-o/--output does not apply to a graph summary",
                                            "takes no options"]),
        ("recsys", "show", ["--max-per-class", "3"], ["--max-per-class does not apply"]),
        ("text", "export", ["--format", "png", "-o", "x"], ["cannot be exported as png",
                                                            "npz, pt"]),
        ("image", "eval", ["--epochs", "0"], ["--epochs must be at least 1"]),
    ],
)  # fmt: skip
def test_options_that_do_not_apply_are_refused(name, command, options, phrases, request, capsys):
    assert main([command, str(_file(request, name)), *options]) == 2
    err = _err(capsys)
    for phrase in phrases:
        assert phrase in err


def test_corrupt_and_foreign_files_give_one_line(graph_file, tmp_path, capsys):
    raw = graph_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[:-16])  # header intact, tensor bytes short
    assert main(["eval", str(cut)]) == 2
    assert "cut.safetensors" in _err(capsys)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 9) + b"{not json" + b"\0" * 8)
    assert main(["show", str(garbage)]) == 2
    assert "not valid JSON" in _err(capsys)
    audio = tmp_path / "audio.safetensors"
    meta = json.dumps({"format_version": 1, "modality": "audio"})
    st.save_file({"x": torch.zeros(2)}, str(audio), metadata={"datadistill": meta})
    assert main(["export", str(audio), "-o", str(tmp_path / "a.npz")]) == 2
    assert "modality 'audio'" in _err(capsys)
    foreign = tmp_path / "foreign.safetensors"
    st.save_file({"x": torch.zeros(2)}, str(foreign))
    assert main(["eval", str(foreign)]) == 2
    assert "not a datadistill summary" in _err(capsys)


# --- images keep working, list shows modalities -------------------------------------------


def test_an_image_summary_still_evaluates_draws_and_exports(image_file, tmp_path, capsys):
    results = tmp_path / "rows.json"
    argv = ["eval", str(image_file), "--arch", "mlp", "--runs", "1", "--epochs", "1",
            "--no-dsa", "--results", str(results), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    (row,) = json.loads(results.read_text())
    assert row["arch"] == "mlp" and row["eval_dsa"] is False and row["images"] == 10
    assert main(["show", str(image_file), "-o", str(tmp_path / "g.png")]) == 0
    assert "modality:      image" in capsys.readouterr().out
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["export", str(image_file), "--format", "png", "-o", str(tmp_path / "p")]) == 0
    assert len(list((tmp_path / "p").glob("*.png"))) == 10


def test_list_has_a_modality_column(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    column = {line.split()[0]: line.split()[1] for line in out.splitlines()
              if line.startswith("  ") and len(line.split()) > 2}  # fmt: skip
    assert column["dm"] == "image" and column["gcond"] == "graph"
    assert column["distill-cf"] == "recsys" and column["text-bptt"] == "text"
    assert "modalities (eval, show, export read each): graph, image, recsys, text" in out
