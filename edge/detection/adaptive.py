"""``adaptive`` tiling: which native-scale tiles a frame needs, from one letterboxed (coarse) pass.

The coarse pass sees the whole frame small; wherever it scores above ``select_score`` (below every
post-processing threshold) a word may be, so tiles are placed on the stride grid to cover those
places with their cores, fewest first (greedy set cover), instead of running every grid tile whose
core they touch. Their scores are pasted over the coarse pass's (which stand elsewhere: none there
can make a box) and post-processing runs once on the stitched maps, as in ``full``: maps stitched,
boxes never merged.

Measured on the benchmark (200 ICDAR 2015 photos, int8, ``bench/tiling.py``, docs/benchmarks.md):
the grid rule ran 5.0 tiles per photo (0.75x a native pass's model time at context 64); placed
tiles with context 32 run 2.8 (0.54x) at the native pass's H-mean. Trusting the coarse pass for
words it finds at least ``textsize.GOOD_BOX_HEIGHT`` high (no tile over them) lost 1.2 points: at
half scale neighbouring words merge into one box.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge.detection import tiling

CELL = 16  # pixels of the scaled frame per cell of the needed-places grid (a multiple of 2, divides STRIDE)
MARGIN_CELLS = 0  # needed places grow by this many cells (1 ran 11 % more tiles on the benchmark, H no better)


def needed_cells(coarse: np.ndarray, map_to_scaled: float, scaled_hw: tuple[int, int],
                 select_score: float) -> np.ndarray:
    """Cells (CELL pixels of the scaled frame) where tiles must run: coarse scores above ``select_score``,
    grown by MARGIN_CELLS.

    ``map_to_scaled``: scaled-frame pixels per coarse map cell."""
    height, width = tiling.padded(scaled_hw)
    cells = np.zeros((height // CELL, width // CELL), np.uint8)
    ys, xs = np.nonzero(coarse.max(axis=2) > select_score)
    first = (ys * map_to_scaled, xs * map_to_scaled)  # each coarse cell's first scaled-frame pixel
    last = ((ys + 1) * map_to_scaled - 1, (xs + 1) * map_to_scaled - 1)  # and its last
    for rows, cols in (first, last):
        cells[np.clip(rows // CELL, 0, cells.shape[0] - 1).astype(int),
              np.clip(cols // CELL, 0, cells.shape[1] - 1).astype(int)] = 1
    grow = 2 * MARGIN_CELLS + 1
    return cv2.dilate(cells, np.ones((grow, grow), np.uint8)).astype(bool)


def cells_of(regions: list[tuple[int, int, int, int]], shape: tuple[int, int]) -> np.ndarray:
    """The cells that (top, bottom, left, right) regions of the scaled frame touch."""
    cells = np.zeros(shape, bool)
    for top, bottom, left, right in regions:
        cells[top // CELL:-(-bottom // CELL), left // CELL:-(-right // CELL)] = True
    return cells


def placed_span(start: int, length: int, tile: int, context: int) -> tiling.Span:
    """A tile at ``start`` (on the stride grid) and its core: ``context`` in from each side inside the
    frame, out to the frame's edge where the tile touches it."""
    end = start + tile
    return tiling.Span(start, 0 if start == 0 else start + context, length if end >= length else end - context)


def _starts(length: int, tile: int) -> list[int]:
    if length <= tile:
        return [0]
    last = math.ceil((length - tile) / tiling.STRIDE) * tiling.STRIDE
    return list(range(0, last + 1, tiling.STRIDE))


def cover(cells: np.ndarray, scaled_hw: tuple[int, int], tile_hw: tuple[int, int], context: int) -> list[tiling.Tile]:
    """The fewest tiles (greedy) whose cores cover every needed cell, in the order chosen."""
    height, width = tiling.padded(scaled_hw)
    rows = [placed_span(start, height, tile_hw[0], context) for start in _starts(height, tile_hw[0])]
    cols = [placed_span(start, width, tile_hw[1], context) for start in _starts(width, tile_hw[1])]
    left = cells.copy()
    chosen: list[tiling.Tile] = []
    while left.any():
        table = np.pad(left.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table of what is left
        best, best_count = None, 0
        for row in rows:
            top, bottom = row.core_start // CELL, -(-row.core_end // CELL)
            for col in cols:
                lo, hi = col.core_start // CELL, -(-col.core_end // CELL)
                count = table[bottom, hi] - table[top, hi] - table[bottom, lo] + table[top, lo]
                if count > best_count:
                    best, best_count = tiling.Tile(row, col), count
        assert best is not None  # every cell lies in some core: the cores of the grid's first row/column reach 0
        top, bottom, lo, hi = best.core()
        left[top // CELL:-(-bottom // CELL), lo // CELL:-(-hi // CELL)] = False
        chosen.append(best)
    return chosen


def coarse_into(maps: np.ndarray, coarse: np.ndarray, map_to_scaled: float,
                regions: list[tuple[int, int, int, int]]) -> None:
    """Write the coarse scores, resized to the stitched maps' cells, into ``regions`` (scaled-frame
    (top, bottom, left, right), even) of ``maps``."""
    ratio = map_to_scaled / 2  # stitched cells per coarse cell
    rows, cols = maps.shape[:2]
    need_rows = min(coarse.shape[0], math.ceil(rows / ratio) + 1)
    need_cols = min(coarse.shape[1], math.ceil(cols / ratio) + 1)
    resized = cv2.resize(coarse[:need_rows, :need_cols], (round(need_cols * ratio), round(need_rows * ratio)),
                         interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros_like(maps)
    canvas[:min(rows, resized.shape[0]), :min(cols, resized.shape[1])] = resized[:rows, :cols]
    for top, bottom, lo, hi in regions:
        maps[top // 2:bottom // 2, lo // 2:hi // 2] = canvas[top // 2:bottom // 2, lo // 2:hi // 2]
