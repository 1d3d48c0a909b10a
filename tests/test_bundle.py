"""A converter output folder on the device: the bundle's two roles, older folders, and what probe says.

On the real conversion (coarse model TEST_SIZE, tile model TEST_TILE_SIZE) and the real TFLite
runtime; the older folders are made from it (format_version 1 is the same fields).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.config.settings import ModelConfig
from edge.models.inference import build_runners
from edge.models.manifest import MANIFEST_NAME, ManifestError, load_manifest
from edge.models.selection import CACHE_FILE
from tests import daemon_helpers
from tests.conftest import SAMPLES, TEST_SIZE, TEST_TILE_SIZE, size_name

pytestmark = pytest.mark.conversion


def linked_copy(model_dir: Path, target: Path) -> Path:
    """``model_dir`` with its model files linked, not copied, and its manifest a file of its own."""
    target.mkdir(parents=True)
    for path in model_dir.iterdir():
        if path.name == MANIFEST_NAME:
            (target / path.name).write_text(path.read_text())
        else:
            (target / path.name).symlink_to(path)
    return target


def config(folder: Path) -> ModelConfig:
    return ModelConfig(dir=str(folder), num_threads=1)


def test_a_bundle_runs_a_coarse_and_a_tile_model_each_chosen_and_cached(converted: Path, tmp_path: Path) -> None:
    runners = build_runners(config(converted), tmp_path)
    assert runners.tile is not runners.coarse
    assert (runners.coarse.input_hw, runners.tile.input_hw) == (TEST_SIZE, TEST_TILE_SIZE)
    for runner, (height, width) in ((runners.coarse, TEST_SIZE), (runners.tile, TEST_TILE_SIZE)):
        assert runner(np.full((height, width, 3), 128, np.uint8)).shape == (height // 2, width // 2, 2)
        assert runner.choice.reason.startswith("fastest measured on this device")
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 2  # one choice per model folder
    again = build_runners(config(converted), tmp_path)
    assert again.coarse.choice.reason.startswith("cached: ") and again.tile.choice.reason.startswith("cached: ")


def test_a_model_folder_plays_both_roles_with_one_runner(model_dir: Path, tmp_path: Path) -> None:
    runners = build_runners(config(model_dir), tmp_path)
    assert runners.tile is runners.coarse and runners.coarse.input_hw == TEST_SIZE


def test_a_model_folder_from_before_bundles_still_loads(model_dir: Path, tmp_path: Path) -> None:
    old = linked_copy(model_dir, tmp_path / "models" / size_name(TEST_SIZE))
    manifest = json.loads((old / MANIFEST_NAME).read_text())
    manifest["format_version"] = 1
    for variant in manifest["variants"]:  # what that converter recorded for the Edge TPU
        if variant["edgetpu"]:
            del variant["edgetpu"]["activation"], variant["edgetpu"]["parameters"]
            variant["edgetpu"].get("compiler", {}).pop("ran", None)
    (old / MANIFEST_NAME).write_text(json.dumps(manifest))
    runners = build_runners(config(old), tmp_path / "state")
    assert runners.tile is runners.coarse and runners.coarse.input_hw == TEST_SIZE
    probe = daemon_helpers.craft_edge("probe", "--model", str(old), "--state-dir", str(tmp_path / "state"))
    assert probe.returncode == 0, probe.stderr
    assert f"model folder: {old} (coarse and tile model)" in probe.stdout
    assert (f"edge tpu, tile model: not compiled; on an x86-64 Debian/Ubuntu machine with edgetpu_compiler, run: "
            f"edgetpu_compiler -s -o {old} {old}/craft_{size_name(TEST_SIZE)}_int8-tpu.tflite") in probe.stdout
    assert "largest activation" not in probe.stdout  # not recorded before format 2


def test_an_older_output_folder_is_one_line_naming_what_it_holds(model_dir: Path, tmp_path: Path) -> None:
    parent = tmp_path / "models"
    linked_copy(model_dir, parent / size_name(TEST_SIZE))
    (parent / "report.md").write_text("# an older report\n")
    result = daemon_helpers.craft_edge("detect", str(SAMPLES / "chelsea_02.jpg"), "--model", str(parent),
                                       "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"craft-edge: error: {parent} has no manifest.json but holds the model folders {size_name(TEST_SIZE)} (an "
        f"older convert-for-device's output, or a conversion that did not finish): give one of them, e.g. "
        f"{parent / size_name(TEST_SIZE)}, or convert again"]


def test_a_bad_index_is_one_line_naming_the_key(converted: Path, model_dir: Path, tile_dir: Path,
                                                tmp_path: Path) -> None:
    bundle = tmp_path / "models"
    for folder in (model_dir, tile_dir):
        linked_copy(folder, bundle / folder.name)
    index = json.loads((converted / MANIFEST_NAME).read_text())
    index["models"]["tile"] = "288x288"
    (bundle / MANIFEST_NAME).write_text(json.dumps(index))
    with pytest.raises(ManifestError, match=rf"^{bundle}/manifest.json.models.tile: {bundle}/288x288 has no "):
        build_runners(config(bundle), tmp_path)
    result = daemon_helpers.craft_edge("probe", "--model", str(bundle), "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"craft-edge: error: {bundle}/manifest.json.models.tile: {bundle}/288x288 "
                                          "has no manifest.json"]


def test_detect_and_probe_take_the_bundle(converted: Path, model_dir: Path, tile_dir: Path, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    detect = daemon_helpers.craft_edge("detect", str(SAMPLES / "chelsea_02.jpg"), "--model", str(converted),
                                       "--variant", "int8", "--json", "--state-dir", state)
    assert detect.returncode == 0, detect.stderr
    assert json.loads(detect.stdout)["boxes"]
    probe = daemon_helpers.craft_edge("probe", "--model", str(converted), "--state-dir", state)
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert f"model folders: coarse {model_dir}, tile {tile_dir}" in lines
    assert any(line.startswith("would use: ") for line in lines)
    assert any(line.startswith("tile model would use: ") for line in lines)
    activation = load_manifest(tile_dir).variant("int8-tpu").edgetpu["activation"]
    assert f"edge tpu, tile model: {activation['message']}" in lines
    assert "expected to map fully" in activation["message"]
    tpu_file = tile_dir / f"craft_{size_name(TEST_TILE_SIZE)}_int8-tpu.tflite"
    assert lines[-1] == ("edge tpu, tile model: not compiled; on an x86-64 Debian/Ubuntu machine with "
                         f"edgetpu_compiler, run: edgetpu_compiler -s -o {tile_dir} {tpu_file}")
