"""The code's layering: the folders of ``edge/`` are its parts, and each part imports only the parts
ALLOWED below it (``edge/__init__.py`` draws the order); ``edge/`` never imports the workstation toolchain or
``converter/``; its modules import each other without cycles (checked on the source, so a cycle
hidden by import order still shows)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_helpers import REPO

EDGE = REPO / "edge"
FORBIDDEN = ("torch", "tensorflow", "onnx", "onnxruntime", "onnx2tf", "converter")
PARTS = ("config", "sources", "recognition", "models", "messaging", "detection", "service", "commands")
# what each part may import besides itself and ``edge`` (the version)
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "sources": {"config"},
    "recognition": {"config"},
    "models": {"config", "recognition"},  # load_reader hands back a recognition Reader
    "messaging": {"config"},
    "detection": {"config"},
    "service": {"config", "sources", "recognition", "models", "messaging", "detection"},
    "commands": {"config", "sources", "recognition", "models", "messaging", "detection", "service"},
}
# modules the config takes its choices from; they import nothing of edge, so config stays the bottom
VOCABULARIES = {"edge.models.variants", "edge.detection.tiling"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in EDGE.rglob("*.py")}


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports; with ``top_level_only``, those run at import time (not in functions
    or under ``if TYPE_CHECKING``). ``from edge.models import variants`` counts as ``edge.models.variants``."""
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
                submodules = {f"{child.module}.{alias.name}" for alias in child.names} & MODULES.keys()
                found.update(submodules or {child.module})
            visit(child)

    visit(tree)
    return found


def part_of(module: str) -> str | None:
    """``edge.models.backends.cpu`` -> ``models``; None for ``edge`` itself and for anything outside it."""
    names = module.split(".")
    return names[1] if names[0] == "edge" and len(names) > 1 and names[1] in PARTS else None


def layering_breaches(modules: dict[str, Path]) -> list[str]:
    """Every import, at any depth (in functions and under TYPE_CHECKING too), that crosses the layering."""
    breaches = []
    for name, path in sorted(modules.items()):
        part = part_of(name)
        if part is None:
            continue
        for target in sorted(imports(path, top_level_only=False)):
            other = part_of(target)
            if other is None or other == part or other in ALLOWED[part]:
                continue
            if part == "config" and target in VOCABULARIES:
                continue
            breaches.append(f"{name} ({part}) imports {target} ({other})")
    return breaches


def test_edge_is_its_parts() -> None:
    """``ls edge/`` is the architecture: one folder per part and nothing else of code beside them."""
    loose = sorted(p.name for p in EDGE.glob("*.py") if p.name != "__init__.py")
    folders = sorted(p.name for p in EDGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert loose == [], f"modules outside the parts: {loose}"
    assert folders == sorted(PARTS)


def test_each_part_imports_only_the_parts_below_it() -> None:
    breaches = layering_breaches(MODULES)
    assert not breaches, "\n".join(breaches)


def test_edge_uses_absolute_imports_only() -> None:
    """The layering check reads absolute imports; a relative one (``from ..service import daemon``) would
    slip past it."""
    relative = [f"{path.relative_to(REPO)}:{node.lineno}" for path in EDGE.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.level]
    assert relative == []


def test_the_command_line_loads_no_camera_model_or_mqtt_stack_before_a_command_runs() -> None:
    """``--help``, ``--version`` and ``probe`` must work where OpenCV or paho is broken (a diagnostic)."""
    code = ("import sys; import edge.commands.main; "
            "print(sorted(m for m in ('cv2', 'paho', 'edge.models.inference', 'edge.detection.detector') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_config_vocabularies_import_nothing_of_edge() -> None:
    for name in sorted(VOCABULARIES):
        assert {m for m in imports(MODULES[name], top_level_only=False) if m.startswith("edge")} == set(), name


@pytest.mark.parametrize(("module", "added", "expected"), [
    ("edge.messaging.payload", "from edge.detection.detector import Detection",
     "edge.messaging.payload (messaging) imports edge.detection.detector (detection)"),
    ("edge.detection.detector", "def later() -> None:\n    from edge.service.daemon import Daemon",
     "edge.detection.detector (detection) imports edge.service.daemon (service)"),
    ("edge.models.selection", "from edge.commands import common",
     "edge.models.selection (models) imports edge.commands.common (commands)"),
    ("edge.config.settings", "from edge.sources import FACTORIES",
     "edge.config.settings (config) imports edge.sources (sources)"),
])
def test_a_forbidden_import_is_named(tmp_path: Path, module: str, added: str, expected: str) -> None:
    """The check above can fail: a forbidden import added to a copy of a module (at its top level or
    inside a function) is reported with the module and what it imports."""
    copy = tmp_path / "module.py"
    copy.write_text(f"{MODULES[module].read_text()}\n{added}\n")
    assert expected in layering_breaches({module: copy})


def test_every_source_kind_the_config_accepts_has_a_factory() -> None:
    from edge.config.settings import SOURCE_KINDS
    from edge.sources import FACTORIES

    assert tuple(FACTORIES) == SOURCE_KINDS


def test_edge_never_imports_the_toolchain_or_the_converter() -> None:
    for path in EDGE.rglob("*.py"):
        bad = {name for name in imports(path, top_level_only=False) if name.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_edge_modules_import_each_other_without_cycles() -> None:
    graph = {name: {m for m in imports(path, top_level_only=True) if m in MODULES and m != name}
             for name, path in MODULES.items()}
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


def test_no_edge_module_is_over_350_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in EDGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 350}
    assert long == {}


def test_every_edge_module_imports_on_its_own() -> None:
    names = sorted(name for name in MODULES if "picamera2" not in name and not name.endswith("__main__"))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for name in names:  # a fresh interpreter each, so no earlier import can hide a cycle
        result = subprocess.run([sys.executable, "-c", code, name], cwd=REPO, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"{name}: {result.stderr.strip().splitlines()[-1:]}"
