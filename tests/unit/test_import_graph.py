"""The package's import graph: no circle between modules, no import up the floors (and the
unit tests' file names, which mirror its modules).

Floors, top to bottom: cli > report > pipeline > networks > recipe > metadata, weights >
io, config > ops, with the leaf modules (errors, operations, silent, the package's version)
below them all. Every import counts, at module level, inside functions (the lazy ones) and
under TYPE_CHECKING: each is a dependency a reader has to follow."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import facefix_cli

PACKAGE = Path(facefix_cli.__file__).resolve().parent
FLOORS = {
    "__main__": 10,
    "cli": 9,
    "report": 8,
    "pipeline": 7,
    "networks": 6,
    "recipe": 5,
    "metadata": 4,
    "weights": 4,
    "io": 3,
    "config": 3,
    "ops": 2,
    "errors": 0,
    "operations": 0,
    "silent": 0,
    "": -1,  # facefix_cli itself: __version__, which the leaf modules read
}


def module_name(path: Path) -> str:
    parts = ["facefix_cli", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> Iterator[str]:
    """The package's modules `path` imports; `from pkg import sub` is `pkg.sub`, not `pkg`."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        else:
            continue
        for name in names:
            while name not in modules and "." in name:
                name = name.rpartition(".")[0]
            if name in modules:
                yield name


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: {target for target in imports(path, modules) if target != name}
        for name, path in paths.items()
    }


def floor(module: str) -> tuple[str, int]:
    area = module.split(".")[1] if "." in module else ""
    return area, FLOORS[area]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_area_has_a_floor() -> None:
    assert {floor(module)[0] for module in import_graph()} <= set(FLOORS)


def test_no_import_circle() -> None:
    assert cycles(import_graph()) == []


def test_no_import_up_the_floors() -> None:
    upward = []
    for module, targets in sorted(import_graph().items()):
        area, level = floor(module)
        for target in sorted(targets):
            target_area, target_level = floor(target)
            if target_area != area and target_level >= level:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    # The graph test itself: a made-up circle and an io module reaching up into metadata.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert floor("facefix_cli.io.read")[1] <= floor("facefix_cli.metadata.carry")[1]


def test_every_unit_test_file_names_the_module_it_tests() -> None:
    """tests/unit/test_<area>_<module>.py mirrors facefix_cli/<area>/<module>.py (a package's
    own file names the package); this file, about the whole package, is the one exception."""
    modules = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.add("_".join(parts))
    here = Path(__file__).resolve()
    names = {p.stem.removeprefix("test_") for p in here.parent.glob("test_*.py") if p != here}
    assert names and sorted(names - modules) == []
