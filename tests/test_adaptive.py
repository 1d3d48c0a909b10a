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


@pytest.mark.parametrize("context", [32, 64])
def test_text_all_over_the_frame_never_runs_more_tiles_than_the_grid(context: int) -> None:
    height, width = tiling.padded(FRAME)
    scattered = np.random.default_rng(0).random((height // adaptive.CELL, width // adaptive.CELL)) < 0.1
    grid = tiling.plan(FRAME, TILE, context)
    assert len(adaptive.cover(scattered, FRAME, TILE, context)) > len(grid)  # greedy is not optimal here
    chosen = adaptive.fewest_tiles(scattered, grid, FRAME, TILE, context)
    assert chosen == grid  # every grid tile touches a needed cell
    sparse = np.zeros_like(scattered)
    sparse[20:22, 36:44] = True
    assert adaptive.fewest_tiles(sparse, grid, FRAME, TILE, context) == adaptive.cover(sparse, FRAME, TILE, context)


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
    assert list(zip(*np.nonzero(cells), strict=True)) == [(200 // adaptive.CELL, 400 // adaptive.CELL)]


@pytest.mark.parametrize("per_cell", [6.0, 2.5, 12.0])  # 1080p, 480p and 4K frames letterboxed into 384x640
def test_needed_cells_are_every_cell_a_coarse_score_touches(per_cell: float) -> None:
    rng = np.random.default_rng(1)
    coarse = (rng.random((40, 60, 2)) > 0.97).astype(np.float32)
    frame_hw = (int(40 * per_cell), int(60 * per_cell))
    cells = adaptive.needed_cells(coarse, per_cell, frame_hw, 0.1)
    expected = np.zeros_like(cells)
    for row, col in zip(*np.nonzero(coarse.max(axis=2) > 0.1), strict=True):  # each coarse cell's pixels, one by one
        for y in range(int(np.floor(row * per_cell)), int(np.ceil((row + 1) * per_cell))):
            for x in range(int(np.floor(col * per_cell)), int(np.ceil((col + 1) * per_cell))):
                if y // adaptive.CELL < cells.shape[0] and x // adaptive.CELL < cells.shape[1]:
                    expected[y // adaptive.CELL, x // adaptive.CELL] = True
    assert (cells == expected).all()


@pytest.mark.parametrize("context", [33, 40, 100])  # not a multiple of CELL
def test_every_needed_pixel_lies_in_a_core_whatever_the_context(context: int) -> None:
    height, width = tiling.padded(FRAME)
    rng = np.random.default_rng(context)
    cells = rng.random((height // adaptive.CELL, width // adaptive.CELL)) > 0.995
    chosen = adaptive.fewest_tiles(cells, tiling.plan(FRAME, TILE, context), FRAME, TILE, context)
    inside = np.zeros((height, width), bool)
    for tile in chosen:
        top, bottom, left, right = tile.core()
        inside[top:bottom, left:right] = True
    needed = np.kron(cells, np.ones((adaptive.CELL, adaptive.CELL), bool))
    assert not (needed & ~inside).any()


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


def test_with_gating_a_placed_tile_leaves_unchanged_cores_as_they_were() -> None:
    from edge.detection.gating import GateSettings

    plan = tiling.plan(FRAME, TILE, 32)
    first_core = plan[0].core()  # (top, bottom, left, right): the frame's top-left core
    scene = np.full((720, 1280, 3), 60, np.uint8)
    scene[100:130, first_core[3] - 90:first_core[3] - 10] = 255  # word A, inside the first core near its right edge
    coarse, tile = Bright((384, 640), 0.3), Bright(TILE, 0.9)
    now = [0.0]
    detector = Detector(coarse, tiling_mode="adaptive", tile_model=tile, gate=GateSettings(refresh_seconds=3600),
                        clock=lambda: now[0])
    detector.detect(scene)
    before = detector._memory.maps.copy()
    tile.score = 0.8  # what a tile run now pastes (above the text threshold, 0.7)
    later = scene.copy()
    later[100:130, first_core[3] + 10:first_core[3] + 90] = 255  # word B, just across in the next core
    now[0] = 1.0
    found = detector.detect(later)
    assert found.tiles_run >= 2 and len(found.boxes) == 2
    top, bottom, left, right = first_core
    kept = detector._memory.maps[top // 2:bottom // 2, left // 2:right // 2]
    assert (kept == before[top // 2:bottom // 2, left // 2:right // 2]).all()
