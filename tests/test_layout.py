"""The code's layering: ``edge/`` never imports the workstation toolchain or ``converter/``, and
its modules import each other without cycles (checked on the source, so a cycle hidden by import
order still shows)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.daemon_helpers import REPO

EDGE = REPO / "edge"
FORBIDDEN = ("torch", "tensorflow", "onnx", "onnxruntime", "onnx2tf", "converter")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports; with ``top_level_only``, those run at import time (not in functions
    or under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if top_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found


def test_edge_never_imports_the_toolchain_or_the_converter() -> None:
    for path in EDGE.rglob("*.py"):
        bad = {name for name in imports(path, top_level_only=False) if name.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_edge_modules_import_each_other_without_cycles() -> None:
    modules = {module_name(path): path for path in EDGE.rglob("*.py")}
    graph = {name: {m for m in imports(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    # a module's package __init__ runs first; that edge is implied, not a cycle
    state: dict[str, str] = {}

    def walk(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target):], target] if target in trail else [name, target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                walk(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])


def test_every_edge_module_imports_on_its_own() -> None:
    names = sorted(module_name(p) for p in EDGE.rglob("*.py") if "picamera2" not in p.name)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for name in names:  # a fresh interpreter each, so no earlier import can hide a cycle
        result = subprocess.run([sys.executable, "-c", code, name], cwd=REPO, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"{name}: {result.stderr.strip().splitlines()[-1:]}"
