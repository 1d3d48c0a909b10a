"""Shared fixtures. The conversion fixture runs the real toolchain on the real weights once per session.

Two environments run these tests. The main one has every extra and runs them all. The device-only
venv (scripts/test-device.sh: only ``.[device,test]``, the versions a Raspberry Pi gets) has no
converter stack: there the modules in CONVERTER_TEST_MODULES are not even collected, every other
test runs (``-m "not converter"``), and the converted models come from ``$CRAFT_EDGE_TEST_MODELS``.
Nothing here imports the converter at import time, so this file loads in both.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

import edge

# Small enough to convert all variants in well under a minute, big enough for real boxes.
TEST_SIZE = (192, 256)
TEST_TILE_SIZE = (160, 160)  # the smallest tile the converter takes: the bundle's second model, cheaply
TEST_SIZES = (TEST_SIZE, TEST_TILE_SIZE)
DATA = Path(__file__).resolve().parent.parent / "data"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
SAMPLES = Path(edge.__file__).resolve().parent / "samples"  # converter.calibration.DEFAULT_VALIDATION_DIR
MODELS_ENV = "CRAFT_EDGE_TEST_MODELS"
RECOGNIZER_FOLDER = "recognizer"  # converter.recognizer.FOLDER
TEST_RECOGNIZER_VARIANTS = "fp32,dynamic"

# Test modules that import the converter's stack (torch, TensorFlow, ONNX) when they are imported.
# Their tests get the `converter` marker; tests elsewhere that need it carry the marker themselves.
CONVERTER_TEST_MODULES = ("test_cli_errors.py", "test_conversion.py", "test_edgetpu.py", "test_model.py",
                          "test_onnx_export.py", "test_postprocess_official.py", "test_recognizer_conversion.py",
                          "test_upsample.py")
CONVERTER_STACK = all(importlib.util.find_spec(name) for name in ("torch", "tensorflow", "onnx"))
collect_ignore = [] if CONVERTER_STACK else list(CONVERTER_TEST_MODULES)


# .ci/run sets this: there a test whose prerequisite is missing (root for a tmpfs, systemd-analyze) fails
# instead of skipping, so that no essential test goes quietly unrun in CI.
REQUIRE_ALL = os.environ.get("CRAFT_EDGE_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose prerequisite this machine lacks; in CI (REQUIRE_ALL), fail it."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason}: CI must run this test (CRAFT_EDGE_REQUIRE_ALL=1)")
    pytest.skip(reason)


def data_module(name: str) -> ModuleType:
    """A module of the project's material generators in data/ (textrender, wordlayout: the DejaVu fonts
    needed, no photos), imported without leaving data/ on sys.path."""
    if not (DEJAVU / "DejaVuSansMono-Bold.ttf").is_file():
        unavailable("needs Debian's fonts-dejavu-core (scripts/ensure-packages.sh installs it)")
    sys.path.insert(0, str(DATA))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(DATA))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in CONVERTER_TEST_MODULES:
            item.add_marker(pytest.mark.converter)


@pytest.fixture(scope="session")
def weights() -> Path:
    from converter.model import default_weights_path

    return default_weights_path()


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output folder (a bundle) of ``convert-for-device`` run on the real weights, all variants: the
    coarse model at TEST_SIZE and the tile model at TEST_TILE_SIZE; and the recognizer, only fp32 (the
    reference) and dynamic (the CPU default), which saves converting and checking fp16.

    With ``$CRAFT_EDGE_TEST_MODELS`` set: that folder, used as it is when it already holds the models
    (the device-only run), else converted into (a main run; empty the folder to convert afresh).
    Tests must not change it: copy it before corrupting anything.
    """
    shared = os.environ.get(MODELS_ENV)
    out = Path(shared).resolve() if shared else tmp_path_factory.mktemp("converted")
    if shared and all((out / name / "manifest.json").is_file()
                      for name in ("", *map(size_name, TEST_SIZES), RECOGNIZER_FOLDER)):
        return out
    if not CONVERTER_STACK:
        pytest.fail(f"no converted models in ${MODELS_ENV} ({shared or 'unset'}) and no converter here to make them")
    from converter.cli import main

    assert main(["--out", str(out), "--input-size", size_name(TEST_SIZE), "--tile-size", size_name(TEST_TILE_SIZE),
                 "--recognizer-variants", TEST_RECOGNIZER_VARIANTS, "--threads", "2", "--force"]) == 0
    return out


@pytest.fixture(scope="session")
def model_dir(converted: Path) -> Path:
    """The coarse model's folder: a single model folder, which plays both roles when given alone."""
    return converted / size_name(TEST_SIZE)


@pytest.fixture(scope="session")
def tile_dir(converted: Path) -> Path:
    return converted / size_name(TEST_TILE_SIZE)


def sample_words(name: str) -> list[dict]:
    """Ground-truth word quads of a project-made sample image."""
    return json.loads((SAMPLES / f"{Path(name).stem}.json").read_text())["words"]


@pytest.fixture
def broker(tmp_path: Path):
    """A real mosquitto on a free port with its own config file, stopped after the test."""
    from tests.mqtt_helpers import mosquitto

    with mosquitto(tmp_path) as running:
        yield running


def quantization_of(path: Path) -> list[tuple[tuple, tuple]]:
    """(scales, zero points) of every quantised tensor of a model, sorted: models of one graph at two
    input sizes list the same tensors, though the converter may order their constants differently."""
    from edge.models.runtime import find_runtime

    interpreter = find_runtime().interpreter(path, 1)
    return sorted((tuple(detail["quantization_parameters"]["scales"]),
                   tuple(detail["quantization_parameters"]["zero_points"]))
                  for detail in interpreter.get_tensor_details() if len(detail["quantization_parameters"]["scales"]))
