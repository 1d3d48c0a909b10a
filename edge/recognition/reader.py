"""Grey word crops -> text and a score, with whatever sequence model it is handed."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.recognition.ctc import greedy_decode
from edge.recognition.preprocess import fit


class SequenceModel(Protocol):
    """A loaded recognizer: (N, height, W) uint8 grey pixels -> (N, T, C) softmax probabilities (class 0
    the CTC blank). Crops are padded to one of ``widths`` (``preprocess.fit``) so that words batch."""

    height: int
    widths: tuple[int, ...]  # ascending
    lanes: int  # calls it can run at once, from as many threads (1: one at a time)

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Reading:
    text: str
    score: float  # 0..1
    # the model's (T, C) probabilities, kept so that a pattern can steer the reading (ctc.likeliest_accepted)
    steps: np.ndarray | None = field(default=None, compare=False, repr=False)


class Reader:
    """Reads word crops with ``model``; ``variant`` names what runs (reported with the readings)."""

    def __init__(self, model: SequenceModel, charset: str, variant: str) -> None:
        self.model = model
        self.charset = charset
        self.variant = variant

    def read(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        """Grey uint8 crops of any size -> one Reading each (``preprocess.fit``: resized to the model's height
        keeping aspect, contrast stretched, padded; batched by width and spread over the model's lanes)."""
        by_width: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for index, crop in enumerate(crops):
            pixels = fit(crop, self.model.height, self.model.widths)
            by_width[pixels.shape[1]].append((index, pixels))
        # a width's words are split only where one width holds more than a lane's share: each part may
        # cost its interpreter a resize
        lanes = self.model.lanes
        share = math.ceil(len(crops) / lanes)
        parts = [batch[start:start + share] for batch in by_width.values() for start in range(0, len(batch), share)]
        inputs = [np.stack([pixels for _, pixels in part]) for part in parts]
        if lanes > 1 and len(parts) > 1:
            with ThreadPoolExecutor(lanes, thread_name_prefix="reader") as pool:
                outputs = list(pool.map(self.model, inputs))
        else:
            outputs = [self.model(batch) for batch in inputs]
        readings = {}
        for part, probs in zip(parts, outputs, strict=True):
            for (index, _), steps in zip(part, probs, strict=True):
                # a copy: a view would keep the whole batch's probabilities alive with one reused reading
                readings[index] = Reading(*greedy_decode(steps, self.charset), steps.copy())
        return [readings[index] for index in range(len(crops))]
