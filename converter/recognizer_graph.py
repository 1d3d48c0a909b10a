"""The recognizer as a TensorFlow graph with the PyTorch weights as constants: what TFLite converts.

Why not onnx2tf, as for CRAFT: onnx2tf 1.29.24 fails on the ONNX LSTM's initial state (the ``Expand``
the exporter emits for h0/c0: "Output tensors of a Functional model must be the output of a TensorFlow
``Layer``"), also with constant zero states passed in. The network is small and plain, so it is written
out here in NHWC: the batch norms folded into their convolutions, the rows averaged by a (3, 1) average
pool, and each bidirectional LSTM as one ``tf.while_loop`` that steps both directions at once (the
backward one over the reversed sequence). TFLite runs a loop body op by op, and copies its loop values
each step, so the body holds only what must be there: the input projection of every step is one matrix
product before the loop (both directions, ``FULLY_CONNECTED``, which XNNPACK runs), each step multiplies
the two previous states by their recurrent weights and writes both with one ``DYNAMIC_UPDATE_SLICE``.
The gates are reordered from PyTorch's i, f, g, o to i, f, o, g so that one sigmoid covers three.

Keras' ``Bidirectional(LSTM)`` came first: Keras 3's becomes four ``WHILE`` loops, each carrying its
input and a TensorList of its outputs (copied every step) and projecting its input inside the loop;
tf_keras' becomes fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` ops, slower below about 600 px. Median ms for one word, x86,
2 threads, through the device's runner (this graph and Keras 3: the median of three runs, one process
each, 2026-12-06; tf_keras: one earlier run; the machine's timings move by up to 30 % between runs):

    width px                    64    128    256    512   1024
    dynamic, this graph        1.2    2.4    5.5   12.6   38.9
    dynamic, Keras 3 (WHILE)   1.6    3.2    7.3   17.5   70.4
    dynamic, tf_keras (fused)  3.4    7.1   14.1   28.5   56.3
    fp32, this graph           4.2    8.0   14.4   29.2   69.1
    fp32, Keras 3              5.0    8.3   16.3   36.4   99.6
    fp32, tf_keras            9.7   19.9   36.8   71.0  138.0

What is left is mostly per-op overhead: each step runs about 30 small ops, and the loop's values are
copied every step, so time still grows faster than the width.

``converter.recognizer`` checks the result against PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from converter.recognizer_model import HEIGHT, HIDDEN, BidirectionalLSTM, PixelRecognizer

BN_EPS = 1e-5  # nn.BatchNorm2d's default, which EasyOCR keeps


def _conv_weights(conv: nn.Conv2d, norm: nn.BatchNorm2d | None) -> tuple[np.ndarray, np.ndarray]:
    """(kernel HWIO, bias) of ``conv``, with the batch norm after it folded in."""
    kernel = conv.weight.detach().numpy().transpose(2, 3, 1, 0)
    bias = conv.bias.detach().numpy() if conv.bias is not None else np.zeros(kernel.shape[3], np.float32)
    if norm is not None:
        scale = norm.weight.detach().numpy() / np.sqrt(norm.running_var.detach().numpy() + BN_EPS)
        kernel = kernel * scale
        bias = (bias - norm.running_mean.detach().numpy()) * scale + norm.bias.detach().numpy()
    return kernel.astype(np.float32), bias.astype(np.float32)


def _ifog(gates: np.ndarray) -> np.ndarray:
    """PyTorch's gate blocks i, f, g, o (last axis) as i, f, o, g."""
    i, f, g, o = np.split(gates, 4, axis=-1)
    return np.concatenate([i, f, o, g], axis=-1)


@dataclass(frozen=True)
class BiLstmWeights:
    """One ``BidirectionalLSTM`` block as matrices for ``x @ W``; gates i, f, o, g."""

    input_kernel: np.ndarray  # (inputs, 8 * hidden): forward gates, then backward gates
    bias: np.ndarray  # (8 * hidden,): PyTorch's two biases added
    forward_recurrent: np.ndarray  # (hidden, 4 * hidden)
    backward_recurrent: np.ndarray
    linear_kernel: np.ndarray  # (2 * hidden, outputs): over [forward, backward]
    linear_bias: np.ndarray

    @classmethod
    def from_block(cls, block: BidirectionalLSTM) -> BiLstmWeights:
        def get(name: str) -> np.ndarray:
            return getattr(block.rnn, name).detach().numpy()

        directions = ("l0", "l0_reverse")
        return cls(
            input_kernel=np.concatenate([_ifog(get(f"weight_ih_{d}").T) for d in directions], axis=1),
            bias=np.concatenate([_ifog(get(f"bias_ih_{d}") + get(f"bias_hh_{d}")) for d in directions]),
            forward_recurrent=_ifog(get("weight_hh_l0").T),
            backward_recurrent=_ifog(get("weight_hh_l0_reverse").T),
            linear_kernel=block.linear.weight.detach().numpy().T,
            linear_bias=block.linear.bias.detach().numpy(),
        )


def _cell(tf: Any, gates: Any, cell: Any) -> tuple[Any, Any]:
    """One LSTM step from its summed gate inputs (i, f, o, g): (hidden state, cell state)."""
    sigmoids, candidate = tf.split(gates, [3 * HIDDEN, HIDDEN], axis=-1)
    inp, forget, out = tf.split(tf.sigmoid(sigmoids), 3, axis=-1)
    cell = forget * cell + inp * tf.tanh(candidate)
    return out * tf.tanh(cell), cell


def _dynamic_update_slice() -> Any:
    """TensorFlow's op that TFLite converts to ``DYNAMIC_UPDATE_SLICE``: it has no public name (``tf.raw_ops``
    lacks it), so a TensorFlow other than the pinned one may not have it where 2.19 does."""
    try:
        from tensorflow.compiler.tf2xla.ops.gen_xla_ops import xla_dynamic_update_slice
    except ImportError as exc:
        import tensorflow as tf

        raise RuntimeError(f"the recognizer's graph needs tensorflow.compiler.tf2xla's xla_dynamic_update_slice, "
                           f"which TensorFlow {tf.__version__} lacks (the converter pins 2.19.0)") from exc
    return xla_dynamic_update_slice


def _bidirectional(tf: Any, sequence: Any, weights: BiLstmWeights) -> Any:
    """(T, inputs) -> (T, outputs): both directions in one loop, then the block's linear layer."""
    xla_dynamic_update_slice = _dynamic_update_slice()
    steps = tf.shape(sequence)[0]
    projected = tf.matmul(sequence, weights.input_kernel) + weights.bias
    forward, backward = projected[:, :4 * HIDDEN], tf.reverse(projected[:, 4 * HIDDEN:], [0])
    forward_recurrent = tf.constant(weights.forward_recurrent)
    backward_recurrent = tf.constant(weights.backward_recurrent)

    def step(t: Any, h_forward: Any, c_forward: Any, h_backward: Any, c_backward: Any, states: Any) -> tuple:
        h_forward, c_forward = _cell(tf, tf.gather(forward, [t]) + tf.matmul(h_forward, forward_recurrent),
                                     c_forward)
        h_backward, c_backward = _cell(tf, tf.gather(backward, [t]) + tf.matmul(h_backward, backward_recurrent),
                                       c_backward)
        states = xla_dynamic_update_slice(states, tf.concat([h_forward, h_backward], 1), tf.stack([t, 0]))
        return t + 1, h_forward, c_forward, h_backward, c_backward, states

    zero = tf.zeros((1, HIDDEN))
    *_, states = tf.while_loop(lambda t, *_: t < steps, step,
                               (0, zero, zero, zero, zero, tf.zeros((steps, 2 * HIDDEN))))
    both = tf.concat([states[:, :HIDDEN], tf.reverse(states[:, HIDDEN:], [0])], 1)  # backward back in order
    return tf.matmul(both, weights.linear_kernel) + weights.linear_bias


def build_graph(model: PixelRecognizer) -> Any:
    """A traced TensorFlow function: (1, 64, W, 1) grey pixels 0..255, any W -> (1, W/4 - 1, classes)
    probabilities."""
    import tensorflow as tf

    recognizer = model.recognizer
    modules = list(recognizer.FeatureExtraction.ConvNet)
    lstms = [BiLstmWeights.from_block(block) for block in recognizer.SequenceModeling]
    prediction = (recognizer.Prediction.weight.detach().numpy().T, recognizer.Prediction.bias.detach().numpy())

    @tf.function(input_signature=[tf.TensorSpec([1, HEIGHT, None, 1], tf.float32)])
    def recognize(pixels: Any) -> Any:
        x = pixels * (1 / 127.5) - 1.0
        for index, module in enumerate(modules):
            if isinstance(module, nn.Conv2d):
                norm = modules[index + 1] if isinstance(modules[index + 1], nn.BatchNorm2d) else None
                kernel, bias = _conv_weights(module, norm)
                # every conv of this stack is followed by a ReLU (after its batch norm, folded in here)
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME" if module.padding[0] else "VALID") + bias)
            elif isinstance(module, nn.MaxPool2d):
                x = tf.nn.max_pool2d(x, module.kernel_size, module.stride, "VALID")
        sequence = tf.reshape(tf.nn.avg_pool2d(x, (x.shape[1], 1), 1, "VALID"), (-1, x.shape[3]))  # (T, C)
        for weights in lstms:
            sequence = _bidirectional(tf, sequence, weights)
        return tf.nn.softmax(tf.matmul(sequence, prediction[0]) + prediction[1])[None]

    return recognize.get_concrete_function()


def torch_probs(model: PixelRecognizer, pixels: np.ndarray) -> np.ndarray:
    """(N, 64, W) uint8 grey -> (N, T, classes) probabilities, from PyTorch (on one thread: with two, on a
    busy two-core machine, its thread pool's spinning made one word take seconds instead of tens of ms)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    with torch.no_grad():
        return model(torch.from_numpy(pixels[:, None].astype(np.float32))).numpy()
