"""One set of int8 activation ranges for every input size of a conversion.

A tile model and a model of the whole frame run the same layers on the same pixels. Calibrated
separately (each on the calibration frames letterboxed to its own input size), each gets its own
activation scales, so int8 tiles stitched together differ from one int8 pass over the frame by
more than rounding, and words near a threshold come out differently. So the tile model is
calibrated once, on crops of the calibration frames at their own scale (what it sees at work),
and every other input size is quantised with exactly its ranges: the same scale and zero point
for every tensor, hence the same integer arithmetic wherever a pixel's receptive field lies
inside the tile.

TFLiteConverter quantises in two steps: calibration (a float model that records each tensor's
min/max over the representative data) and quantisation (``mlir_quantize``, which turns those
min/max into scales, zero points and integer biases). We run the two steps ourselves (the same
calls, in the same order, as ``TFLiteConverter.convert`` makes with the pinned TensorFlow) and put
the reference's min/max in between. The graphs of two input sizes differ only in tensor shapes,
names and the order of constants, so tensors are matched through the operators that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


class RangesError(RuntimeError):
    """The reference model's graph is not this model's graph at another input size."""


def _batches(frames: list[np.ndarray], on_frame: Callable[[int, int], None]) -> Iterator[list[np.ndarray]]:
    for index, pixels in enumerate(frames, start=1):
        yield [pixels[None].astype(np.float32)]
        on_frame(index, len(frames))


def calibrate(graph: Any, frames: list[np.ndarray], on_frame: Callable[[int, int], None] = lambda i, n: None) -> bytes:
    """``graph`` as a float TFLite model holding each tensor's min/max over ``frames`` (uint8 pixels)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: _batches(frames, on_frame)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    converter._experimental_calibrate_only = True  # the first of convert()'s two steps
    return converter.convert()


def quantize(calibrated: bytes) -> bytes:
    """The full-integer model (uint8 in and out, per-channel weights) from a calibrated one."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    return convert.mlir_quantize(calibrated, input_data_type=tf.uint8, output_data_type=tf.uint8)


def _has_range(tensor: Any) -> bool:
    return tensor.quantization is not None and tensor.quantization.min is not None


def _tensor_pairs(model: Any, reference: Any) -> dict[int, int]:
    """This model's tensor index -> the reference's, matched through the operators' wiring (the
    converter orders constants differently at different sizes, so positions alone do not match)."""
    graph, other = model.subgraphs[0], reference.subgraphs[0]
    if len(model.subgraphs) != 1 or len(reference.subgraphs) != 1 or len(graph.operators) != len(other.operators):
        raise RangesError("the reference calibration is of a different graph; its int8 ranges cannot be shared")
    pairs: dict[int, int] = {}
    wiring = [(graph.inputs, other.inputs), (graph.outputs, other.outputs)]
    for op, other_op in zip(graph.operators, other.operators, strict=True):
        if model.operatorCodes[op.opcodeIndex].builtinCode != reference.operatorCodes[other_op.opcodeIndex].builtinCode:
            raise RangesError("the reference calibration is of a different graph; its int8 ranges cannot be shared")
        wiring += [(op.inputs, other_op.inputs), (op.outputs, other_op.outputs)]
    for indices, other_indices in wiring:
        if len(indices) != len(other_indices):
            raise RangesError("the reference calibration is of a different graph; its int8 ranges cannot be shared")
        for index, other_index in zip(indices, other_indices, strict=True):
            if (index == -1) != (other_index == -1) or pairs.setdefault(int(index), int(other_index)) != other_index:
                raise RangesError("the reference calibration is of a different graph; its int8 ranges cannot be shared")
    pairs.pop(-1, None)  # an optional input left out, in both graphs
    if len(set(pairs.values())) != len(pairs) or any(
            _form(graph.tensors[index]) != _form(other.tensors[other_index]) for index, other_index in pairs.items()):
        raise RangesError("the reference calibration is of a different graph; its int8 ranges cannot be shared")
    return pairs


def _form(tensor: Any) -> tuple:
    """What a tensor keeps at any input size: its type, rank and channel count (shape None: a scalar)."""
    shape = [] if tensor.shape is None else list(tensor.shape)
    return tensor.type, len(shape), shape[-1] if shape else None


def with_ranges_of(calibrated: bytes, reference: bytes) -> bytes:
    """``calibrated`` with every tensor's min/max replaced by the same tensor's in ``reference``."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    source = flatbuffer_utils.convert_bytearray_to_object(bytearray(reference))
    pairs = _tensor_pairs(model, source)
    tensors, source_tensors = model.subgraphs[0].tensors, source.subgraphs[0].tensors
    ranged = [index for index, tensor in enumerate(tensors) if _has_range(tensor)]
    if any(index not in pairs or not _has_range(source_tensors[pairs[index]]) for index in ranged):
        raise RangesError("the reference calibration lacks ranges this graph needs")
    for index in ranged:
        ranges = source_tensors[pairs[index]].quantization
        tensors[index].quantization.min, tensors[index].quantization.max = np.array(ranges.min), np.array(ranges.max)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
