"""ONNX -> TensorFlow graph (onnx2tf) -> TFLite variants (TFLiteConverter).

onnx2tf 1.29 rewrites the NCHW ONNX graph as an NHWC TensorFlow graph (no TRANSPOSE ops). We take
its Keras model (``disable_model_save``: saving it costs minutes), trace it into one concrete
function and quantise with TFLiteConverter ourselves, so calibration data is under our control.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# Variants built from the graph that matches the official model exactly.
STANDARD_VARIANTS = ("fp32", "fp16", "dynamic", "int8")
# int8 built from the graph whose 2x upsampling the Edge TPU compiler accepts (see model.py).
TPU_VARIANT = "int8-tpu"
VARIANTS = (*STANDARD_VARIANTS, TPU_VARIANT)
QUANTIZED_VARIANTS = ("int8", TPU_VARIANT)

# onnx2tf checks its graph on sample images and downloads them from the internet unless this file
# is in the working directory. We write it from our own frames.
_ONNX2TF_SAMPLES = "calibration_image_sample_data_20x128x128x3_float32.npy"


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def onnx_to_tf(onnx_path: Path, work_dir: Path, sample_inputs: list[np.ndarray]) -> Any:
    """The ONNX model as a traced TensorFlow concrete function taking (1, H, W, 3) float pixels."""
    import onnx2tf
    import tensorflow as tf

    work_dir.mkdir(parents=True, exist_ok=True)
    samples = [cv2.resize(pixels, (128, 128), interpolation=cv2.INTER_AREA) for pixels in sample_inputs]
    samples = [samples[i % len(samples)] for i in range(20)]
    np.save(work_dir / _ONNX2TF_SAMPLES, np.stack(samples).astype(np.float32) / 255.0)
    with _working_dir(work_dir):
        keras_model = onnx2tf.convert(
            input_onnx_file_path=str(onnx_path),
            output_folder_path=str(work_dir / "onnx2tf"),
            not_use_onnxsim=True,  # the graph is already simplified; onnxsim would be run from PATH
            disable_model_save=True,
            verbosity="error",
        )
    function = tf.function(lambda pixels: keras_model(pixels))
    return function.get_concrete_function(tf.TensorSpec(keras_model.inputs[0].shape, tf.float32))


def _calibration_batches(frames: list[np.ndarray], on_frame: Callable[[int, int], None]) -> Iterator[list[np.ndarray]]:
    for index, pixels in enumerate(frames, start=1):
        yield [pixels[None].astype(np.float32)]
        on_frame(index, len(frames))


def to_tflite(
    graph: Any, variant: str, calibration: list[np.ndarray], on_frame: Callable[[int, int], None] = lambda i, n: None
) -> bytes:
    """One TFLite flatbuffer. int8 variants take and return uint8, calibrated on ``calibration``.

    ``on_frame(i, n)`` is called after each calibration frame (calibration takes minutes).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph])
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in QUANTIZED_VARIANTS:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration_batches(calibration, on_frame)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif variant != "fp32":
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    return converter.convert()
