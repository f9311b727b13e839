"""Resume state without pickle: everything a stopped run needs to continue bit for bit.

A resume state is a nested structure of dicts, lists, tuples, numbers, strings, None and
tensors (a parameterisation's and an objective's `state_dict()`, optimiser states with their
integer keys, RNG states, the loop's counters). It is written as one safetensors file: the
tensors as tensors, everything else as a JSON skeleton in the metadata key `STATE_KEY`,
where a tensor is `{"__tensor__": name}`, a tuple `{"__tuple__": [...]}` and a dict with
keys that are not plain strings `{"__items__": [[key, value], ...]}`. Reading it runs no
code, unlike `torch.load(weights_only=False)`, whose pickle can run anything: a checkpoint
found in a repository or sent by a colleague is data, never a program.

A pickled checkpoint (the format before this one, `checkpoint.pt`) is refused with the
command that converts it once (`python -m datadistill.convert_state OLD NEW`, which reads
it with torch's restricted `weights_only` unpickler).

Files are written to a temporary file and renamed over the old one, so a crash mid-write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

from datadistill import atomic
from datadistill.errors import DistillError

FORMAT_VERSION = 1
STATE_KEY = "datadistill_state"
PICKLED_FILE = "checkpoint.pt"  # what the outer loop wrote before resume state left pickle
_MARKERS = ("__tensor__", "__tuple__", "__items__")


def encode(obj, tensors: dict[str, torch.Tensor]):
    """The JSON skeleton of `obj`; its tensors are added to `tensors` under fresh names."""
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        # a copy: safetensors refuses tensors that share storage (views of one buffer)
        tensors[name] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": name}
    if obj is None or isinstance(obj, (bool, str, float)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: encode(v, tensors) for k, v in obj.items()}
        return {"__items__": [[encode(k, tensors), encode(v, tensors)] for k, v in obj.items()]}
    raise DistillError(
        f"resume state holds a {type(obj).__name__}, which a checkpoint stores only as "
        "tensors, numbers, strings, lists and dicts; return those from state_dict()"
    )


def decode(skeleton, tensors: dict[str, torch.Tensor]):
    """The inverse of `encode`."""
    if isinstance(skeleton, list):
        return [decode(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if set(skeleton) == {"__tensor__"}:
        return tensors[skeleton["__tensor__"]]
    if set(skeleton) == {"__tuple__"}:
        return tuple(decode(v, tensors) for v in skeleton["__tuple__"])
    if set(skeleton) == {"__items__"}:
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in skeleton["__items__"]}
    return {k: decode(v, tensors) for k, v in skeleton.items()}


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def is_pickle(path: Path) -> bool:
    """Whether `path` looks like a `torch.save` file (a zip archive or a bare pickle) rather
    than safetensors (an 8-byte header length, then the JSON header)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def pickle_refusal(old: Path, new: Path) -> DistillError:
    """The error for a pickled checkpoint `old`, naming the command that converts it to `new`."""
    return DistillError(
        f"{old} is a pickled checkpoint, which resuming never unpickles (it could run any "
        f"code); if you trust it, convert it once: `python -m datadistill.convert_state {old} "
        f"{new}`, or delete it to start afresh"
    )


def save_state(path: Path, state) -> None:
    """Write `state` (see the module docstring for what it may hold) atomically to `path`."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(state, tensors)
    header = json.dumps({"format_version": FORMAT_VERSION, "state": skeleton})
    atomic.write_bytes(path, st.save(tensors, metadata={STATE_KEY: header}))


def load_state(path: Path):
    """The state `save_state` wrote; a pickle, a foreign or a corrupt file is refused."""
    path = Path(path)
    if path.is_file() and is_pickle(path):
        raise pickle_refusal(path, path.with_suffix(".safetensors"))
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(STATE_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        header = json.loads(raw) if raw is not None else None
    except (safetensors.SafetensorError, OSError, ValueError) as e:
        raise DistillError(
            f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to start afresh"
        ) from None
    if header is None:
        raise DistillError(
            f"checkpoint {path} is unreadable (no {STATE_KEY} metadata: not a datadistill "
            "checkpoint); delete it to start afresh"
        )
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise DistillError(f"checkpoint {path} is newer than this library; upgrade datadistill")
    return decode(header["state"], tensors)


def refuse_pickled(folder: Path, current: str) -> None:
    """Refuse to resume a run folder whose only checkpoint is an old pickled one: starting
    afresh instead would silently throw its iterations away."""
    old = folder / PICKLED_FILE
    if old.exists() and not (folder / current).exists():
        raise pickle_refusal(old, folder / current)


def save(path: Path, *, param, stepper, objective, generator, state: dict) -> None:
    """The outer loop's checkpoint: the parameterisation, the optimiser state (under the keys
    the `Stepper` chooses: "opt" for images, "opts" for graphs), the objective's inner state,
    the seeded generator, torch's global RNG and the loop's counters."""
    save_state(
        path,
        {
            "param": param.state_dict(),
            **stepper.state_dict(),
            "objective": objective.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": dict(state),
        },
    )


def load(path: Path, *, param, stepper, objective, generator) -> dict:
    """Restore every piece in place and return the loop's counters."""
    blob = load_state(path)
    try:
        param.load_state_dict(blob["param"])
        stepper.load_state_dict(blob)
        objective.load_state_dict(blob["objective"])
        generator.set_state(blob["generator"])
        torch.set_rng_state(blob["torch_rng"])
        return blob["state"]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DistillError(
            f"checkpoint {path} does not belong to this run ({type(e).__name__}: another method, "
            "size or version wrote it); delete it to start afresh, or write elsewhere (--out)"
        ) from e
