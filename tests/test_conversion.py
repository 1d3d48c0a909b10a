"""A real conversion of the real weights, every variant of both models of the bundle, checked against its
manifests and PyTorch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from converter.pipeline import FP32_MAX_ABS_DIFF
from converter.tflite_graph import read_graph
from converter.tflite_variants import VARIANTS
from edge.detection.detector import Detector
from edge.detection.postprocess import Thresholds
from edge.models.manifest import MODEL_FORMAT_VERSION, file_sha256, load_manifest, model_folders, recognizer_folder
from edge.models.runtime import find_runtime, load_model
from edge.sources.imageio import read_rgb
from tests.conftest import (
    RECOGNIZER_FOLDER,
    SAMPLES,
    TEST_SIZE,
    TEST_SIZES,
    TEST_TILE_SIZE,
    quantization_of,
    sample_words,
    size_name,
)

pytestmark = pytest.mark.conversion
each_model = pytest.mark.parametrize("size", TEST_SIZES, ids=map(size_name, TEST_SIZES))


def test_one_output_folder_holds_the_coarse_and_the_tile_model_and_the_recognizer(converted: Path) -> None:
    assert json.loads((converted / "manifest.json").read_text())["models"] == {
        "coarse": size_name(TEST_SIZE), "tile": size_name(TEST_TILE_SIZE), "recognizer": RECOGNIZER_FOLDER}
    folders = model_folders(converted)
    assert (folders.coarse, folders.tile) == (converted / size_name(TEST_SIZE), converted / size_name(TEST_TILE_SIZE))
    assert recognizer_folder(converted) == converted / RECOGNIZER_FOLDER
    assert sorted(p.name for p in converted.iterdir() if p.is_dir()) == sorted([*map(size_name, TEST_SIZES),
                                                                               RECOGNIZER_FOLDER])


@each_model
def test_every_variant_is_in_the_manifest(converted: Path, size: tuple[int, int]) -> None:
    manifest = load_manifest(converted / size_name(size))
    assert manifest.format_version == MODEL_FORMAT_VERSION  # older craft-edge versions read it
    assert [v.name for v in manifest.variants] == list(VARIANTS)
    assert manifest.input_size == list(size)
    assert manifest.toolchain["onnx2tf"] == "1.29.24"
    assert manifest.onnx_max_abs_diff is not None and manifest.onnx_max_abs_diff < 1e-3
    assert len(manifest.validation_images) == len([p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png")])


@each_model
def test_manifest_facts_match_the_files(converted: Path, size: tuple[int, int], weights: Path) -> None:
    model_dir = converted / size_name(size)
    manifest = load_manifest(model_dir)
    assert manifest.source_sha256 == file_sha256(weights)
    runtime = find_runtime()
    for variant in manifest.variants:
        path = model_dir / variant.file
        assert variant.sha256 == file_sha256(path), variant.name
        assert variant.bytes == path.stat().st_size
        graph = read_graph(path)
        assert variant.op_counts == graph.op_counts
        assert variant.transpose_count == graph.transpose_count == 0
        model = load_model(path, runtime, num_threads=1)
        assert variant.input.shape == [1, *size, 3] == list(model.input.shape)
        assert variant.input.layout == "NHWC"
        assert variant.output.shape == [1, size[0] // 2, size[1] // 2, 2]
        assert variant.input.dtype == model.input.dtype.name


def test_int8_is_full_integer_nhwc(model_dir: Path) -> None:
    variant = load_manifest(model_dir).variant("int8")
    assert variant.input.dtype == "uint8" and variant.output.dtype == "uint8"
    assert variant.input.quantization is not None
    graph = read_graph(model_dir / variant.file)
    float_activations = [t.name for t in graph.tensors if not t.constant and t.dtype == "float32"]
    assert float_activations == []
    assert variant.op_counts.get("CONV_2D") == 27 and "DEQUANTIZE" not in variant.op_counts


def test_agreement_with_pytorch(model_dir: Path) -> None:
    manifest = load_manifest(model_dir)
    fp32 = manifest.variant("fp32").agreement
    assert fp32.region_max_abs_diff <= FP32_MAX_ABS_DIFF and fp32.affinity_max_abs_diff <= FP32_MAX_ABS_DIFF
    assert fp32.box_precision == fp32.box_recall == 1.0
    assert fp32.boxes_reference > 20  # the samples hold real text
    for name, floor in (("fp16", 0.99), ("dynamic", 0.9), ("int8", 0.9), ("int8-tpu", 0.9)):
        agreement = manifest.variant(name).agreement
        assert agreement.box_precision >= floor and agreement.box_recall >= floor, name


def test_edgetpu_readiness_and_compiler_note(model_dir: Path) -> None:
    manifest = load_manifest(model_dir)
    int8 = manifest.variant("int8").edgetpu["readiness"]
    assert not int8["ready"]
    assert sum("RESIZE_BILINEAR: half_pixel_centers=true" in p for p in int8["problems"]) == 3
    tpu = manifest.variant("int8-tpu").edgetpu
    assert tpu["readiness"] == {"ready": True, "problems": []}
    assert "RESIZE_NEAREST_NEIGHBOR" in manifest.variant("int8-tpu").op_counts
    assert tpu["compiler"]["compiled"] is False and tpu["compiler"]["ran"] is False
    assert tpu["compiler"]["command"] == "edgetpu_compiler -s -o . craft_192x256_int8-tpu.tflite"


@each_model
def test_largest_activation_and_parameters_are_recorded(converted: Path, size: tuple[int, int]) -> None:
    """CRAFT's largest activation is its first two convs' output, H*W*64; its int8 weights are ~21 MB."""
    manifest = load_manifest(converted / size_name(size))
    for name in ("int8", "int8-tpu"):
        recorded = manifest.variant(name).edgetpu
        graph = read_graph(converted / size_name(size) / manifest.variant(name).file)
        largest = max(math.prod(t.shape_signature) for t in graph.tensors if not t.constant)
        assert recorded["activation"]["shape"] == [1, *size, 64]
        assert recorded["activation"]["bytes"] == size[0] * size[1] * 64 == largest
        assert recorded["activation"]["verdict"] == "fits"  # both test sizes are small
        assert 20e6 < recorded["parameters"]["bytes"] < 22e6 and recorded["parameters"]["streamed"]


def test_report_and_contact_sheet(converted: Path) -> None:
    report = (converted / "report.md").read_text()
    for name in VARIANTS:
        assert f"| {name} |" in report
    for size in TEST_SIZES:
        sheet = read_rgb(converted / f"contact_sheet_{size_name(size)}.png")
        assert sheet.shape[1] > 320 * (len(VARIANTS) + 1)
        assert f"## {size_name(size)} (folder `{size_name(size)}/`)" in report
    tile_dir = converted / size_name(TEST_TILE_SIZE)
    assert (f"Edge TPU, tile model: not compiled; on an x86-64 Debian/Ubuntu machine with edgetpu_compiler, run: "
            f"edgetpu_compiler -s -o {tile_dir} {tile_dir}/craft_{size_name(TEST_TILE_SIZE)}_int8-tpu.tflite") in report
    assert "expected to map fully" in report


def test_int8_boxes_lie_on_the_words_of_a_sample(model_dir: Path) -> None:
    from edge.detection.boxes import match_boxes

    manifest = load_manifest(model_dir)
    model = load_model(model_dir / manifest.variant("int8").file, find_runtime(), num_threads=2)
    name = "astronaut_00.jpg"
    boxes = Detector(model, Thresholds()).boxes(read_rgb(SAMPLES / name))
    truth = [np.array(w["poly"]) for w in sample_words(name)]
    count = match_boxes([b.points for b in boxes], truth, min_iou=0.3)
    assert count.recall >= 0.6, count


@pytest.mark.parametrize("variant", ["int8", "int8-tpu"])
def test_int8_models_of_a_bundle_are_quantised_alike(model_dir: Path, tile_dir: Path, variant: str) -> None:
    """The coarse model takes the tile model's int8 ranges, so a tile and the whole frame are quantised
    with the same scale and zero point, tensor for tensor (converter.shared_ranges)."""
    coarse = quantization_of(model_dir / f"craft_{size_name(TEST_SIZE)}_{variant}.tflite")
    tile = quantization_of(tile_dir / f"craft_{size_name(TEST_TILE_SIZE)}_{variant}.tflite")
    assert len(coarse) >= 100 and coarse == tile  # int8: 100 quantised tensors, int8-tpu 115
