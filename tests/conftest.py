"""Shared fixtures. The conversion fixture runs the real toolchain on the real weights once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.calibration import DEFAULT_VALIDATION_DIR
from converter.model import default_weights_path

# Small enough to convert all variants in well under a minute, big enough for real boxes.
TEST_SIZE = (192, 256)
SAMPLES = DEFAULT_VALIDATION_DIR


@pytest.fixture(scope="session")
def weights() -> Path:
    return default_weights_path()


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output folder of ``convert-for-device`` run on the real weights at TEST_SIZE, all variants."""
    from converter.cli import main

    out = tmp_path_factory.mktemp("converted")
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
    assert main(["--out", str(out), "--input-size", size, "--threads", "2", "--force"]) == 0
    return out


@pytest.fixture(scope="session")
def model_dir(converted: Path) -> Path:
    return converted / f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"


def sample_words(name: str) -> list[dict]:
    """Ground-truth word quads of a project-made sample image."""
    return json.loads((SAMPLES / f"{Path(name).stem}.json").read_text())["words"]


@pytest.fixture
def broker(tmp_path: Path):
    """A real mosquitto on a free port with its own config file, stopped after the test."""
    from tests.mqtt_helpers import mosquitto

    with mosquitto(tmp_path) as running:
        yield running
