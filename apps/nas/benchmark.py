"""Ground truth from the real NAS-Bench-201 file, queried through `nas_201_api`.

The file (``NAS-Bench-201-v1_1-096897.pth``, 4.7 GB, from the authors) is a torch pickle
of ``{"meta_archs": [arch strings], "arch2infos": {index: {"less": ArchResults state,
"full": ArchResults state}}, "evaluated_indexes": [...]}``; "less" is the 12-epoch schedule
(hp "12"), "full" the 200-epoch one (hp "200"). `NASBench201API(path)` calls `torch.load`
without `weights_only`, which torch >= 2.6 turns on by default and which refuses some
pickles, so we load the dict ourselves and pass it in (the constructor accepts a dict).
The API deep-copies that dict: loading the full file needs about twice its size in RAM.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from nas_201_api import NASBench201API

from datadistill.checkpoint import is_pickle
from datadistill.errors import DistillError
from datadistill_apps.nas.space import Arch

# our dataset names -> the benchmark's (cifar10: trained on train+valid, tested on test)
DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
REQUIRED = ("meta_archs", "arch2infos", "evaluated_indexes")


def load_benchmark(path: str | Path, *, trust: bool = False) -> NASBench201API:
    """Open a NAS-Bench-201 file, whatever torch's `weights_only` default.

    Tries the safe loader first. If the pickle holds objects it refuses, the file is loaded
    fully only when `trust` is set (`--trust-benchmark-file`): that runs the file's pickle
    code, so only for the file the user named and vouches for (the benchmark's authors'). It is
    the one full unpickling in the project: the benchmark exists only as a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise DistillError(
            f"benchmark file {path} not found; download NAS-Bench-201-v1_1-096897.pth from "
            "the NAS-Bench-201 authors and pass its path to --benchmark-file"
        )
    if not is_pickle(path):
        raise DistillError(f"cannot read {path} as a torch file (not a pickle); re-download it")
    try:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as safe_error:
            if "Weights only load failed" not in str(safe_error):
                raise
            if not trust:
                raise DistillError(
                    f"{path.name} needs full unpickling, which can run any code; if it is the "
                    "NAS-Bench-201 authors' file, pass --trust-benchmark-file"
                ) from None
            warnings.warn(
                f"{path.name} needs full unpickling (weights_only=False); trusting it as the "
                "authors' file",
                stacklevel=2,
            )
            raw = torch.load(path, map_location="cpu", weights_only=False)
    except DistillError:
        raise
    except Exception as e:  # truncated or foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DistillError(f"cannot read {path} as a torch file ({first}); re-download it") from e
    if not isinstance(raw, dict) or any(k not in raw for k in REQUIRED):
        raise DistillError(
            f"{path} is not a NAS-Bench-201 file (needs keys {', '.join(REQUIRED)}); pass "
            "NAS-Bench-201-v1_1-096897.pth"
        )
    return NASBench201API(raw, verbose=False)


def benchmark_accuracies(
    api: NASBench201API, archs: list[Arch], *, dataset: str, hp: str = "200"
) -> dict[str, float]:
    """Test accuracy in [0, 1] of each cell, averaged over the benchmark's trials.

    Args:
        dataset: our name (cifar10, cifar100, imagenet16-120) or the benchmark's.
        hp: "200" (the 200-epoch schedule, the usual ground truth) or "12".
    """
    name = DATASETS.get(dataset, dataset)
    if name not in DATASETS.values():
        raise DistillError(
            f"NAS-Bench-201 has no results for '{dataset}'; it covers "
            f"{', '.join(DATASETS)}: train the cells instead (omit --benchmark-file)"
        )
    out = {}
    for arch in archs:
        index = api.query_index_by_arch(str(arch))
        if index < 0:
            raise DistillError(f"cell {arch} is not in the benchmark file")
        info = api.get_more_info(index, name, hp=hp, is_random=False)
        if "test-accuracy" not in info:
            raise DistillError(f"the benchmark has no test accuracy for {arch} on {name}")
        out[str(arch)] = float(info["test-accuracy"]) / 100.0
    return out
