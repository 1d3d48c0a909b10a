"""One frame through CRAFT: letterbox, model, boxes mapped back to source-frame pixels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.postprocess import Box, Thresholds, detect_boxes
from edge.preprocess import Letterbox, letterbox

ScoreFn = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 pixels -> (H/2, W/2, 2) scores


def boxes_in_source(scores: np.ndarray, frame: Letterbox, thresholds: Thresholds) -> list[Box]:
    """Boxes from (h, w, 2) region/affinity maps, in the pixels of the frame before letterboxing."""
    map_to_input = frame.pixels.shape[0] / scores.shape[0]
    factor = map_to_input / frame.scale
    return [box.scaled(factor) for box in detect_boxes(scores[..., 0], scores[..., 1], thresholds)]


def detect(score_fn: ScoreFn, rgb: np.ndarray, input_hw: tuple[int, int], thresholds: Thresholds) -> list[Box]:
    frame = letterbox(rgb, input_hw)
    return boxes_in_source(score_fn(frame.pixels), frame, thresholds)
