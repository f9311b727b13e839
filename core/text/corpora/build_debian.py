"""Build `debian_descriptions.tsv`: Debian package summaries labelled by archive section.

    apt-get update && python core/text/corpora/build_debian.py

Reads the package index through `apt-cache dumpavail` (Debian 12 "bookworm", main, amd64
when the committed file was built), keeps the one-line `Description` of packages in
SECTIONS, one package per source package (a source's binaries share wording, and would
leak between train and test), drops repeated descriptions, then draws PER_CLASS of each
section with a fixed seed and splits them TRAIN / the rest. The output depends on the
machine's package lists, so the built file is committed and this script documents it.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

SECTIONS = ("games", "graphics", "net", "science", "sound", "text")
PER_CLASS = 380  # graphics, the smallest, has 382 sources in bookworm
TRAIN = 300
SEED = 0
OUT = Path(__file__).with_name("debian_descriptions.tsv")


def records(text: str):
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value.strip()
        if fields:
            yield fields


def main() -> int:
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], capture_output=True, text=True, check=True
    ).stdout
    by_section: dict[str, dict[str, tuple[str, str]]] = {s: {} for s in SECTIONS}
    for r in sorted(records(dump), key=lambda r: r.get("Package", "")):
        section = r.get("Section", "")
        if section not in by_section or "Description" not in r:
            continue
        source = r.get("Source", r["Package"]).split(" ")[0]
        by_section[section].setdefault(source, (r["Package"], r["Description"]))
    rng = random.Random(SEED)
    rows = []
    for section in SECTIONS:
        seen, unique = set(), []
        for package, desc in by_section[section].values():
            key = desc.lower()
            if key not in seen and "\t" not in desc:
                seen.add(key)
                unique.append((package, desc))
        if len(unique) < PER_CLASS:
            print(f"section {section} has only {len(unique)} descriptions", file=sys.stderr)
            return 1
        rng.shuffle(unique)
        for i, (package, desc) in enumerate(unique[:PER_CLASS]):
            rows.append(("train" if i < TRAIN else "test", section, package, desc))
    lines = ["split\tlabel\tpackage\tdescription"] + ["\t".join(r) for r in rows]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(rows)} descriptions, {len(SECTIONS)} sections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
