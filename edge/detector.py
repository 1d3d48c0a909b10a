"""One frame through CRAFT: letterbox, model, boxes mapped back to source-frame pixels, timed.

The daemon, ``craft-edge detect``, ``eval``, ``bench`` and the benchmarks all run frames through
``Detector``, so they give the same boxes for the same frame and model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.postprocess import Box, Thresholds, detect_boxes
from edge.preprocess import Letterbox, letterbox

ScoreFn = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 pixels -> (H/2, W/2, 2) scores


class SizedScoreFn(Protocol):
    """A model or a runner: callable on pixels of its fixed input size."""

    @property
    def input_hw(self) -> tuple[int, int]: ...

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Timing:
    """Milliseconds spent on one frame, by stage."""

    preprocess: float
    inference: float
    postprocess: float

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess


def boxes_in_source(scores: np.ndarray, frame: Letterbox, thresholds: Thresholds) -> list[Box]:
    """Boxes from (h, w, 2) region/affinity maps, in the pixels of the frame before letterboxing."""
    map_to_input = frame.pixels.shape[0] / scores.shape[0]
    factor = map_to_input / frame.scale
    return [box.scaled(factor) for box in detect_boxes(scores[..., 0], scores[..., 1], thresholds)]


class Detector:
    def __init__(self, model: SizedScoreFn, thresholds: Thresholds | None = None) -> None:
        self.model = model
        self.thresholds = thresholds or Thresholds()

    def detect(self, rgb: np.ndarray) -> tuple[list[Box], Timing]:
        """Word boxes in ``rgb``'s pixels (an (H, W, 3) uint8 frame of any size), and the time each stage took."""
        start = time.perf_counter()
        frame = letterbox(rgb, self.model.input_hw)
        after_pre = time.perf_counter()
        scores = self.model(frame.pixels)
        after_inference = time.perf_counter()
        boxes = boxes_in_source(scores, frame, self.thresholds)
        done = time.perf_counter()
        return boxes, Timing((after_pre - start) * 1e3, (after_inference - after_pre) * 1e3,
                             (done - after_inference) * 1e3)

    def boxes(self, rgb: np.ndarray) -> list[Box]:
        return self.detect(rgb)[0]
