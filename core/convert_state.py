"""Convert a pickled resume state (`checkpoint.pt`, `<generator>.state.pt`) to safetensors.

    python -m datadistill.convert_state OLD NEW

Resuming never unpickles a file: a pickle can run any code. This one-off command reads OLD
with torch's restricted unpickler (`weights_only=True`: tensors, numbers, strings and
containers only, no code), which every checkpoint this library wrote passes, and writes NEW
in the format `datadistill.checkpoint` reads. A file the restricted unpickler refuses is not
converted: it holds objects this library never saved.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import torch

from datadistill import checkpoint
from datadistill.errors import DistillError


def convert(old: Path, new: Path) -> None:
    if not old.is_file():
        raise DistillError(f"{old} not found")
    if new.exists():
        raise DistillError(f"{new} exists; remove it or name another output")
    try:
        state = torch.load(old, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DistillError(
            f"{old} holds more than tensors and containers ({first}); not converted: delete it "
            "and start the run afresh"
        ) from None
    checkpoint.save_state(new, state)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m datadistill.convert_state",
                                description=__doc__.split("\n\n")[0])  # fmt: skip
    p.add_argument("old", type=Path, help="the pickled file (torch.save)")
    p.add_argument("new", type=Path, help="the safetensors file to write")
    args = p.parse_args(argv)
    try:
        convert(args.old, args.new)
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.new}; {args.old} can be deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
