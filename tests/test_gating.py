"""Change gating on the project's clip: few tile inferences, and every event in the first frame showing it.

The clip (data/clip) is a static scene with sensor noise and a slow brightness drift; words
appear, move and vanish at known frames (clip.json). Gating must skip what did not change and
still reflect each event in the boxes of the frame where it happens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detection.boxes import match_boxes
from edge.detection.detector import Detector
from edge.detection.gating import ChangeGate, GateSettings
from edge.detection.preprocess import resize
from edge.detection.tiling import plan
from edge.models.manifest import load_manifest
from edge.models.runtime import CraftModel, find_runtime, load_model

CLIP = Path(__file__).resolve().parent.parent / "data" / "clip"
FRAME_SECONDS = 1 / 12


def clip_frames() -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(CLIP / "clip.avi"))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


@pytest.fixture(scope="module")
def clip() -> dict:
    return json.loads((CLIP / "clip.json").read_text())


def word(clip: dict, frame: int, text: str) -> np.ndarray:
    return next(np.array(w["poly"]) for w in clip["frames"][frame]["words"] if w["text"] == text)


def test_noise_and_drift_are_not_changes_but_a_new_word_is(clip: dict) -> None:
    gate = ChangeGate(GateSettings())
    frames = list(zip(range(16), clip_frames(), strict=False))
    first = frames[0][1]
    cores = [tile.core() for tile in plan(first.shape[:2], (288, 288))]
    gate.remember(gate.thumbnail(first), cores)
    taxi = word(clip, 8, "Taxi").mean(axis=0)  # centre (x, y)
    for index, rgb in frames[1:8]:  # noise and drift only
        assert not any(gate.changed(gate.thumbnail(rgb), cores)), index
    changed = gate.changed(gate.thumbnail(frames[8][1]), cores)
    hit = [core for core, was in zip(cores, changed, strict=True) if was]
    assert hit and all(top - 8 <= taxi[1] < bottom + 8 and left - 8 <= taxi[0] < right + 8
                       for top, bottom, left, right in hit), (hit, taxi)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def tile_model(model_dir: Path) -> CraftModel:
    return load_model(model_dir / load_manifest(model_dir).variant("int8").file, find_runtime(), 2)


def test_gating_on_the_clip_runs_ten_times_fewer_tiles_and_catches_every_event(clip: dict,
                                                                                tile_model: CraftModel) -> None:
    clock = Clock()
    gated = Detector(tile_model, tiling_mode="full", gate=GateSettings(refresh_seconds=3600), clock=clock)
    every_frame = Detector(tile_model, tiling_mode="full")
    events = {event["frame"]: event for event in clip["events"]}
    runs = 0
    tiles_per_frame = 0
    seen: set[tuple[str, str]] = set()
    checked: set[tuple[str, str]] = set()
    for index, rgb in enumerate(clip_frames()):
        clock.now = index * FRAME_SECONDS
        detection = gated.detect(rgb)
        runs += detection.tiles_run
        tiles_per_frame = detection.tiles_run + detection.tiles_skipped
        event = events.get(index)
        if event is None:
            continue
        key = (event["kind"], event["text"])
        found = [box.points for box in detection.boxes]
        if event["kind"] == "vanish":
            assert match_boxes(found, [word(clip, index - 1, event["text"])], 0.3).matched == 0, event
        if key not in checked:  # first frame of each event: the same boxes as running every tile
            checked.add(key)
            reference = [box.points for box in every_frame.detect(rgb).boxes]
            assert match_boxes(found, reference).matched == len(found) == len(reference), event
            if event["kind"] != "vanish" and match_boxes(reference, [word(clip, index, event["text"])]).matched:
                seen.add(key)
        if key in seen:  # a word the model sees: found where it is now, in every frame of the event
            assert match_boxes(found, [word(clip, index, event["text"])]).matched == 1, event
    # the events the model can see at all were seen, in their first frame, with the gate on
    assert seen >= {("appear", "Platform"), ("move", "Tickets")}, seen
    frames = len(clip["frames"])
    assert frames * tiles_per_frame >= 10 * runs, (frames * tiles_per_frame, runs)


def test_a_refresh_runs_every_tile_again_and_an_unchanged_frame_none(tile_model: CraftModel) -> None:
    clock = Clock()
    detector = Detector(tile_model, tiling_mode="full", gate=GateSettings(refresh_seconds=10), clock=clock)
    rgb = next(clip_frames())[:400, :600]
    first = detector.detect(rgb)
    assert first.tiles_run > 1 and first.tiles_skipped == 0
    assert len(first.tiles) == first.tiles_run and max(rect[2] for rect in first.tiles) == rgb.shape[1]
    assert all(0 <= x0 < x1 <= rgb.shape[1] and 0 <= y0 < y1 <= rgb.shape[0] for x0, y0, x1, y1 in first.tiles)
    again = detector.detect(rgb)
    assert (again.tiles_run, again.tiles_skipped) == (0, first.tiles_run)
    assert [b.points.tolist() for b in again.boxes] == [b.points.tolist() for b in first.boxes]
    clock.now = 10.0
    assert detector.detect(rgb).tiles_run == first.tiles_run


def test_gating_with_tiling_off_skips_the_single_pass(tile_model: CraftModel) -> None:
    detector = Detector(tile_model, gate=GateSettings(), clock=Clock())
    frames = clip_frames()
    rgb = next(frames)
    assert detector.detect(rgb).tiles_run == 1
    assert detector.detect(next(frames)).tiles_run == 0  # noise and drift only
    covered = rgb.copy()
    covered[300:420, 500:700] = 255
    assert detector.detect(covered).tiles_run == 1


class Bright:
    """A stand-in model: scores ``score`` wherever a pixel is brighter than 200 (0 with ``score`` 0)."""

    def __init__(self, input_hw: tuple[int, int], score: float) -> None:
        self.input_hw = input_hw
        self.score = score

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        scores = np.zeros((pixels.shape[0] // 2, pixels.shape[1] // 2, 2), np.float32)
        scores[pixels.max(axis=2)[::2, ::2] > 200] = self.score
        return scores


@pytest.mark.parametrize("coarse_score", [0.0, 0.3])  # a coarse pass blind to the word, and one that sees it faintly
def test_adaptive_with_gating_gives_the_same_boxes_before_and_after_a_refresh(coarse_score: float) -> None:
    clock = Clock()
    detector = Detector(Bright((192, 256), coarse_score), tiling_mode="adaptive", tile_model=Bright((160, 160), 0.9),
                        gate=GateSettings(refresh_seconds=60), clock=clock)
    scene = np.full((720, 1280, 3), 60, np.uint8)
    detector.detect(scene)
    scene[300:312, 600:660] = 255  # a small word appears
    found = []
    for clock.now in (5.0, 30.0, 61.0, 70.0, 125.0):  # 61 and 125: refreshes
        found.append([box.points.tolist() for box in detector.detect(scene).boxes])
    assert all(boxes == found[0] for boxes in found), found
    assert len(found[0]) == (1 if coarse_score else 0)  # adaptive runs tiles where the coarse pass sees text


def test_a_change_filling_one_small_region_is_a_change() -> None:
    gate = ChangeGate(GateSettings(threshold=12, cell=16))
    frame = np.full((64, 64, 3), 60, np.uint8)
    regions = [(top, top + 16, left, left + 16) for top in range(0, 64, 16) for left in range(0, 64, 16)]
    gate.remember(gate.thumbnail(frame), regions)
    frame[16:32, 32:48] = 200  # exactly one region, one cell
    assert gate.changed(gate.thumbnail(frame), regions) == [region == (16, 32, 32, 48) for region in regions]


def test_a_tile_model_too_small_to_tile_with_is_refused_when_the_detector_is_made() -> None:
    with pytest.raises(ValueError, match="tile 64"):
        Detector(Bright((192, 256), 0.0), tiling_mode="full", tile_model=Bright((64, 64), 0.9))


@pytest.mark.parametrize(("scale", "cell"), [(0.75, 8), (1.0, 12)])
def test_a_change_narrower_than_a_cell_at_a_tile_edge_reruns_that_tile(scale: float, cell: int) -> None:
    """With ``model.scale`` below 1, or a cell that does not divide the tile step, a core's edge falls inside
    a cell that starts in its neighbour: a word appearing in that strip re-ran only the neighbour, and
    the core holding it kept its stale scores."""
    def detector(gate: GateSettings | None) -> Detector:
        return Detector(Bright((192, 256), 0.0), tiling_mode="full", scale=scale, tile_model=Bright((160, 160), 0.9),
                        gate=gate, clock=Clock())

    gated = detector(GateSettings(cell=cell, refresh_seconds=3600))
    scene = np.full((480, 640, 3), 60, np.uint8)
    gated.detect(scene)
    tiles = plan(resize(scene, scale).shape[:2], (160, 160), gated.context)
    top, bottom, left, _ = next(core for core in (gated._in_source(t.core(), scene.shape) for t in tiles)
                                    if core[2] % cell and core[0] > 0)
    scene[top + 4:bottom - 4, left:-(-left // cell) * cell] = 255  # inside this core, in its neighbour's cell
    found = gated.detect(scene)
    reference = detector(None).detect(scene).boxes
    assert reference and [b.points.tolist() for b in found.boxes] == [b.points.tolist() for b in reference]


def test_a_cell_two_regions_share_keeps_its_reference_until_both_have_run() -> None:
    gate = ChangeGate(GateSettings(threshold=12, cell=8))
    frame = np.full((16, 40, 3), 60, np.uint8)
    left, right = (0, 16, 0, 20), (0, 16, 20, 40)  # the cell at columns 16-23 straddles both
    gate.remember(gate.thumbnail(frame), [left, right])
    frame[:, 20:24] = 120  # right's strip of the shared cell: a change to both
    assert gate.changed(gate.thumbnail(frame), [left, right]) == [True, True]
    gate.remember(gate.thumbnail(frame), [left], others=[right])  # only left ran: the shared cell is not seen
    assert gate.changed(gate.thumbnail(frame), [left, right]) == [True, True]
    gate.remember(gate.thumbnail(frame), [left, right])
    assert gate.changed(gate.thumbnail(frame), [left, right]) == [False, False]
