"""The rules of the house, read from the import statements of src/fovflow.

Arrows point down only: a module imports its own package and the layers below it, never a
layer above or another package of its own layer. No circle of imports. Only the GUI imports
Qt; processing imports only the numeric libraries.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

# Bottom first. The command line is the outermost shell: it starts the GUI (`fovflow gui`).
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer) for layer in (
    {"fovflow", "fovflow.errors", "fovflow.progress", "fovflow.ranges", "fovflow.kinetics"},
    {"fovflow.processing"},  # pure functions over arrays
    {"fovflow.io"},  # files: reads and writes what processing makes (labels, lineage)
    {"fovflow.execution", "fovflow.plugins"},
    {"fovflow.workflow", "fovflow.analysis", "fovflow.evaluation"},  # the use cases
    {"fovflow.gui", "fovflow.napari_plugin"},
    {"fovflow.cli"},
    {"fovflow.__main__"},
))
PROCESSING_MAY_IMPORT = {"numpy", "scipy", "skimage", "cv2", "fovflow"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((SOURCE / "fovflow").rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imports(module: str, *, at_run_time: bool) -> set[str]:
    """Every name `module` imports (``a.b`` for ``from a import b`` too); with `at_run_time`,
    not those under ``if TYPE_CHECKING:`` (annotations only: they import nothing)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    if at_run_time:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(child) for statement in node.body
                               for child in ast.walk(statement))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _internal(names: set[str], module: str) -> set[str]:
    return {name for name in names if name in MODULES and name != module}


def _layer(module: str) -> tuple[int, str]:
    """The layer index of `module` and the unit of it that owns `module`: its package, or the
    base (the top-level modules below everything, which may import one another)."""
    for index, layer in enumerate(LAYERS):
        for unit in layer:
            if module == unit or (unit != "fovflow" and module.startswith(f"{unit}.")):
                return index, unit if index else "base"
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_every_module_belongs_to_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_or_beside_it() -> None:
    wrong = []
    for module in MODULES:
        level, unit = _layer(module)
        for name in sorted(_internal(_imports(module, at_run_time=False), module)):
            other_level, other_unit = _layer(name)
            if other_level > level or (other_level == level and other_unit != unit):
                wrong.append(f"{module} imports {name}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_there_is_no_circle_of_imports() -> None:
    graph = {module: _internal(_imports(module, at_run_time=True), module)
             for module in MODULES}
    assert _cycles(graph) == []


def test_only_the_gui_imports_qt() -> None:
    qt = [module for module in MODULES if not module.startswith("fovflow.gui")
          and any(name.split(".")[0] in ("PySide6", "shiboken6", "qtpy")
                  for name in _imports(module, at_run_time=False))]
    assert qt == []


def test_processing_imports_only_the_numeric_libraries() -> None:
    standard = sys.stdlib_module_names | {"__future__"}
    foreign = {f"{module}: {name}" for module in MODULES if module.startswith("fovflow.processing")
               for name in _imports(module, at_run_time=False)
               if name.split(".")[0] not in standard | PROCESSING_MAY_IMPORT}
    assert foreign == set()


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_circles_and_only_them(graph, expected) -> None:
    assert _cycles(graph) == expected
