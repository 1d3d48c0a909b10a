"""Grey word crops -> text and a score, with whatever sequence model it is handed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.recognition.ctc import greedy_decode
from edge.recognition.preprocess import fit, stretch_contrast

# EasyOCR's second look: a word read with a score under SECOND_LOOK is read again with its contrast
# stretched (to STRETCH_TARGET), and the better-scored reading is kept.
SECOND_LOOK = 0.1
STRETCH_TARGET = 0.5


class SequenceModel(Protocol):
    """A loaded recognizer: (N, height, W) uint8 grey pixels -> (N, T, C) softmax probabilities (class 0
    the CTC blank). Crops are padded to one of ``widths`` (``preprocess.fit``) so that words batch."""

    height: int
    widths: tuple[int, ...]  # ascending

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Reading:
    text: str
    score: float  # 0..1


class Reader:
    """Reads word crops with ``model``; ``variant`` names what runs (reported with the readings)."""

    def __init__(self, model: SequenceModel, charset: str, variant: str,
                 second_look: float = SECOND_LOOK) -> None:
        self.model = model
        self.charset = charset
        self.variant = variant
        self.second_look = second_look

    def read(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        """Grey uint8 crops of any size -> one Reading each (resized to height 64 keeping aspect, batched by width)."""
        readings = self._read_once(crops)
        again = [i for i, reading in enumerate(readings) if reading.score < self.second_look]
        if again:
            stretched = self._read_once([stretch_contrast(crops[i], STRETCH_TARGET) for i in again])
            for i, reading in zip(again, stretched, strict=True):
                if reading.score >= readings[i].score:  # a tie goes to the second look, as in EasyOCR
                    readings[i] = reading
        return readings

    def _read_once(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        by_width: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for index, crop in enumerate(crops):
            pixels = fit(crop, self.model.height, self.model.widths)
            by_width[pixels.shape[1]].append((index, pixels))
        readings = {}
        for batch in by_width.values():
            probs = self.model(np.stack([pixels for _, pixels in batch]))
            for (index, _), steps in zip(batch, probs, strict=True):
                readings[index] = Reading(*greedy_decode(steps, self.charset))
        return [readings[index] for index in range(len(crops))]
