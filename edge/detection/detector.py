"""One frame through CRAFT: model input(s), model, boxes mapped back to source-frame pixels, timed.

The daemon, ``craft-edge detect``, ``eval``, ``bench`` and the benchmarks all run frames through
``Detector``, so they give the same boxes for the same frame and model. Tiling modes:
``off`` letterboxes the frame into the model's input (one inference); ``full`` runs the frame at
``scale`` times its size in tiles of the tile model's input size and stitches their score maps
(``edge.detection.tiling``), so small text keeps its pixels; ``adaptive`` first letterboxes the frame into the
coarse model and runs tiles placed to cover only what it scored above ``ADAPTIVE_MIN_SCORE``
(``edge.detection.adaptive``; the stitched maps are zero elsewhere: the coarse pass saw nothing
there that could make a box). With a ``gate`` (``edge.detection.gating``), a video frame runs only the tiles that
changed (in ``adaptive``: the coarse pass, then tiles where it needs them inside what changed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edge.config.settings import ConfigError
from edge.detection import adaptive, tiling
from edge.detection.gating import ChangeGate, GateSettings, Region
from edge.detection.postprocess import Box, Thresholds, detect_boxes
from edge.detection.preprocess import Letterbox, letterbox, resize
from edge.detection.tiling import TILING_MODES

if TYPE_CHECKING:
    from edge.config.settings import Config

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


# adaptive: tiles run where the coarse pass scores above this (0.15 lost faint words that the int8 coarse
# pass scored 0.10-0.15 on ICDAR photos: bench/tiling.py)
ADAPTIVE_MIN_SCORE = 0.10

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in source-frame pixels


@dataclass(frozen=True)
class Detection:
    boxes: list[Box]  # in the source frame's pixels
    timing: Timing  # inference: total model time, every tile included
    tiles_run: int  # model inferences for this frame (the coarse pass included; 0 when nothing changed)
    tiles_skipped: int = 0  # tiles not run: unchanged since last inferred, or no text in the coarse pass
    tiles: tuple[Rect, ...] = ()  # where the tiles that ran sit in the source frame


@dataclass
class _Memory:
    """What the last frame left for the next one (gating): its size, stitched maps and boxes."""

    shape: tuple[int, ...]
    boxes: list[Box]
    maps: np.ndarray | None  # stitched maps (tiling on)
    refreshed: float  # clock time of the last frame on which every region was inferred


def configured_detector(config: Config, model: SizedScoreFn, tile_model: SizedScoreFn | None = None,
                        video: bool = True) -> Detector:
    """The Detector a configuration asks for (the daemon's, and ``craft-edge frame``'s with ``video`` off:
    gating needs a stream of frames)."""
    detection, gating = config.detection, config.gating
    gate = (GateSettings(gating.threshold, gating.cell, gating.refresh_seconds)
            if gating.enabled and video else None)
    try:
        return Detector(model, Thresholds(detection.text_threshold, detection.link_threshold, detection.low_text),
                        tiling_mode=config.model.tiling, scale=config.model.scale, tile_model=tile_model, gate=gate,
                        context=config.model.context)
    except ValueError as exc:  # e.g. a context too wide for the tile model, which only loading tells
        raise ConfigError(f"model.tiling {config.model.tiling}, model.context {config.model.context}: {exc}") from exc


class Detector:
    """Frames in, boxes out. With ``gate`` (video), only what changed since the model last saw it
    is inferred again: unchanged tiles keep their stitched scores, an unchanged frame its boxes."""

    def __init__(self, model: SizedScoreFn, thresholds: Thresholds | None = None, tiling_mode: str = "off",
                 scale: float = 1.0, tile_model: SizedScoreFn | None = None, gate: GateSettings | None = None,
                 clock: Callable[[], float] = time.monotonic, context: int = tiling.CONTEXT) -> None:
        if tiling_mode not in TILING_MODES:
            raise ValueError(f"tiling {tiling_mode!r} is not one of {', '.join(TILING_MODES)}")
        if not scale > 0:
            raise ValueError(f"scale {scale!r} must be above 0")
        self.model = model  # tiling off: the only model; adaptive: the coarse pass
        self.tile_model = tile_model or model
        if tiling_mode != "off":
            tiling.check_tile(self.tile_model.input_hw, context)
        self.context = context  # pixels of picture every tile core has around it (edge.detection.tiling)
        self.thresholds = thresholds or Thresholds()
        self.tiling_mode = tiling_mode
        self.scale = scale
        self.gate = ChangeGate(gate) if gate else None
        self.clock = clock
        self._memory: _Memory | None = None
        # adaptive: below every post-processing threshold, so a tile left out could not have added a box
        self._select_score = min(ADAPTIVE_MIN_SCORE, self.thresholds.low_text, self.thresholds.link)

    def detect(self, rgb: np.ndarray) -> Detection:
        """Word boxes in ``rgb``'s pixels (an (H, W, 3) uint8 frame of any size), timed by stage."""
        if self.tiling_mode == "off":
            return self._single(rgb)
        return self._tiled(rgb)

    def boxes(self, rgb: np.ndarray) -> list[Box]:
        return self.detect(rgb).boxes

    def _refresh_due(self, shape: tuple[int, ...]) -> bool:
        memory = self._memory
        return (self.gate is None or memory is None or memory.shape != shape
                or self.clock() - memory.refreshed >= self.gate.settings.refresh_seconds)

    def _unchanged(self, start: float, skipped: int) -> Detection:
        assert self._memory is not None
        preprocess = (time.perf_counter() - start) * 1e3
        return Detection(list(self._memory.boxes), Timing(preprocess, 0.0, 0.0), tiles_run=0, tiles_skipped=skipped)

    def _single(self, rgb: np.ndarray) -> Detection:
        start = time.perf_counter()
        whole = [(0, rgb.shape[0], 0, rgb.shape[1])]
        thumbnail = self.gate.thumbnail(rgb) if self.gate else None
        refresh = self._refresh_due(rgb.shape)
        if not refresh and not self.gate.changed(thumbnail, whole)[0]:  # type: ignore[union-attr]
            return self._unchanged(start, skipped=1)
        frame = letterbox(rgb, self.model.input_hw)
        after_pre = time.perf_counter()
        scores = self.model(frame.pixels)
        after_inference = time.perf_counter()
        boxes = boxes_in_source(scores, frame, self.thresholds)
        done = time.perf_counter()
        self._remember(rgb.shape, boxes, None, thumbnail, whole, refresh)
        timing = Timing((after_pre - start) * 1e3, (after_inference - after_pre) * 1e3, (done - after_inference) * 1e3)
        return Detection(boxes, timing, tiles_run=1)

    def _remember(self, shape: tuple[int, ...], boxes: list[Box], maps: np.ndarray | None,
                  thumbnail: np.ndarray | None, regions: list[Region], refresh: bool,
                  others: Sequence[Region] = ()) -> None:
        """What the next frame is compared with: ``regions`` were seen in this frame, ``others`` not."""
        if self.gate is None:
            return
        assert thumbnail is not None
        self.gate.remember(thumbnail, regions, others)
        refreshed = self.clock() if refresh or self._memory is None else self._memory.refreshed
        self._memory = _Memory(shape, boxes, maps, refreshed)

    def _coarse(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
        """adaptive: one letterboxed pass. Its score maps, scaled-frame pixels per map cell, model seconds."""
        frame = letterbox(rgb, self.model.input_hw)
        ran = time.perf_counter()
        scores = self.model(frame.pixels)
        return scores, 2 * self.scale / frame.scale, time.perf_counter() - ran

    def _tiled(self, rgb: np.ndarray) -> Detection:
        start = time.perf_counter()
        scaled = resize(rgb, self.scale)
        tile_hw = self.tile_model.input_hw
        plan = tiling.plan(scaled.shape[:2], tile_hw, self.context)
        cores = [self._in_source(tile.core(), rgb.shape) for tile in plan]  # gating compares source pixels
        extents = [self._in_source(tile.extent(tile_hw), rgb.shape) for tile in plan]
        thumbnail = self.gate.thumbnail(rgb) if self.gate else None
        refresh = self._refresh_due(rgb.shape)
        changed = ([True] * len(plan) if refresh
                   else self.gate.changed(thumbnail, cores, extents))  # type: ignore[union-attr]
        if not any(changed):
            return self._unchanged(start, skipped=len(plan))
        last = self._memory.maps if self._memory and self._memory.shape == rgb.shape else None
        maps = tiling.empty_maps(scaled.shape[:2]) if refresh or last is None else last
        inference, runs = 0.0, 0
        stale = [tile.core() for tile, was_changed in zip(plan, changed, strict=True) if was_changed]
        if self.tiling_mode == "adaptive":  # tiles only where the coarse pass sees something that may be text
            coarse, map_to_scaled, inference = self._coarse(rgb)
            runs = 1
            cells = adaptive.needed_cells(coarse, map_to_scaled, scaled.shape[:2], self._select_score)
            to_run = adaptive.fewest_tiles(cells & adaptive.cells_of(stale, cells.shape), plan, scaled.shape[:2],
                                           tile_hw, self.context)
        else:
            to_run = [tile for tile, was_changed in zip(plan, changed, strict=True) if was_changed]
        # Tiles paste into fresh maps, which replace only the changed cores: an unchanged core keeps its
        # scores even where a placed tile's core reaches into it, and a changed one no tile ran on is zero.
        fresh = tiling.empty_maps(scaled.shape[:2])
        for tile in to_run:
            pixels = tiling.crop(scaled, tile, tile_hw)
            before = time.perf_counter()
            scores = self.tile_model(pixels)
            inference += time.perf_counter() - before
            tiling.paste_core(fresh, tile, scores)
        for top, bottom, left, right in stale:
            maps[top // 2:bottom // 2, left // 2:right // 2] = fresh[top // 2:bottom // 2, left // 2:right // 2]
        runs += len(to_run)
        after_tiles = time.perf_counter()
        factor = 2 / self.scale  # stitched maps are at half the scaled frame's size
        boxes = [box.scaled(factor) for box in detect_boxes(maps[..., 0], maps[..., 1], self.thresholds)]
        done = time.perf_counter()
        self._remember(rgb.shape, boxes, maps, thumbnail,
                       [core for core, was_changed in zip(cores, changed, strict=True) if was_changed], refresh,
                       [core for core, was_changed in zip(cores, changed, strict=True) if not was_changed])
        timing = Timing((after_tiles - start) * 1e3 - inference * 1e3, inference * 1e3, (done - after_tiles) * 1e3)
        rects = tuple((left, top, right, bottom) for top, bottom, left, right
                      in (self._in_source(tile.extent(tile_hw), rgb.shape) for tile in to_run))
        return Detection(boxes, timing, tiles_run=runs, tiles_skipped=len(plan) - len(to_run), tiles=rects)

    def _in_source(self, region: Region, shape: tuple[int, ...]) -> Region:
        """A (top, bottom, left, right) region of the scaled frame, in source-frame pixels."""
        top, bottom, left, right = region
        height, width = shape[:2]
        return (min(height, round(top / self.scale)), min(height, round(bottom / self.scale)),
                min(width, round(left / self.scale)), min(width, round(right / self.scale)))
