"""One frame through CRAFT: model input(s), model, boxes mapped back to source-frame pixels, timed.

The daemon, ``craft-edge detect``, ``eval``, ``bench`` and the benchmarks all run frames through
``Detector``, so they give the same boxes for the same frame and model. Tiling modes:
``off`` letterboxes the frame into the model's input (one inference); ``full`` runs the frame at
``scale`` times its size in tiles of the model's input size and stitches their score maps
(``edge.tiling``), so small text keeps its pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge import tiling
from edge.postprocess import Box, Thresholds, detect_boxes
from edge.preprocess import Letterbox, letterbox, resize

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


TILING_MODES = ("off", "full")


@dataclass(frozen=True)
class Detection:
    boxes: list[Box]  # in the source frame's pixels
    timing: Timing  # inference: total model time, every tile included
    tiles_run: int  # model inferences for this frame (1 when tiling is off)


class Detector:
    def __init__(self, model: SizedScoreFn, thresholds: Thresholds | None = None, tiling_mode: str = "off",
                 scale: float = 1.0) -> None:
        if tiling_mode not in TILING_MODES:
            raise ValueError(f"tiling {tiling_mode!r} is not one of {', '.join(TILING_MODES)}")
        if not scale > 0:
            raise ValueError(f"scale {scale!r} must be above 0")
        self.model = model
        self.thresholds = thresholds or Thresholds()
        self.tiling_mode = tiling_mode
        self.scale = scale

    def detect(self, rgb: np.ndarray) -> Detection:
        """Word boxes in ``rgb``'s pixels (an (H, W, 3) uint8 frame of any size), timed by stage."""
        if self.tiling_mode == "full":
            return self._tiled(rgb)
        start = time.perf_counter()
        frame = letterbox(rgb, self.model.input_hw)
        after_pre = time.perf_counter()
        scores = self.model(frame.pixels)
        after_inference = time.perf_counter()
        boxes = boxes_in_source(scores, frame, self.thresholds)
        done = time.perf_counter()
        timing = Timing((after_pre - start) * 1e3, (after_inference - after_pre) * 1e3, (done - after_inference) * 1e3)
        return Detection(boxes, timing, tiles_run=1)

    def _tiled(self, rgb: np.ndarray) -> Detection:
        start = time.perf_counter()
        scaled = resize(rgb, self.scale)
        tile_hw = self.model.input_hw
        tiles = tiling.plan(scaled.shape[:2], tile_hw)
        maps = tiling.empty_maps(scaled.shape[:2])
        preprocess = inference = 0.0
        for tile in tiles:
            cut = time.perf_counter()
            pixels = tiling.crop(scaled, tile, tile_hw)
            ran = time.perf_counter()
            scores = self.model(pixels)
            inference += time.perf_counter() - ran
            tiling.paste_core(maps, tile, scores)
            preprocess += ran - cut
        after_tiles = time.perf_counter()
        preprocess += after_tiles - start - preprocess - inference  # the resize and the stitching
        factor = 2 / self.scale  # stitched maps are at half the scaled frame's size
        boxes = [box.scaled(factor) for box in detect_boxes(maps[..., 0], maps[..., 1], self.thresholds)]
        done = time.perf_counter()
        timing = Timing(preprocess * 1e3, inference * 1e3, (done - after_tiles) * 1e3)
        return Detection(boxes, timing, tiles_run=len(tiles))

    def boxes(self, rgb: np.ndarray) -> list[Box]:
        return self.detect(rgb).boxes
