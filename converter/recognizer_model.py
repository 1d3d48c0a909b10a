"""EasyOCR's 2nd-generation English recognizer (``english_g2.pth``) in PyTorch, key-compatible with it.

A CRNN: a VGG-style convolutional stack (1 grey channel in, 256 out, height 64 -> 3 rows, width W ->
W/4 - 1 columns), the rows averaged away (EasyOCR's ``AdaptiveAvgPool2d((None, 1))`` over height),
two bidirectional LSTMs (hidden 256, each followed by a linear layer back to 256) and a linear layer to
97 classes: the CTC blank and the 96 characters of ``CHARSET``. Module names follow EasyOCR's
``model/vgg_model.py`` ``Model`` so ``load_state_dict(strict=True)`` takes the checkpoint (its
``module.`` DataParallel prefix stripped).

``PixelRecognizer`` is what is converted: grey pixels 0..255 in (N, 1, 64, W), EasyOCR's
normalisation ((x/255 - 0.5)/0.5) and a softmax inside, so the device feeds pixels and gets
probabilities.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from converter.model import default_weights_path, load_state_dict, load_strict

WEIGHTS = "english_g2.pth"
CHARSET = "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HEIGHT = 64
HIDDEN = 256
CHANNELS = (32, 64, 128, 256)  # output_channel / 8, / 4, / 2, / 1 with EasyOCR's output_channel 256
NORMALIZATION = "in graph: grey pixels 0..255, (x/255 - 0.5) / 0.5; output: softmax over classes"


def feature_extractor() -> nn.Sequential:
    """EasyOCR's ``VGG_FeatureExtractor(1, 256)``; the layer indices are the checkpoint's key names."""
    c1, c2, c3, c4 = CHANNELS
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(c1, c2, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(c2, c3, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(c3, c3, 3, 1, 1), nn.ReLU(), nn.MaxPool2d((2, 1), (2, 1)),
        nn.Conv2d(c3, c4, 3, 1, 1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(),
        nn.Conv2d(c4, c4, 3, 1, 1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(), nn.MaxPool2d((2, 1), (2, 1)),
        nn.Conv2d(c4, c4, 2, 1, 0), nn.ReLU(),
    )


class FeatureExtraction(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ConvNet = feature_extractor()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(images)


class BidirectionalLSTM(nn.Module):
    """EasyOCR's ``BidirectionalLSTM``: an LSTM both ways, then a linear layer over both directions."""

    def __init__(self, size: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(size, hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden, hidden)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return self.linear(self.rnn(sequence)[0])


class Recognizer(nn.Module):
    """(N, 1, 64, W) normalised grey -> (N, W/4 - 1, 97) class scores (logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.FeatureExtraction = FeatureExtraction()
        self.SequenceModeling = nn.Sequential(BidirectionalLSTM(CHANNELS[-1], HIDDEN),
                                              BidirectionalLSTM(HIDDEN, HIDDEN))
        self.Prediction = nn.Linear(HIDDEN, len(CHARSET) + 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.FeatureExtraction(images)  # (N, C, 3, T)
        sequence = features.mean(dim=2).permute(0, 2, 1)  # rows averaged: (N, T, C)
        return self.Prediction(self.SequenceModeling(sequence))


class PixelRecognizer(nn.Module):
    """(N, 1, 64, W) grey pixels 0..255 -> (N, T, 97) softmax probabilities (blank = class 0)."""

    def __init__(self, recognizer: Recognizer) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.recognizer(pixels / 127.5 - 1.0), dim=2)


def default_recognizer_weights() -> Path:
    return default_weights_path(WEIGHTS)


def load_recognizer(path: Path) -> PixelRecognizer:
    """``path`` loaded strictly (keys and shapes) into the recognizer, in eval mode."""
    recognizer = Recognizer()
    load_strict(recognizer, load_state_dict(path), path, "EasyOCR english_g2 recognizer")
    return PixelRecognizer(recognizer.eval()).eval()
