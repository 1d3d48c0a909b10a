"""The device-only venv runs every test module outside CONVERTER_TEST_MODULES: none of them may pull
in the converter's stack when imported (scripts/test-device.sh would fail to collect them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import CONVERTER_TEST_MODULES

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "tensorflow", "onnx", "onnx2tf", "onnxruntime")


def test_device_share_of_the_suite_imports_no_converter_stack() -> None:
    modules = sorted(f"tests.{p.stem}" for p in (REPO / "tests").glob("test_*.py")
                     if p.name not in CONVERTER_TEST_MODULES)
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert all((REPO / "tests" / name).is_file() for name in CONVERTER_TEST_MODULES)  # the list is not stale
