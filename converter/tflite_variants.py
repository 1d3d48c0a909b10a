"""ONNX -> TensorFlow graph (onnx2tf) -> TFLite variants (TFLiteConverter).

onnx2tf 1.29 rewrites the NCHW ONNX graph as an NHWC TensorFlow graph (no TRANSPOSE ops). We take
its Keras model (``disable_model_save``: saving it costs minutes), trace it into one concrete
function and convert it with TFLiteConverter ourselves (int8: ``converter.shared_ranges``).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.models import variants as registry

# Variants built from the graph that matches the official model exactly.
STANDARD_VARIANTS = registry.built_from(registry.STANDARD_GRAPH)
# int8 built from the graph whose 2x upsampling the Edge TPU compiler accepts (see model.py).
(TPU_VARIANT,) = registry.built_from(registry.TPU_GRAPH)
VARIANTS = registry.BUILT
QUANTIZED_VARIANTS = tuple(name for name in VARIANTS if registry.kind(name).quantization == "int8")

# onnx2tf checks its graph on 20 sample images of 128x128 (floats 0..1), which it downloads from the
# internet unless a file of them sits in the process's working directory.
_ONNX2TF_SAMPLE_COUNT = 20
_ONNX2TF_SAMPLE_SIDE = 128


def onnx2tf_samples(sample_inputs: list[np.ndarray]) -> np.ndarray:
    """Our own frames in the form onnx2tf's sample data takes: (20, 128, 128, 3) float32 in 0..1."""
    side = (_ONNX2TF_SAMPLE_SIDE, _ONNX2TF_SAMPLE_SIDE)
    samples = [cv2.resize(pixels, side, interpolation=cv2.INTER_AREA) for pixels in sample_inputs]
    samples = [samples[i % len(samples)] for i in range(_ONNX2TF_SAMPLE_COUNT)]
    return np.stack(samples).astype(np.float32) / 255.0


# Every module that holds onnx2tf's downloader under its own name (1.29: defined in the first,
# imported into the second, which is the one that calls it).
_DOWNLOADER_HOMES = ("onnx2tf.utils.common_functions", "onnx2tf.onnx2tf")
_DOWNLOADER = "download_test_image_data"


@contextlib.contextmanager
def _samples_for_onnx2tf(samples: np.ndarray) -> Iterator[None]:
    """Give onnx2tf our samples in place of its downloader, without touching the working directory.

    Changing directory (so that onnx2tf finds a sample file) would break every relative path the
    caller holds, so the function that reads or downloads the file is replaced, in every module
    that holds it, for the duration of the call. Conversion runs on one thread.
    """
    modules = [importlib.import_module(name) for name in _DOWNLOADER_HOMES]
    originals = [getattr(module, _DOWNLOADER) for module in modules]  # AttributeError: onnx2tf changed
    for module in modules:
        setattr(module, _DOWNLOADER, lambda: samples)
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            setattr(module, _DOWNLOADER, original)


def onnx_to_tf(onnx_path: Path, work_dir: Path, sample_inputs: list[np.ndarray]) -> Any:
    """The ONNX model as a traced TensorFlow concrete function taking (1, H, W, 3) float pixels."""
    import onnx2tf
    import tensorflow as tf

    work_dir.mkdir(parents=True, exist_ok=True)
    with _samples_for_onnx2tf(onnx2tf_samples(sample_inputs)):
        keras_model = onnx2tf.convert(
            input_onnx_file_path=str(onnx_path),
            output_folder_path=str(work_dir / "onnx2tf"),
            not_use_onnxsim=True,  # the graph is already simplified; onnxsim would be run from PATH
            disable_model_save=True,
            verbosity="error",
        )
    function = tf.function(lambda pixels: keras_model(pixels))
    return function.get_concrete_function(tf.TensorSpec(keras_model.inputs[0].shape, tf.float32))


def to_tflite(graph: Any, variant: str) -> bytes:
    """One float or weight-quantised TFLite flatbuffer (int8 variants: ``converter.shared_ranges``)."""
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    quantization = registry.kind(variant).quantization
    if quantization == "int8":
        raise ValueError(f"{variant} is calibrated: use converter.shared_ranges")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph])
    if quantization == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()
