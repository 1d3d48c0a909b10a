"""Native-resolution tiles: cover a frame with model-sized tiles and stitch their score maps.

A 1280x720 frame letterboxed into 384x640 loses most words under 24 px; running the frame at its
own scale keeps them, but a model of that size is slow and too large for the Edge TPU. So the
frame is covered by tiles of the model's input size that overlap, each tile contributes only its
*core* (overlaps are split halfway, so every core pixel has at least ``context`` pixels of
picture around it inside the tile), and the stitched region/affinity maps are post-processed
once, exactly as a single pass would be. Boxes are never merged by heuristics.

Tile origins are multiples of 32 (CRAFT's total stride), so a tile sees the same pooling grid as a
single pass over the whole frame would; what still differs is how far each tile sees. CRAFT's
receptive field is wide: a tile's scores differ from the whole frame's by up to 0.35 at 64-80 px
from its edge and still 0.14 at 128-160 px (``bench/tile_edges.py``), so stitched boxes match one
pass closely but not exactly (README, "Small text"). Tiles are spread evenly over the frame, so
none sticks out more than rounding to 32 needs. Memory is one stitched map (a quarter of the
frame's pixels, 2 channels) plus one tile.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

TILING_MODES = ("off", "full", "adaptive")  # what edge.detection.detector.Detector runs; see its docstring
STRIDE = 32  # CRAFT's total downsampling: tile origins on this grid see identical pooling windows
CONTEXT = 32  # pixels of picture around every core pixel, at least; model.context (on the benchmark, adaptive at
# 32 keeps the native pass's H-mean with 3/4 of the tiles 64 needs: edge.detection.adaptive, README)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: where it starts, and the part of the frame it is responsible for."""

    start: int  # first frame pixel the tile covers (a multiple of STRIDE)
    core_start: int  # [core_start, core_end): frame pixels whose scores come from this tile (even numbers)
    core_end: int


def spans(length: int, tile: int, context: int = CONTEXT) -> list[Span]:
    """Tiles of ``tile`` pixels covering ``length`` with at least ``2 * context`` overlap, evenly spread."""
    if tile % STRIDE or tile - 2 * context < STRIDE or context < 0:  # a core must be a step of at least STRIDE
        raise ValueError(f"tile {tile} must be a multiple of {STRIDE} and at least {STRIDE} more than twice the "
                         f"context {context} (>= 0), so context <= {max(tile // 2 - STRIDE // 2, 0)}")
    if length <= tile:
        return [Span(0, 0, length)]
    units = math.ceil((length - tile) / STRIDE)  # the last tile must reach the frame's end
    most = (tile - 2 * context) // STRIDE  # the largest step, in STRIDE units, that keeps the context
    gaps = math.ceil(units / most)
    small, larger = divmod(units, gaps)  # spread evenly: `larger` steps of small+1 units, the rest of small
    steps = [small + 1] * larger + [small] * (gaps - larger)
    starts = [0]
    for step in steps:
        starts.append(starts[-1] + step * STRIDE)
    # where two neighbours overlap, each takes half: an even boundary, since the maps are half size
    bounds = [0] + [2 * ((b + a + tile) // 4) for a, b in itertools.pairwise(starts)] + [length]
    return [Span(start, bounds[i], bounds[i + 1]) for i, start in enumerate(starts)]


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    @classmethod
    def window(cls, top: int, left: int, tile_hw: tuple[int, int]) -> Tile:
        """A tile at (top, left) of the frame that is its own core (calibration crops, benchmarks)."""
        return cls(Span(top, top, top + tile_hw[0]), Span(left, left, left + tile_hw[1]))

    def core(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the frame pixels this tile is responsible for."""
        return self.rows.core_start, self.rows.core_end, self.cols.core_start, self.cols.core_end

    def extent(self, tile_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the frame pixels the tile's model sees (padding included)."""
        return self.rows.start, self.rows.start + tile_hw[0], self.cols.start, self.cols.start + tile_hw[1]


def check_tile(tile_hw: tuple[int, int], context: int = CONTEXT) -> None:
    """ValueError unless tiles of ``tile_hw`` can cover a frame (the checks ``spans`` makes)."""
    for side in tile_hw:
        spans(side, side, context)


def padded(frame_hw: tuple[int, int]) -> tuple[int, int]:
    """The frame's size rounded up to STRIDE, as a single pass pads it (black below and right)."""
    return -(-frame_hw[0] // STRIDE) * STRIDE, -(-frame_hw[1] // STRIDE) * STRIDE


def plan(frame_hw: tuple[int, int], tile_hw: tuple[int, int], context: int = CONTEXT) -> list[Tile]:
    """The tiles covering a frame and its padding, row by row."""
    height, width = padded(frame_hw)
    return [Tile(r, c) for r in spans(height, tile_hw[0], context) for c in spans(width, tile_hw[1], context)]


def crop(rgb: np.ndarray, tile: Tile, tile_hw: tuple[int, int]) -> np.ndarray:
    """The tile's pixels, black beyond the frame's bottom and right edges (as a single pass pads)."""
    pixels = np.zeros((*tile_hw, 3), dtype=np.uint8)
    part = rgb[tile.rows.start:tile.rows.start + tile_hw[0], tile.cols.start:tile.cols.start + tile_hw[1]]
    pixels[:part.shape[0], :part.shape[1]] = part
    return pixels


def empty_maps(frame_hw: tuple[int, int]) -> np.ndarray:
    """Region/affinity maps at half the padded frame's size, to stitch tiles into."""
    height, width = padded(frame_hw)
    return np.zeros((height // 2, width // 2, 2), dtype=np.float32)


def paste_core(maps: np.ndarray, tile: Tile, scores: np.ndarray) -> None:
    """Copy the tile's core from its (tile/2, tile/2, 2) scores into the stitched ``maps``."""
    top, bottom = tile.rows.core_start // 2, tile.rows.core_end // 2
    left, right = tile.cols.core_start // 2, tile.cols.core_end // 2
    origin_y, origin_x = tile.rows.start // 2, tile.cols.start // 2
    maps[top:bottom, left:right] = scores[top - origin_y:bottom - origin_y, left - origin_x:right - origin_x]

