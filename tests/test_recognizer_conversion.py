"""The recognizer's conversion: strict weights, ONNX and TFLite against PyTorch on the project's word
crops, and the manifest the device reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.model import CheckpointError
from converter.recognizer import FP32_MAX_PROB_DIFF, fitted
from converter.recognizer_graph import torch_probs
from converter.recognizer_model import CHARSET, HEIGHT, PixelRecognizer, default_recognizer_weights, load_recognizer
from converter.tflite_graph import every_op_name
from converter.word_crops import labelled_words
from edge.models.recognizer import load_variant
from edge.models.recognizer_manifest import load_recognizer_manifest
from edge.models.runtime import find_runtime
from edge.recognition.ctc import greedy_decode
from tests.conftest import RECOGNIZER_FOLDER, SAMPLES, TEST_RECOGNIZER_VARIANTS

pytestmark = pytest.mark.conversion


@pytest.fixture(scope="module")
def pytorch() -> PixelRecognizer:
    return load_recognizer(default_recognizer_weights())


@pytest.fixture(scope="module")
def crops(converted: Path) -> list[np.ndarray]:
    widths = tuple(load_recognizer_manifest(converted / RECOGNIZER_FOLDER).widths)
    return fitted(labelled_words(SAMPLES), widths)


def test_strict_loading_refuses_another_checkpoint(weights: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not a EasyOCR english_g2 recognizer checkpoint; \d+ missing keys"):
        load_recognizer(weights)  # CRAFT's weights


def test_a_checkpoint_with_a_wrong_shape_is_refused(tmp_path: Path) -> None:
    import torch

    state = torch.load(default_recognizer_weights(), map_location="cpu", weights_only=True)
    state["module.Prediction.weight"] = state["module.Prediction.weight"][:50]
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"Prediction.weight is \(50, 256\), expected \(97, 256\)"):
        load_recognizer(tmp_path / "other.pth")


def test_onnx_reproduces_pytorch_on_word_crops(converted: Path, pytorch: PixelRecognizer,
                                               crops: list[np.ndarray]) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(converted / RECOGNIZER_FOLDER / "english_g2.onnx"),
                                           providers=["CPUExecutionProvider"])
    for pixels in crops[:6]:
        got = session.run(None, {"pixels": pixels[None, None].astype(np.float32)})[0]
        np.testing.assert_allclose(got, torch_probs(pytorch, pixels[None]), atol=1e-4)


@pytest.mark.parametrize("variant", TEST_RECOGNIZER_VARIANTS.split(","))
def test_tflite_reads_as_pytorch_on_word_crops(converted: Path, pytorch: PixelRecognizer, crops: list[np.ndarray],
                                               variant: str) -> None:
    folder = converted / RECOGNIZER_FOLDER
    manifest = load_recognizer_manifest(folder)
    runner = load_variant(folder, manifest, next(v for v in manifest.variants if v.name == variant), find_runtime(), 2)
    same = 0
    for pixels in crops:
        expected, got = torch_probs(pytorch, pixels[None])[0], runner(pixels[None])[0]
        if variant == "fp32":
            assert np.abs(got - expected).max() <= FP32_MAX_PROB_DIFF
        same += greedy_decode(got, CHARSET)[0] == greedy_decode(expected, CHARSET)[0]
    assert same >= len(crops) - 1  # at most one word of the samples' 34 read differently
    assert runner.height == HEIGHT


@pytest.mark.parametrize("width", [64, 1024])
def test_fp32_matches_pytorch_at_the_narrowest_and_widest_width(converted: Path, pytorch: PixelRecognizer,
                                                                width: int) -> None:
    """Both directions of each LSTM loop, over the fewest (15) and the most (255) steps the device pads to."""
    folder = converted / RECOGNIZER_FOLDER
    manifest = load_recognizer_manifest(folder)
    runner = load_variant(folder, manifest, next(v for v in manifest.variants if v.name == "fp32"), find_runtime(), 2)
    pixels = np.random.default_rng(width).integers(0, 256, (1, HEIGHT, width), dtype=np.uint8)
    got, expected = runner(pixels), torch_probs(pytorch, pixels)
    assert got.shape == expected.shape == (1, width // 4 - 1, len(CHARSET) + 1)
    assert np.abs(got - expected).max() <= FP32_MAX_PROB_DIFF


def test_the_manifest_records_what_the_device_needs(converted: Path) -> None:
    manifest = load_recognizer_manifest(converted / RECOGNIZER_FOLDER)
    assert manifest.charset == CHARSET and manifest.input_height == HEIGHT
    assert [v.name for v in manifest.variants] == TEST_RECOGNIZER_VARIANTS.split(",")
    for variant in manifest.variants:
        assert variant.input.shape == [1, HEIGHT, -1, 1] and variant.output.shape == [1, -1, len(CHARSET) + 1]
        assert variant.agreement is not None and variant.agreement.crops == len(manifest.validation_crops) > 100
        # one loop for each bidirectional layer, stepping both directions (converter.recognizer_graph),
        # its states written in place of a TensorList; only builtin ops
        every_op = every_op_name(converted / RECOGNIZER_FOLDER / variant.file)
        assert variant.op_counts.get("WHILE") == every_op["WHILE"] == 2
        assert every_op["DYNAMIC_UPDATE_SLICE"] == 2 and "CUSTOM" not in every_op
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in every_op


def test_weights_that_give_nan_fail_the_onnx_check(tmp_path: Path, crops: list[np.ndarray]) -> None:
    """NaN compares as neither over nor under a limit: ``max(0.0, nan)`` kept 0.0, and a recognizer of NaN
    weights passed every check, then read every word as nothing."""
    import torch

    from converter.recognizer import RecognizerError, export_onnx

    model = load_recognizer(default_recognizer_weights())
    with torch.no_grad():
        model.recognizer.Prediction.weight.fill_(float("nan"))
    with pytest.raises(RecognizerError, match="recognizer ONNX differs from PyTorch by nan"):
        export_onnx(model, tmp_path / "english_g2.onnx", crops[:2])


def test_a_recognizer_whose_every_variant_is_left_out_is_an_error(tmp_path: Path, crops: list[np.ndarray],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """It wrote a manifest with no variant, the index named it, and the converter exited 0."""
    import converter.recognizer as recognizer
    from converter.word_crops import labelled_words

    def left_out(self: recognizer.RecognizerConverter, graph: object, name: str, reference: list) -> None:
        self.rejected[name] = "reads like PyTorch on 93.5% of 434 crops (under 98%)"

    monkeypatch.setattr(recognizer, "export_onnx", lambda *args: 0.0)
    monkeypatch.setattr(recognizer, "build_graph", lambda model: None)
    monkeypatch.setattr(recognizer.RecognizerConverter, "_variant", left_out)
    request = recognizer.RecognizerRequest(weights=default_recognizer_weights(), variants=("dynamic",),
                                           validation=labelled_words(SAMPLES)[:2], threads=1)
    with pytest.raises(recognizer.RecognizerError, match=r"no variant kept \(dynamic reads like PyTorch on 93.5%"):
        recognizer.RecognizerConverter(request, tmp_path, lambda step: None).run()
    assert not (tmp_path / "manifest.json").exists()


def test_a_nan_on_any_crop_shows_in_the_agreement(crops: list[np.ndarray], pytorch: PixelRecognizer) -> None:
    """Python's max() kept a NaN only from the first crop: a variant with NaN on a later one recorded 0.0."""
    from converter.recognizer import agreement

    reference = [torch_probs(pytorch, pixels[None])[0] for pixels in crops[:3]]
    damaged = [probs.copy() for probs in reference]
    damaged[2][0, 0] = np.nan
    assert np.isnan(agreement(reference, damaged).max_prob_diff)
