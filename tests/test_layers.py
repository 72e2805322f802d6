"""The layers of the code (README, "How the code is laid out"): no import reaches up, no import circle.

Imports are read from the source with :mod:`ast`, module level and inside functions alike (only those under
``if TYPE_CHECKING:`` are left out: they never run). A module may import its own layer and the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"cscprog": ROOT / "cscprog", "cscprog.signatures": ROOT / "signatures",
           "cscprog.optimizers": ROOT / "optimizers"}

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "context", "files", "redaction", "stamps", "roles", "concurrency", "testing"),
    ("framework",),
    ("data", "samples"),
    ("config",),
    ("cache",),
    ("lm",),
    ("signatures",),
    ("runs",),
    ("csconv", "rolecs", "agents", "evaluation"),
    ("finetune", "arena", "view", "optimizers"),
    ("demo",),
    ("cli",),
)
"""Lowest first; the names are the packages and modules right under ``cscprog``."""


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) < 2:
        return 0  # the package root imports nothing when imported (test below): reading __version__ is free
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and to the README's layout section")


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, module: str, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import of a cscprog module."""
    found: list[tuple[str, int, bool]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names
                             if alias.name.startswith("cscprog"))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.startswith("cscprog"):
                    for alias in child.names:
                        target = f"{base}.{alias.name}"
                        found.append((target if target in known else base, child.lineno, in_function))
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_no_import_reaches_up_a_layer():
    known = modules()
    upward = []
    for module, path in sorted(known.items()):
        source = layer_of(module) if module != "cscprog" else len(LAYERS)  # the public API names every layer
        for target, line, in_function in imports(path, module, known):
            target_layer = layer_of(target)
            if target_layer > source:
                where = "inside a function" if in_function else "at module level"
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} {where} "
                              f"(layer {target_layer} above {source})")
    assert not upward, "\n".join(upward)


def test_no_import_circle_between_files():
    known = modules()
    graph = {module: {target for target, _, in_function in imports(path, module, known)
                      if not in_function and target in known and target != module}
             for module, path in known.items()}
    circles = []
    state: dict[str, int] = {}

    def walk(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*trail[trail.index(target):], target]))
            elif target not in state:
                walk(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert not circles, "\n".join(circles)


def test_the_package_root_imports_nothing_of_cscprog_when_imported():
    """``cscprog/__init__`` loads its public names on first use, so a low layer may read ``cscprog.__version__``."""
    known = modules()
    eager = [target for target, _, in_function in imports(known["cscprog"], "cscprog", known) if not in_function]
    assert eager == []


def test_the_layer_table_knows_every_package():
    for module in modules():
        layer_of(module)
