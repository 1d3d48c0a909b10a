"""``adaptive`` tiling: which native-scale tiles a frame needs, from one letterboxed (coarse) pass.

The coarse pass sees the whole frame small; wherever it scores above ``select_score`` (below every
post-processing threshold) a word may be, so tiles are placed on the stride grid to cover those
places with their cores (greedy set cover), instead of running every grid tile whose core they
touch. Their scores are stitched, zero elsewhere (the coarse pass scored nothing there that could
make a box), and post-processing runs once on the stitched maps, as in ``full``: maps stitched,
boxes never merged.

Measured on the benchmark (200 ICDAR 2015 photos, int8, ``bench/tiling.py``, docs/benchmarks.md):
the grid rule ran 5.0 tiles per photo (0.75x a native pass's model time at context 64); placed
tiles with context 32 run 2.8 (about half its model time) at the native pass's H-mean. Trusting the coarse pass for
words it finds at least ``textsize.GOOD_BOX_HEIGHT`` high (no tile over them) lost 1.2 points: at
half scale neighbouring words merge into one box.
"""

from __future__ import annotations

import math

import numpy as np

from edge.detection import tiling

CELL = 16  # pixels of the scaled frame per cell of the needed-places grid (a multiple of 2, divides STRIDE)


def _touching(count: int, pixels_per: float, cells: int) -> np.ndarray:
    """(count, cells): does coarse row (or column) i, scaled-frame pixels [i * pixels_per, (i + 1) *
    pixels_per), touch cell j? Every cell it touches, however little (a coarse cell straddles up to
    two cells per axis when pixels_per does not divide CELL)."""
    index = np.arange(count)
    first = np.floor(index * pixels_per).astype(int) // CELL
    last = (np.ceil((index + 1) * pixels_per).astype(int) - 1) // CELL
    cell = np.arange(cells)
    return (cell >= first[:, None]) & (cell <= last[:, None])


def needed_cells(coarse: np.ndarray, map_to_scaled: float, scaled_hw: tuple[int, int],
                 select_score: float) -> np.ndarray:
    """Cells (CELL pixels of the scaled frame) where tiles must run: every cell a coarse score above
    ``select_score`` touches. (Growing them by a cell ran 11 % more tiles on the benchmark for no gain.)

    ``map_to_scaled``: scaled-frame pixels per coarse map cell."""
    height, width = tiling.padded(scaled_hw)
    above = (coarse.max(axis=2) > select_score).astype(np.float32)
    rows = _touching(above.shape[0], map_to_scaled, height // CELL).astype(np.float32)
    cols = _touching(above.shape[1], map_to_scaled, width // CELL).astype(np.float32)
    return rows.T @ above @ cols > 0


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


def _placements(length: int, tile: int, context: int) -> list[tiling.Span]:
    """Every tile position on the stride grid along one side, with its core."""
    last = max(0, math.ceil((length - tile) / tiling.STRIDE) * tiling.STRIDE)
    return [placed_span(start, length, tile, context) for start in range(0, last + 1, tiling.STRIDE)]


def cover(cells: np.ndarray, scaled_hw: tuple[int, int], tile_hw: tuple[int, int], context: int,
          limit: int | None = None) -> list[tiling.Tile] | None:
    """Tiles placed greedily (the one whose core holds most needed cells first) until their cores hold
    every needed cell whole. None when that takes more than ``limit`` tiles, or when some cell lies whole
    in no core (a ``context`` that is not a multiple of CELL can leave one)."""
    height, width = tiling.padded(scaled_hw)
    rows, cols = _placements(height, tile_hw[0], context), _placements(width, tile_hw[1], context)
    # the cells each placement's core holds whole: [first, end) per axis
    row_first = np.array([-(-span.core_start // CELL) for span in rows])
    row_end = np.array([span.core_end // CELL for span in rows])
    col_first = np.array([-(-span.core_start // CELL) for span in cols])
    col_end = np.array([span.core_end // CELL for span in cols])
    left = cells.copy()
    chosen: list[tiling.Tile] = []
    while left.any():
        if limit is not None and len(chosen) >= limit:
            return None
        table = np.pad(left.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table of what is left
        counts = (table[row_end[:, None], col_end[None, :]] - table[row_first[:, None], col_end[None, :]]
                  - table[row_end[:, None], col_first[None, :]] + table[row_first[:, None], col_first[None, :]])
        best = int(np.argmax(counts))
        r, c = divmod(best, len(cols))
        if counts[r, c] <= 0:
            return None
        left[row_first[r]:row_end[r], col_first[c]:col_end[c]] = False
        chosen.append(tiling.Tile(rows[r], cols[c]))
    return chosen


def fewest_tiles(cells: np.ndarray, grid: list[tiling.Tile], scaled_hw: tuple[int, int],
                 tile_hw: tuple[int, int], context: int) -> list[tiling.Tile]:
    """The placed cover, or the ``grid`` tiles (whose cores split the frame) that touch a needed cell
    when they are no more: greedy is not optimal, and with text all over the frame it would place
    more tiles than ``full`` runs."""
    touching = [tile for tile in grid if (cells & cells_of([tile.core()], cells.shape)).any()]
    placed = cover(cells, scaled_hw, tile_hw, context, limit=len(touching))
    return touching if placed is None else placed
