"""The manifest format: strict parsing with errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.models.manifest import (
    FORMAT_VERSION,
    Agreement,
    BundleIndex,
    Manifest,
    ManifestError,
    ModelFolders,
    Quantization,
    Roles,
    TensorInfo,
    Variant,
    load_manifest,
    model_folders,
    parse_manifest,
)


def example() -> Manifest:
    tensor = TensorInfo(name="pixels", shape=[1, 64, 96, 3], dtype="uint8", layout="NHWC",
                        quantization=Quantization(1.0, 0))
    agreement = Agreement("pytorch-fp32", 3, 0.1, 0.01, 0.2, 0.02, 0.5, 10, 10, 1.0, 0.9)
    variant = Variant(name="int8", file="m.tflite", sha256="ab" * 32, bytes=10, target="cpu", input=tensor,
                      output=tensor, op_counts={"CONV_2D": 27}, transpose_count=0, agreement=agreement)
    return Manifest(FORMAT_VERSION, "2026-01-01T00:00:00+00:00", "0.1.0", "craft.pth", "cd" * 32, [64, 96],
                    "in graph", {"torch": "2.13.0"}, ["a.jpg"], [variant])


def test_round_trip(tmp_path: Path) -> None:
    manifest = example()
    manifest.write(tmp_path)
    assert load_manifest(tmp_path) == manifest


def test_missing_field_is_named() -> None:
    data = json.loads(example().to_json())
    del data["variants"][0]["sha256"]
    with pytest.raises(ManifestError, match=r"m.json.variants\[0\].sha256: missing"):
        parse_manifest(json.dumps(data), "m.json")


def test_wrong_type_is_named() -> None:
    data = json.loads(example().to_json())
    data["variants"][0]["input"]["shape"] = "1x64x96x3"
    with pytest.raises(ManifestError, match=r"variants\[0\].input.shape: expected a list"):
        parse_manifest(json.dumps(data))


def test_unknown_field_and_target() -> None:
    data = json.loads(example().to_json())
    data["variants"][0]["colour"] = "blue"
    with pytest.raises(ManifestError, match="colour: unknown key"):
        parse_manifest(json.dumps(data))
    data = json.loads(example().to_json())
    data["variants"][0]["target"] = "gpu"
    with pytest.raises(ManifestError, match="target: 'gpu' is not one of"):
        parse_manifest(json.dumps(data))


def test_malformed_json_and_version(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest("{not json")
    data = json.loads(example().to_json())
    data["format_version"] = 99
    with pytest.raises(ManifestError, match="format_version 99"):
        parse_manifest(json.dumps(data))
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path)


# -- bundles ----------------------------------------------------------------------------------------
def bundle(tmp_path: Path, coarse: str = "480x640", tile: str = "288x288") -> Path:
    """A bundle as convert-for-device writes it: an index and one model folder per role."""
    for name in {coarse, tile}:
        (tmp_path / name).mkdir()
        example().write(tmp_path / name)
    BundleIndex(FORMAT_VERSION, "2026-01-01T00:00:00+00:00", "0.1.0", Roles(coarse, tile)).write(tmp_path)
    return tmp_path


def index_with(tmp_path: Path, change: dict) -> Path:
    path = bundle(tmp_path) / "manifest.json"
    data = json.loads(path.read_text())
    data["models"].update(change)
    path.write_text(json.dumps(data))
    return tmp_path


def test_a_bundle_names_a_folder_per_role(tmp_path: Path) -> None:
    folders = model_folders(bundle(tmp_path))
    assert (folders.coarse, folders.tile) == (tmp_path / "480x640", tmp_path / "288x288")
    assert not folders.shared


def test_one_folder_may_play_both_roles(tmp_path: Path) -> None:
    assert model_folders(bundle(tmp_path, "480x640", "480x640")).shared


def test_a_format_1_model_folder_plays_both_roles(tmp_path: Path) -> None:
    """What convert-for-device wrote before bundles: the same fields, format_version 1."""
    data = json.loads(example().to_json())
    data["format_version"] = 1
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    assert model_folders(tmp_path) == ModelFolders(tmp_path, tmp_path)
    assert load_manifest(tmp_path).input_size == [64, 96]


def test_an_older_output_folder_is_one_line_naming_its_model_folders(tmp_path: Path) -> None:
    for name in ("480x640", "192x256"):
        (tmp_path / name).mkdir()
        example().write(tmp_path / name)
    (tmp_path / "report.md").write_text("")
    with pytest.raises(ManifestError) as caught:
        model_folders(tmp_path)
    message = str(caught.value)
    assert message == (f"{tmp_path} has no manifest.json but holds the model folders 192x256, 480x640 (an older "
                       f"convert-for-device's output, or a conversion that did not finish): give one of them, e.g. "
                       f"{tmp_path / '192x256'}, or convert again")


@pytest.mark.parametrize(("change", "expected"), [
    ({"tile": None}, r"manifest.json.models.tile: expected str, got NoneType"),
    ({"colour": "480x640"}, r"manifest.json.models.colour: unknown key \(known: coarse, tile, recognizer\)"),
    ({"tile": "../elsewhere"}, r"manifest.json.models.tile: '../elsewhere' is not the name of a folder beside"),
    ({"tile": ".."}, r"manifest.json.models.tile: '..' is not the name of a folder beside"),
    ({"tile": "320x320"}, r"manifest.json.models.tile: .*/320x320 has no manifest.json"),
])
def test_a_bad_index_is_one_line_naming_the_key(tmp_path: Path, change: dict, expected: str) -> None:
    with pytest.raises(ManifestError, match=expected) as caught:
        model_folders(index_with(tmp_path, change))
    assert "\n" not in str(caught.value)


def test_an_index_missing_a_role_or_of_another_version(tmp_path: Path) -> None:
    path = bundle(tmp_path) / "manifest.json"
    data = json.loads(path.read_text())
    del data["models"]["tile"]
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"manifest.json.models.tile: missing"):
        model_folders(tmp_path)
    data["format_version"] = 4
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="format_version 4, this craft-edge reads bundle indexes of format 2, 3"):
        model_folders(tmp_path)


def test_an_index_is_not_a_model_folders_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"the index of a model bundle \(coarse 480x640, tile 288x288\)"):
        load_manifest(bundle(tmp_path))
