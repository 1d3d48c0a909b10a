"""Native-resolution tiles: the grid's promises, exact stitching, and the same boxes as one native pass."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest

from edge.detection.boxes import match_boxes
from edge.detection.detector import Detector, boxes_in_source
from edge.detection.postprocess import Thresholds
from edge.detection.preprocess import letterbox
from edge.detection.tiling import CONTEXT, STRIDE, check_tile, padded, spans
from edge.models.runtime import find_runtime, load_model
from edge.sources.imageio import read_rgb
from tests.conftest import SAMPLES, TEST_SIZE, TEST_TILE_SIZE, quantization_of, size_name

NATIVE_SIZE = (2 * TEST_SIZE[0], 2 * TEST_SIZE[1])  # 384x512: a 640x480 sample at scale 0.8, in one pass


@pytest.mark.parametrize("seed", range(5))
def test_spans_cover_the_frame_with_context_on_the_stride_grid(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2000):
        tile = rng.choice([160, 192, 256, 288, 384, 480, 512, 640])
        context = rng.choice([CONTEXT, rng.randint(0, tile // 2 - STRIDE // 2)])
        length = rng.randint(8, 4000)
        found = spans(length, tile, context)
        assert found[0].core_start == 0 and found[-1].core_end == length
        assert found[-1].start + tile >= length, "the last tile reaches the end"
        for left, right in itertools.pairwise(found):
            assert left.core_end == right.core_start and left.core_end % 2 == 0
            assert right.start % STRIDE == 0 and right.start > left.start
            assert right.core_start - right.start >= context and left.start + tile - left.core_end >= context
        if length > tile:  # no more tiles than the context needs
            steps = math.ceil((length - tile) / STRIDE)
            assert len(found) == 1 + math.ceil(steps / ((tile - 2 * context) // STRIDE))


@pytest.mark.parametrize(("tile", "context"), [(288, 129), (288, 143), (288, 144), (160, 72), (160, -1), (200, 32)])
def test_a_context_that_leaves_no_core_step_is_refused_before_any_frame(tile: int, context: int) -> None:
    with pytest.raises(ValueError, match=f"tile {tile} must be a multiple of 32 and at least 32 more than twice"):
        check_tile((tile, tile), context)  # what Detector checks once, before the first frame
    with pytest.raises(ValueError):
        spans(4 * tile, tile, context)


def test_spans_for_common_frames() -> None:
    assert [(s.start, s.core_start, s.core_end) for s in spans(720, 384)] == [
        (0, 0, 288), (192, 288, 464), (352, 464, 720)]
    assert len(spans(1280, 384)) == 4 and len(spans(1080, 384)) == 4 and len(spans(300, 384)) == 1


class PointwiseModel:
    """A stand-in for CRAFT whose scores at a map pixel depend only on the image pixel under it,
    so stitched maps must equal a single pass exactly wherever the geometry is right."""

    def __init__(self, input_hw: tuple[int, int]) -> None:
        self.input_hw = input_hw
        self.calls = 0

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        assert pixels.shape == (*self.input_hw, 3)
        self.calls += 1
        half = pixels[::2, ::2].astype(np.float32) / 255.0
        return np.stack([half[..., 0], half[..., 1]], axis=-1)


@pytest.mark.parametrize("frame_hw", [(720, 1280), (481, 643), (150, 200), (1080, 1920)])
def test_stitched_maps_equal_a_single_pass(frame_hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 90, (*frame_hw, 3), dtype=np.uint8)  # background: scores under low_text
    for _ in range(12):  # text-like blobs, some on the frame's edges, so there are boxes to compare
        y, x = rng.integers(-8, frame_hw[0] - 8), rng.integers(-20, frame_hw[1] - 20)
        frame[max(y, 0):y + 16, max(x, 0):x + 50, :2] = 250
    tiled = Detector(PointwiseModel((192, 256)), tiling_mode="full").detect(frame)
    one_pass = letterbox(frame, padded(frame_hw), scale=1.0)  # the frame at its own size, padded to 32
    single = boxes_in_source(PointwiseModel(padded(frame_hw))(one_pass.pixels), one_pass, Thresholds())
    assert tiled.tiles_run > 1 or frame_hw == (150, 200)
    assert [b.points.tolist() for b in tiled.boxes] == [b.points.tolist() for b in single]
    assert len(single) >= 5


@pytest.fixture(scope="session")
def native_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real weights converted at twice the test size (fp32 and int8), with the test bundle's tile
    size, as a user converts a native model: the single native pass."""
    from converter.cli import main

    out = tmp_path_factory.mktemp("native")
    size = f"{NATIVE_SIZE[0]}x{NATIVE_SIZE[1]}"
    assert main(["--out", str(out), "--input-size", size, "--tile-size", size_name(TEST_TILE_SIZE),
                 "--variants", "fp32,int8", "--no-recognizer", "--threads", "2", "--force"]) == 0
    return out / size


def agreement(found: list, truth: list) -> float:
    count = match_boxes([b.points for b in found], [b.points for b in truth], min_iou=0.5)
    return count.hmean


@pytest.mark.conversion
@pytest.mark.converter  # the native model is converted here
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_full_tiling_gives_the_boxes_of_one_native_pass(model_dir: Path, native_dir: Path, variant: str) -> None:
    runtime = find_runtime()
    tile_model = load_model(model_dir / f"craft_{TEST_SIZE[0]}x{TEST_SIZE[1]}_{variant}.tflite", runtime, 2)
    native_model = load_model(native_dir / f"craft_{NATIVE_SIZE[0]}x{NATIVE_SIZE[1]}_{variant}.tflite", runtime, 2)
    tiled = Detector(tile_model, tiling_mode="full", scale=0.8, context=64)  # what these tiny tiles need
    single = Detector(native_model)  # 640x480 letterboxed into 384x512 is exactly scale 0.8
    scores, total = [], 0
    for image in sorted(SAMPLES.glob("*.jpg")):
        rgb = read_rgb(image)
        tiled_boxes, single_boxes = tiled.detect(rgb), single.boxes(rgb)
        assert tiled_boxes.tiles_run == 12  # 4 rows x 3 columns of 192x256 tiles over 384x512
        total += len(single_boxes)
        scores.append(agreement(tiled_boxes.boxes, single_boxes))
    assert total > 20
    # These test tiles are tiny (192x256) for CRAFT's receptive field, so 64 px of context leaves
    # score differences up to ~0.1 near seams, and a word on the threshold may split (measured:
    # 7 of 8 samples identical, one at H 0.83, fp32). Full-size tiles are measured by
    # bench/tiling.py on real photos.
    assert sum(score == 1.0 for score in scores) >= 6 and min(scores) >= 0.8, scores


@pytest.mark.conversion
@pytest.mark.converter
def test_a_native_model_converted_apart_is_quantised_like_the_tiles(model_dir: Path, native_dir: Path) -> None:
    """Two conversions with the same tile size and calibration frames give every int8 model the same
    ranges, so int8 tiles and an int8 native pass differ only where a tile lacks context."""
    tile = quantization_of(model_dir / f"craft_{TEST_SIZE[0]}x{TEST_SIZE[1]}_int8.tflite")
    native = quantization_of(native_dir / f"craft_{NATIVE_SIZE[0]}x{NATIVE_SIZE[1]}_int8.tflite")
    assert len(tile) >= 100 and native == tile  # CRAFT's int8 graph has 100 quantised tensors
