"""Check dynamodel's import graph: no cycles between modules, and every import goes down the layers.

Usage: python .ci/import_graph.py [package-dir]   (exit status 1 and a report when the check fails)

Every import counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (they never run). ``from package import submodule`` is an edge to the
submodule; importing a name defined in a package's ``__init__`` is an edge to that ``__init__``.
The layers, lowest first, are listed in LAYERS; a module may import its own layer and the ones
below, never one above.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# Lowest first. A module belongs to the first layer whose prefix matches its dotted name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("dynamodel._version", "dynamodel.core")),
    ("io", ("dynamodel.io",)),
    ("modelling", ("dynamodel.modelling",)),
    ("operations", ("dynamodel.ops", "dynamodel.schema")),
    ("facade", ("dynamodel", "dynamodel.model")),
    (
        "tooling",
        (
            "dynamodel.cli",
            "dynamodel.migrations",
            "dynamodel.local",
            "dynamodel.demo",
            "dynamodel.testing",
            "dynamodel.inprocess",
            "dynamodel.pytest_plugin",
        ),
    ),
]


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package at ``root``."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any depth, TYPE_CHECKING blocks excluded)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name in modules]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source not in modules:
                    continue
                submodules = [f"{source}.{alias.name}" for alias in node.names]
                targets = [s for s in submodules if s in modules]
                if len(targets) < len(submodules):  # some names come from the module itself
                    targets.append(source)
            graph[name].update(t for t in targets if t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def layer_of(module: str) -> int:
    """Position of ``module``'s layer in LAYERS (the most specific prefix wins)."""
    best, best_length = len(LAYERS), -1
    for position, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = position, len(prefix)
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports a layer above its own."""
    return sorted(
        (source, target)
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )


def problems(root: Path) -> list[str]:
    """Every cycle and upward import in the package at ``root``, as readable lines."""
    graph = edges(module_names(root))
    lines = []
    for component in cycles(graph):
        lines.append(f"import cycle among {len(component)} modules:")
        members = set(component)
        for module in component:
            lines.append(f"  {module} -> {', '.join(sorted(graph[module] & members))}")
    for source, target in upward_imports(graph):
        lines.append(
            f"layer violation: {source} ({LAYERS[layer_of(source)][0]}) imports "
            f"{target} ({LAYERS[layer_of(target)][0]})"
        )
    return lines


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent / "dynamodel")
    found = problems(root)
    for line in found:
        print(line)
    if found:
        return 1
    count = len(module_names(root))
    print(f"import graph: {count} modules, no cycle, every import goes down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
