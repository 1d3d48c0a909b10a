"""What ``craft-edge frame`` does: one frame from the configured source through the configured model, drawn,
with a verdict on whether its text is large enough to find (and, with recognition on, to read). The setup
tool for a new camera.

It opens the camera itself, so it cannot share one with a running daemon (stop the daemon first).
A live camera is read for WARMUP_SECONDS first: its first frames are often dark or unfocused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edge.config.settings import Config, ConfigError, state_dir
from edge.detection.benchmark import MODE_FIGURES
from edge.detection.detector import configured_detector
from edge.detection.textsize import box_height, verdict
from edge.detection.tiling import TILING_MODES
from edge.messaging.snapshot import annotate
from edge.models.inference import Runners, build_runners
from edge.recognition.readable import reading_verdict
from edge.service.reading import build_reading
from edge.sources import BadFrame, Frame, SourceLost, make_source

WARMUP_SECONDS = 1.0
MAX_BAD_FRAMES = 20


class FrameError(RuntimeError):
    """No frame could be grabbed, or the picture could not be written; the message says why."""


@dataclass(frozen=True)
class Checked:
    description: str  # the frame, its boxes, the model that ran
    verdict: str
    reading: str | None  # whether the words are large enough to read (None: recognition off)
    modes: list[str]  # each tiling mode on this frame, and on the benchmark: what each choice gives and costs


def grab(config: Config) -> Frame:
    """One frame from the configured source (a live camera's after WARMUP_SECONDS of frames)."""
    source = make_source(config.source)
    settings = config.source
    location = {"files": settings.path, "opencv": settings.device}.get(settings.kind, settings.name)
    what = f"source {settings.kind} ({location})"
    try:
        source.open()
        frame, bad, started = None, 0, time.monotonic()
        while True:
            try:
                latest = source.read()
            except BadFrame as exc:
                bad += 1
                if bad >= MAX_BAD_FRAMES:
                    raise FrameError(f"{what}: {bad} bad frames in a row ({exc})") from exc
                continue
            if latest is None:  # the end of a finite source
                break
            frame = latest
            if source.paced or time.monotonic() - started >= WARMUP_SECONDS:
                break
    except SourceLost as exc:
        hint = "" if source.paced else " (a running craft-edge daemon may be holding the camera)"
        raise FrameError(f"{what}: {exc}{hint}") from exc
    finally:
        source.close()
    if frame is None:
        raise FrameError(f"{what}: no frame")
    return frame


def check(config: Config, out: Path) -> Checked:
    """Grab, detect, write the annotated picture to ``out`` and judge the text size."""
    frame = grab(config)
    runners = build_runners(config.model, state_dir(config))
    runner = runners.coarse
    detector = configured_detector(config, runner, runners.tile, video=False)
    detection = detector.detect(frame.rgb)
    try:
        written = cv2.imwrite(str(out), annotate(frame.rgb, detection.boxes, detection.tiles))
    except cv2.error as exc:
        raise FrameError(f"{out}: cannot write the picture ({' '.join(str(exc).split())})") from exc
    if not written:
        raise FrameError(f"{out}: cannot write the picture")
    height, width = frame.rgb.shape[:2]
    if config.model.tiling == "off":  # the letterbox's scale: source px -> model-input px
        input_hw = runner.input_hw
        scale = min(input_hw[0] / height, input_hw[1] / width)
    else:  # tiles see the frame at model.scale
        input_hw, scale = detector.tile_model.input_hw, config.model.scale
    heights = [box_height(box.points) * scale for box in detection.boxes]
    choice = runner.choice
    assert choice is not None
    description = (f"{frame.name} {width}x{height}, {len(detection.boxes)} boxes "
                   f"({choice.variant} on {choice.backend})")
    reading = None
    if config.recognition.enabled:  # loaded as the daemon loads it: a verdict on sizes alone hid "cannot read"
        loaded = build_reading(config)
        reading = (reading_verdict([box_height(box.points) for box in detection.boxes]) if loaded.frames is not None
                   else f"the daemon would not read: {loaded.state.removeprefix('unavailable: ')}")
    return Checked(description, verdict(heights, input_hw), reading, compare_modes(config, runners, frame.rgb))


def compare_modes(config: Config, runners: Runners, rgb: np.ndarray) -> list[str]:
    """One line per tiling mode: boxes and model time on this frame, H-mean and cost on the benchmark."""
    lines = []
    for mode in TILING_MODES:
        chosen = " (configured)" if mode == config.model.tiling else ""
        asked = replace(config, model=replace(config.model, tiling=mode))
        try:
            detector = configured_detector(asked, runners.coarse, runners.tile, video=False)
        except ConfigError as exc:  # e.g. a context too wide for the tile model, which `off` never checks
            lines.append(f"{mode}{chosen}: not possible with this config ({exc})")
            continue
        found = detector.detect(rgb)
        lines.append(f"{mode}{chosen}: {len(found.boxes)} boxes, {found.tiles_run} inference"
                     f"{'s' if found.tiles_run != 1 else ''}, {found.timing.inference:.0f} ms of model time here; "
                     f"{MODE_FIGURES[mode].describe()}")
    return lines
