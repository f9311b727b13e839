"""The one front door, `datadistill.distill.run`, distils every modality as the README's
library section shows: a method (or its name), the modality's data, ipc, a typed config and
run options; the summary it returns round-trips through the one file format."""

import dataclasses

import pytest
import torch

from datadistill import data, methods
from datadistill.distill import run
from datadistill.errors import DistillError
from datadistill.loop import SUMMARY_FILE, RunOptions
from datadistill.modality import open_summary

QUICK = RunOptions(iterations=2, progress=False)


def _graph():
    from datadistill.graph import data as graph_data

    return graph_data.load("karate")


def _recsys():
    from datadistill.recsys import data as recdata

    tiny = recdata.PowerLawConfig(users=60, items=30, topics=3, min_items=4, max_items=15)
    return recdata.split("tiny", recdata.powerlaw(tiny), tiny.items)


def _text():
    from datadistill.text import data as textdata

    return textdata.load("debian")


CASES = {  # method -> (data, ipc, settings small enough for a CPU test)
    "dm": (lambda: data.load("digits"), 1, {}),
    "gcond": (_graph, 2, {"hidden": "16", "outer_loop": "2", "inner_loop": "1"}),
    "distill-cf": (_recsys, 4, {"draws": "10"}),
    "text-bptt": (_text, 1, {"batch_real": "64", "inner_epochs": "1"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_front_door_distils_every_modality(name, tmp_path):
    load, ipc, settings = CASES[name]
    given = load()
    method = methods.get(name)
    config = method.config(_name(given), settings)
    summary = run(method, given, ipc, config, QUICK, out_dir=tmp_path)

    assert summary.method == name and summary.extra["run"]["iterations"] == 2
    kind, loaded = open_summary(tmp_path / SUMMARY_FILE)
    assert kind.name == method.modality
    ran = dataclasses.replace(config, iterations=2)  # RunOptions.iterations wins
    assert loaded.metadata()["config"] == dataclasses.asdict(ran)
    again = run(name, given, ipc, options=QUICK, overrides=settings)  # by name, same seed
    assert again.n == summary.n
    assert torch.equal(_tensor(again), _tensor(summary))


def _name(data) -> str:
    spec = getattr(data, "spec", None)
    return spec.name if spec is not None else data.name


def _tensor(summary) -> torch.Tensor:
    """The summary's examples, whatever its modality."""
    for field in ("images", "features", "interactions", "embeddings"):
        if hasattr(summary, field):
            return getattr(summary, field)
    raise AssertionError(f"unknown summary {type(summary).__name__}")


def test_the_front_door_refuses_a_method_of_another_modality(digits):
    with pytest.raises(DistillError, match="is a graph method, not an image one; image methods"):
        run("gcond", digits, 1, options=QUICK)
    with pytest.raises(DistillError, match="takes a DMConfig"):
        run("dm", digits, 1, methods.get("random").config("digits"), QUICK)
    with pytest.raises(DistillError, match="not both"):
        run("dm", digits, 1, methods.get("dm").config("digits"), QUICK, overrides={"lr_img": 1})


def test_no_method_carries_a_command_handler():
    """Presets build; they never parse flags or run a command (no `runner` field)."""
    fields = {f.name for f in dataclasses.fields(methods.get("dm"))}
    assert "runner" not in fields
    for name in methods.available():
        m = methods.get(name)
        assert (m.build is None) != (m.select is None), name
