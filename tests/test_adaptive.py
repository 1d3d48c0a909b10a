"""adaptive tiling's placement: tiles cover every place the coarse pass needs read again, with their
cores, on the stride grid, and the coarse scores stand everywhere else."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edge.detection import adaptive, tiling
from edge.detection.detector import Detector

FRAME = (720, 1280)
TILE = (288, 288)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("context", [32, 64])
def test_the_placed_tiles_cores_cover_every_needed_cell(seed: int, context: int) -> None:
    rng = random.Random(seed)
    height, width = tiling.padded(FRAME)
    cells = np.zeros((height // adaptive.CELL, width // adaptive.CELL), bool)
    for _ in range(rng.randint(1, 6)):  # a few clusters of small words
        top, left = rng.randrange(cells.shape[0]), rng.randrange(cells.shape[1])
        cells[top:top + rng.randint(1, 4), left:left + rng.randint(1, 12)] = True
    placed = adaptive.cover(cells, FRAME, TILE, context)
    covered = adaptive.cells_of([tile.core() for tile in placed], cells.shape)
    assert not (cells & ~covered).any()
    for tile in placed:
        top, bottom, left, right = tile.core()
        assert tile.rows.start % tiling.STRIDE == 0 and tile.cols.start % tiling.STRIDE == 0
        assert tile.rows.start + TILE[0] <= height and tile.cols.start + TILE[1] <= width
        # every core pixel has `context` of picture around it, except along the frame's own edges
        assert top == 0 or top - tile.rows.start >= context
        assert left == 0 or left - tile.cols.start >= context
        assert bottom == height or tile.rows.start + TILE[0] - bottom >= context
        assert right == width or tile.cols.start + TILE[1] - right >= context
    assert len(placed) <= len(tiling.plan(FRAME, TILE, context))


def test_nothing_needed_places_no_tile() -> None:
    height, width = tiling.padded(FRAME)
    assert adaptive.cover(np.zeros((height // adaptive.CELL, width // adaptive.CELL), bool), FRAME, TILE, 64) == []


def test_one_small_word_is_one_tile_where_a_grid_may_need_four() -> None:
    height, width = tiling.padded(FRAME)
    cells = np.zeros((height // adaptive.CELL, width // adaptive.CELL), bool)
    cells[20:22, 36:44] = True  # a word of 128x32 px around (592, 336)
    assert len(adaptive.cover(cells, FRAME, TILE, 64)) == 1


def test_needed_cells_follow_the_coarse_scores_above_the_select_score() -> None:
    coarse = np.zeros((192, 320, 2), np.float32)  # a 1280x720 frame letterboxed into 384x640: 4 frame px per cell
    coarse[50, 100, 0] = 0.2  # one faint cell: frame pixels 200-203 down, 400-403 across
    coarse[10, 10, 1] = 0.05  # below the select score
    cells = adaptive.needed_cells(coarse, 4.0, FRAME, 0.1)
    rows, cols = np.nonzero(cells)
    margin = adaptive.MARGIN_CELLS
    assert (rows.min(), rows.max()) == (200 // adaptive.CELL - margin, 203 // adaptive.CELL + margin)
    assert (cols.min(), cols.max()) == (400 // adaptive.CELL - margin, 403 // adaptive.CELL + margin)


class Bright:
    """A stand-in model: scores ``score`` wherever a pixel is brighter than 200."""

    def __init__(self, input_hw: tuple[int, int], score: float) -> None:
        self.input_hw = input_hw
        self.score = score
        self.calls = 0

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.calls += 1
        scores = np.zeros((pixels.shape[0] // 2, pixels.shape[1] // 2, 2), np.float32)
        scores[pixels.max(axis=2)[::2, ::2] > 200] = self.score
        return scores


def test_adaptive_reads_a_faint_word_with_the_tiles_around_it_only() -> None:
    scene = np.full((720, 1280, 3), 60, np.uint8)
    scene[100:160, 200:600] = 255  # a large word
    coarse, tile = Bright((384, 640), 0.3), Bright(TILE, 0.9)
    found = Detector(coarse, tiling_mode="adaptive", tile_model=tile).detect(scene)
    # the coarse pass scores the word 0.3: under every threshold, so tiles read it; no tile runs elsewhere
    assert (coarse.calls, found.tiles_run) == (1, 1 + tile.calls) and 1 <= tile.calls <= 4
    assert len(found.boxes) == 1
    x0, y0 = found.boxes[0].points.min(axis=0)
    x1, y1 = found.boxes[0].points.max(axis=0)
    assert abs(x0 - 200) <= 16 and abs(x1 - 600) <= 16 and abs(y0 - 100) <= 16 and abs(y1 - 160) <= 16  # CRAFT dilates
