"""The manifest format: strict parsing with errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.manifest import (
    FORMAT_VERSION,
    Agreement,
    Manifest,
    ManifestError,
    Quantization,
    TensorInfo,
    Variant,
    load_manifest,
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
