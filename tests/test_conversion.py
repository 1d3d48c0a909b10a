"""A real conversion of the real weights, every variant, checked against its manifest and PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.pipeline import FP32_MAX_ABS_DIFF
from converter.tflite_graph import read_graph
from converter.tflite_variants import VARIANTS
from edge.detector import Detector
from edge.imageio import read_rgb
from edge.manifest import file_sha256, load_manifest
from edge.postprocess import Thresholds
from edge.runtime import find_runtime, load_model
from tests.conftest import SAMPLES, TEST_SIZE, sample_words

pytestmark = pytest.mark.conversion


def test_every_variant_is_in_the_manifest(model_dir: Path) -> None:
    manifest = load_manifest(model_dir)
    assert [v.name for v in manifest.variants] == list(VARIANTS)
    assert manifest.input_size == list(TEST_SIZE)
    assert manifest.toolchain["onnx2tf"] == "1.29.24"
    assert manifest.onnx_max_abs_diff is not None and manifest.onnx_max_abs_diff < 1e-3
    assert len(manifest.validation_images) == len([p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png")])


def test_manifest_facts_match_the_files(model_dir: Path, weights: Path) -> None:
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
        assert variant.input.shape == [1, *TEST_SIZE, 3] == list(model.input.shape)
        assert variant.input.layout == "NHWC"
        assert variant.output.shape == [1, TEST_SIZE[0] // 2, TEST_SIZE[1] // 2, 2]
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
    assert tpu["compiler"]["compiled"] is False
    assert tpu["compiler"]["command"] == "edgetpu_compiler -s -o . craft_192x256_int8-tpu.tflite"


def test_report_and_contact_sheet(converted: Path) -> None:
    report = (converted / "report.md").read_text()
    for name in VARIANTS:
        assert f"| {name} |" in report
    sheet = read_rgb(converted / "contact_sheet_192x256.png")
    assert sheet.shape[1] > 320 * (len(VARIANTS) + 1)


def test_int8_boxes_lie_on_the_words_of_a_sample(model_dir: Path) -> None:
    from edge.boxes import match_boxes

    manifest = load_manifest(model_dir)
    model = load_model(model_dir / manifest.variant("int8").file, find_runtime(), num_threads=2)
    name = "astronaut_00.jpg"
    boxes = Detector(model, Thresholds()).boxes(read_rgb(SAMPLES / name))
    truth = [np.array(w["poly"]) for w in sample_words(name)]
    count = match_boxes([b.points for b in boxes], truth, min_iou=0.3)
    assert count.recall >= 0.6, count
