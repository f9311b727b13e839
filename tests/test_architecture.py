"""The layering ARCHITECTURE.md states, checked on the source: arrows point down.

The import graph is built with `ast` from every module of core/ (`datadistill`) and apps/
(`datadistill_apps`), counting imports anywhere in a module (inside functions too, since a
deferred import is still a dependency) and resolving relative imports. Imports made by name at
run time (`importlib`: plugins' entry points, the modality providers) are not edges: that is
how a lower layer reaches an upper one without depending on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"datadistill": ROOT / "core", "datadistill_apps": ROOT / "apps"}
CLI = "datadistill.cli"


def module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            found[module_name(package, folder, path)] = path
    return found


def resolve(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (`from . import x` inside `name`)."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of `known` that `name` imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            # `from pkg import mod` depends on pkg.mod; `from pkg import name` on pkg
            base = resolve(name, path, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            # the deepest known module the target names (`a.b.c` may be a name in `a.b`)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None; iterative DFS."""
    colour = dict.fromkeys(edges, 0)  # 0 new, 1 on the stack, 2 done
    for start in sorted(edges):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(edges[start])))]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if colour[child] == 1:
                    path = [n for n, _ in stack]
                    return [*path[path.index(child) :], child]
                if colour[child] == 0:
                    colour[child] = 1
                    stack.append((child, iter(sorted(edges[child]))))
                    break
            else:
                colour[node] = 2
                stack.pop()
    return None


def is_command_module(name: str) -> bool:
    """May this module use the CLI's option helpers? The CLI itself, and in apps/ the
    module each app's commands live in (its plugin or cli file)."""
    if name == CLI or name.startswith(CLI + "."):
        return True
    parts = name.split(".")
    return parts[0] == "datadistill_apps" and len(parts) == 3 and parts[2] in ("plugin", "cli")


def test_the_graph_sees_what_it_should():
    edges = graph()
    assert "datadistill.loop" in edges and "datadistill_apps.privacy.plugin" in edges
    assert "datadistill.loop" in edges["datadistill.distill"]  # absolute import
    assert "datadistill.methods.registry" in edges["datadistill.methods.gradient"]


def test_relative_imports_resolve(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for rel in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py"):
        (pkg / rel).write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    found = {module_name("pkg", pkg, p): p for p in pkg.rglob("*.py")}
    edges = {n: imports(n, p, set(found)) for n, p in found.items()}
    assert edges["pkg.a"] == {"pkg.sub.b"}
    assert find_cycle(edges) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_find_cycle_is_none_on_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_only_command_modules_import_the_cli(package):
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.startswith(package + ".") or name == package
        for target in targets
        if (target == CLI or target.startswith(CLI + ".")) and not is_command_module(name)
    )
    assert not bad, "; ".join(bad)


def test_no_private_name_crosses_modules():
    """`from x import _name` between the project's modules (tests and scripts excepted)."""
    found = modules()
    bad = []
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = resolve(name, path, node)
                if target.split(".")[0] in PACKAGES:
                    bad += [f"{name}: {target}.{a.name}" for a in node.names if a.name[0] == "_"]
    assert not bad, "; ".join(bad)


def test_tests_and_scripts_import_no_private_name():
    """Tests and experiment scripts use what a module exports, as any caller would: a helper
    two test files share lives in a tests module under a public name."""
    bad = []
    for path in sorted([*(ROOT / "tests").glob("*.py"), *(ROOT / "experiments").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                names = [a.name for a in node.names]
                bad += [f"{path.name}: {node.module}.{n}" for n in names if n[0] == "_" != n[1]]
    assert not bad, "; ".join(bad)
