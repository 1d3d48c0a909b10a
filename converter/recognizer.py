"""Convert the text recognizer (EasyOCR ``english_g2``): PyTorch -> ONNX (checked) and -> TFLite variants,
each read against PyTorch on word crops, into ``OUT/recognizer/`` with its manifest.

The TFLite graph is the TensorFlow rewrite of ``converter.recognizer_graph`` (why not onnx2tf: see there); the
ONNX export is kept beside the models as a checked interchange copy. Each variant is one file taking any
width (the device pads a crop to the next of ``WIDTHS``); it is read with the device's own runner and
reader preprocessing on the validation crops and compared string by string with PyTorch on the same
pixels. A quantised variant that reads differently from PyTorch on more than ``1 - MIN_SAME_TEXT`` of the
crops is left out (and the manifest says why). No int8: converted full-integer (calibrated on the
calibration frames' words), it read only 63.5 % of 170 project crops as PyTorch does (README, "Reading
text"); on the Keras graph before ``converter.recognizer_graph``'s, TensorFlow 2.19's full-integer quantiser
crashed (segmentation fault), and it was not tried again.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.pipeline import _tensor_info, toolchain_versions, utc_now
from converter.recognizer_graph import build_graph, torch_probs
from converter.recognizer_model import CHARSET, HEIGHT, NORMALIZATION, PixelRecognizer, load_recognizer
from converter.recognizer_steps import RECOGNIZER_VARIANTS
from converter.tflite_graph import read_graph
from converter.word_crops import Word
from edge import __version__
from edge.config.paths import write_replacing
from edge.models import variants as registry
from edge.models.manifest import FORMAT_VERSION, file_sha256
from edge.models.recognizer import MIN_SAME_TEXT, SequenceRunner
from edge.models.recognizer_manifest import ReadingAgreement, RecognizerManifest, RecognizerVariant
from edge.models.runtime import ModelLoadError, find_runtime
from edge.recognition.ctc import greedy_decode
from edge.recognition.preprocess import fit

FOLDER = "recognizer"
STEM = "english_g2"
# The widths a crop is padded to: EasyOCR's own (it pads to the next multiple of 64), up to 1024
# (wider crops are squeezed). bench/recognition.py --buckets compares other choices.
WIDTHS = tuple(range(64, 1025, 64))
# fp32 TFLite must read every validation crop as PyTorch does, its probabilities this close, or the run
# fails (measured: 2.4e-5 on the project's crops; CRAFT's maps are held to 1e-4, but a softmax
# probability moves further than a region score for the same change in the LSTMs' order of arithmetic,
# and tf_keras' fused LSTM kernel was 1e-2 off).
FP32_MAX_PROB_DIFF = 1e-3
ONNX_PARITY_ATOL = 1e-4

Progress = Callable[[str], None]


class RecognizerError(RuntimeError):
    """The converted recognizer does not reproduce PyTorch."""


@dataclass(frozen=True)
class RecognizerRequest:
    weights: Path
    variants: tuple[str, ...]
    validation: list[Word]
    threads: int
    widths: tuple[int, ...] = WIDTHS


def step_count(variants: tuple[str, ...]) -> int:
    return 4 + 2 * len(variants)


def fitted(words: list[Word], widths: tuple[int, ...]) -> list[np.ndarray]:
    return [fit(word.crop, HEIGHT, widths) for word in words]


def export_onnx(model: PixelRecognizer, path: Path, inputs: list[np.ndarray]) -> float:
    """The model as ONNX (any width), checked against PyTorch with ONNX Runtime; the largest difference."""
    import onnx
    import onnxruntime
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 1, HEIGHT, 128), str(path), input_names=["pixels"],
                          output_names=["probabilities"], dynamic_axes={"pixels": {3: "width"}},
                          opset_version=17, dynamo=False)
    onnx.checker.check_model(str(path), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = float(np.max([np.abs(session.run(None, {"pixels": pixels[None, None].astype(np.float32)})[0]
                                 - torch_probs(model, pixels[None])).max() for pixels in inputs]))
    if not worst <= ONNX_PARITY_ATOL:  # NaN (damaged weights) fails too
        raise RecognizerError(f"recognizer ONNX differs from PyTorch by {worst:.2e} (limit {ONNX_PARITY_ATOL:.0e})")
    return worst


def to_tflite(graph: object, variant: str) -> bytes:
    import tensorflow as tf

    if variant not in RECOGNIZER_VARIANTS:
        raise ValueError(f"the recognizer has no {variant} variant (it converts to {', '.join(RECOGNIZER_VARIANTS)})")
    quantization = registry.kind(variant).quantization
    # no trackable object: the graph holds no variables (its weights are constants), so the frozen-graph path
    # TensorFlow warns about converts it as it is, like the detector's graphs
    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph])
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def read_all(runner: Callable[[np.ndarray], np.ndarray], inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [runner(pixels[None])[0] for pixels in inputs]


def agreement(reference: list[np.ndarray], probs: list[np.ndarray]) -> ReadingAgreement:
    same = sum(greedy_decode(a, CHARSET)[0] == greedy_decode(b, CHARSET)[0] for a, b in zip(reference, probs,
                                                                                             strict=True))
    # np.max, not max(): Python's max drops a NaN that is not first, and the NaN check would never see it
    worst = float(np.max([np.abs(a - b).max() for a, b in zip(reference, probs, strict=True)]))
    return ReadingAgreement("pytorch-fp32", len(reference), round(same / len(reference), 4), round(worst, 6))


class RecognizerConverter:
    """Every step for the recognizer, writing into ``folder``."""

    def __init__(self, request: RecognizerRequest, folder: Path, progress: Progress) -> None:
        self.request = request
        self.folder = folder
        self.progress = progress
        self.runtime = find_runtime()
        self.validation = fitted(request.validation, request.widths)
        self.rejected: dict[str, str] = {}

    def run(self) -> RecognizerManifest:
        request = self.request
        started = time.monotonic()
        self.progress("recognizer: loading weights")
        model = load_recognizer(request.weights)
        self.progress("recognizer: exporting ONNX and checking parity")
        onnx_diff = export_onnx(model, self.folder / f"{STEM}.onnx", self.validation[:4])
        self.progress("recognizer: running PyTorch on the validation crops")
        reference = [torch_probs(model, pixels[None])[0] for pixels in self.validation]
        self.progress("recognizer: building the TensorFlow graph")
        graph = build_graph(model)
        variants = [v for name in request.variants if (v := self._variant(graph, name, reference))]
        if not variants:  # a recognizer the device could not use: no folder rather than an empty one
            raise RecognizerError("recognizer: no variant kept (" + "; ".join(
                f"{name} {why}" for name, why in self.rejected.items()) + ")")
        manifest = RecognizerManifest(
            format_version=FORMAT_VERSION, created=utc_now(), converter_version=__version__,
            source_weights=request.weights.name, source_sha256=file_sha256(request.weights), charset=CHARSET,
            input_height=HEIGHT, widths=list(request.widths), input_normalization=NORMALIZATION,
            toolchain={**toolchain_versions(), "runtime": self.runtime.name},
            validation_crops=[word.name for word in request.validation], variants=variants,
            onnx_max_abs_diff=onnx_diff, rejected=self.rejected,
            conversion_seconds=round(time.monotonic() - started, 1),
        )
        manifest.write(self.folder)
        return manifest

    def _variant(self, graph: object, name: str, reference: list[np.ndarray]) -> RecognizerVariant | None:
        self.progress(f"recognizer: converting {name}")
        path = self.folder / f"{STEM}_{name}.tflite"
        write_replacing(path, to_tflite(graph, name))  # a running daemon may have the old one mapped
        self.progress(f"recognizer: reading the validation crops with {name}")
        runner = SequenceRunner([self.runtime.interpreter(path, self.request.threads)], HEIGHT, self.request.widths)
        try:
            measured = agreement(reference, read_all(runner, self.validation))
        except ModelLoadError as exc:  # the TFLite file's probabilities are not numbers
            raise RecognizerError(f"recognizer {name}: {exc}") from exc
        if not math.isfinite(measured.max_prob_diff):  # NaN compares as neither over nor under any limit
            raise RecognizerError(f"recognizer {name}: probabilities that are not numbers (NaN or infinite) on the "
                                  "validation crops: damaged weights?")
        if name == "fp32" and (measured.max_prob_diff > FP32_MAX_PROB_DIFF or measured.same_text < 1):
            raise RecognizerError(f"recognizer fp32 TFLite reads {measured.same_text:.1%} of the crops as PyTorch "
                                  f"does, probabilities up to {measured.max_prob_diff:.2e} apart (limit: all, "
                                  f"{FP32_MAX_PROB_DIFF})")
        if registry.kind(name).quantization != "none" and measured.same_text < MIN_SAME_TEXT:
            self.rejected[name] = (f"reads like PyTorch on {measured.same_text:.1%} of {measured.crops} crops "
                                   f"(under {MIN_SAME_TEXT:.0%})")
            path.unlink()
            return None
        inp, out = runner.specs()
        input_info, output_info = _tensor_info(inp), _tensor_info(out)
        input_info.shape[2] = -1  # any width
        output_info.shape[1] = -1
        output_info.layout = "NTC"  # batch, time steps, classes
        return RecognizerVariant(name=name, file=path.name, sha256=file_sha256(path), bytes=path.stat().st_size,
                                 target=registry.kind(name).target, input=input_info, output=output_info,
                                 op_counts=read_graph(path).op_counts, agreement=measured)
