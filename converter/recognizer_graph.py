"""The recognizer as a Keras graph with the PyTorch weights transplanted: what TFLite converts.

Why not onnx2tf, as for CRAFT: onnx2tf 1.29.24 fails on the ONNX LSTM's initial state (the ``Expand``
the exporter emits for h0/c0: "Output tensors of a Functional model must be the output of a TensorFlow
``Layer``"), also with constant zero states passed in. The network is small and plain, so it is written
out here in NHWC: the batch norms folded into their convolutions, the rows averaged by a (3, 1) average
pool, each bidirectional LSTM as Keras' ``Bidirectional(LSTM)`` (PyTorch's gate order i, f, g, o is
Keras' i, f, c, o; Keras has one bias, PyTorch's two added). It is built with Keras 3, whose LSTMs
TFLite turns into ``WHILE`` loops; tf_keras' (Keras 2) become fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` ops,
whose kernel is slower for every width a word usually has. Median ms for one word, x86, 2 threads, one
process, idle (``convert-for-device`` output of each; PyTorch on 2 threads reads a 200 px word in 14-17):

    width px                    64    128    256    512   1024
    dynamic, Keras 3 (WHILE)   1.9    4.7   10.6   26.3   70.7
    dynamic, tf_keras (fused)  3.4    7.1   14.1   28.5   56.3
    fp32, Keras 3              5.4   10.9   22.7   50.7  123.8
    fp32, tf_keras            9.7   19.9   36.8   71.0  138.0

A ``WHILE`` loop copies its sequence-long values every step, so it loses past ~600 px (a word 10 times
as wide as it is tall). ``converter.recognizer`` checks the result against PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from converter.recognizer_model import HEIGHT, PixelRecognizer

BN_EPS = 1e-5  # nn.BatchNorm2d's default, which EasyOCR keeps
UNROLL = False


def _conv_weights(conv: nn.Conv2d, norm: nn.BatchNorm2d | None) -> list[np.ndarray]:
    """(kernel HWIO, bias) of ``conv``, with the batch norm after it folded in."""
    kernel = conv.weight.detach().numpy().transpose(2, 3, 1, 0)
    bias = conv.bias.detach().numpy() if conv.bias is not None else np.zeros(kernel.shape[3], np.float32)
    if norm is not None:
        scale = norm.weight.detach().numpy() / np.sqrt(norm.running_var.detach().numpy() + BN_EPS)
        kernel = kernel * scale
        bias = (bias - norm.running_mean.detach().numpy()) * scale + norm.bias.detach().numpy()
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def _lstm_weights(rnn: nn.LSTM, suffix: str) -> list[np.ndarray]:
    def get(name: str) -> np.ndarray:
        return getattr(rnn, f"{name}_l0{suffix}").detach().numpy()

    return [get("weight_ih").T, get("weight_hh").T, get("bias_ih") + get("bias_hh")]


def build_keras(model: PixelRecognizer, width: int | None) -> Any:
    """A Keras model: (1, 64, width, 1) grey pixels 0..255 -> (1, width/4 - 1, classes) probabilities;
    ``width`` None: any width (TFLite resizes it)."""
    import keras
    from keras import layers

    recognizer = model.recognizer
    pixels = keras.Input((HEIGHT, width, 1), batch_size=1, name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(pixels)
    modules = list(recognizer.FeatureExtraction.ConvNet)
    transplants = []
    for index, module in enumerate(modules):
        if isinstance(module, nn.Conv2d):
            norm = modules[index + 1] if isinstance(modules[index + 1], nn.BatchNorm2d) else None
            padding = "same" if module.padding[0] else "valid"
            # every conv of this stack is followed by a ReLU (after its batch norm, folded in here)
            conv = layers.Conv2D(module.out_channels, module.kernel_size, padding=padding, activation="relu")
            x = conv(x)
            transplants.append((conv, _conv_weights(module, norm)))
        elif isinstance(module, nn.MaxPool2d):
            x = layers.MaxPooling2D(module.kernel_size, module.stride)(x)
    rows, _, channels = x.shape[1:]
    x = layers.Reshape((-1, channels))(layers.AveragePooling2D((rows, 1))(x))
    for block in recognizer.SequenceModeling:
        lstm = layers.Bidirectional(layers.LSTM(block.rnn.hidden_size, return_sequences=True, unroll=UNROLL))
        x = lstm(x)
        transplants.append((lstm, _lstm_weights(block.rnn, "") + _lstm_weights(block.rnn, "_reverse")))
        linear = layers.Dense(block.linear.out_features)
        x = linear(x)
        transplants.append((linear, [block.linear.weight.detach().numpy().T, block.linear.bias.detach().numpy()]))
    prediction = layers.Dense(recognizer.Prediction.out_features)
    x = layers.Softmax(axis=-1)(prediction(x))
    transplants.append((prediction, [recognizer.Prediction.weight.detach().numpy().T,
                                     recognizer.Prediction.bias.detach().numpy()]))
    keras_model = keras.Model(pixels, x)
    for layer, weights in transplants:
        layer.set_weights(weights)
    return keras_model


def torch_probs(model: PixelRecognizer, pixels: np.ndarray) -> np.ndarray:
    """(N, 64, W) uint8 grey -> (N, T, classes) probabilities, from PyTorch (on one thread: with two, on a
    busy two-core machine, its thread pool's spinning made one word take seconds instead of tens of ms)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    with torch.no_grad():
        return model(torch.from_numpy(pixels[:, None].astype(np.float32))).numpy()
