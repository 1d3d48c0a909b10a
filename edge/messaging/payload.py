"""The detections message (schema 3): what MQTT subscribers depend on.

The JSON Schema ships in ``edge/messaging/schema/detections-v3.schema.json`` and is documented in the
README. Any incompatible change gets a new ``schema`` number (2 added ``tiling``: schema 1 allowed
no extra fields; 3 the boxes' ``text`` and ``text_score``, ``text``, ``recognition`` and
``timing_ms.recognition``).

The message is built from plain values and from what it reads of a detection (``DetectionLike``:
the fields of ``edge.detection.detector.Detection`` it serialises), so this part never imports the
pipeline or the models.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

SCHEMA_VERSION = 3
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "detections-v3.schema.json"


class BoxLike(Protocol):
    """A word box as the message reads it: four (x, y) corners in source pixels and a score."""

    @property
    def points(self) -> np.ndarray: ...

    @property
    def score(self) -> float: ...


class TimingLike(Protocol):
    """Milliseconds spent on one frame, by stage."""

    @property
    def preprocess(self) -> float: ...

    @property
    def inference(self) -> float: ...

    @property
    def postprocess(self) -> float: ...

    @property
    def total(self) -> float: ...


class DetectionLike(Protocol):
    """One frame's detection as the message and the snapshot read it."""

    @property
    def boxes(self) -> Sequence[BoxLike]: ...

    @property
    def timing(self) -> TimingLike: ...

    @property
    def tiles_run(self) -> int: ...

    @property
    def tiles_skipped(self) -> int: ...

    @property
    def tiles(self) -> tuple[tuple[int, int, int, int], ...]: ...


class WordLike(Protocol):
    """A box's reading as the message reads it: both None when not read or not kept."""

    @property
    def text(self) -> str | None: ...

    @property
    def score(self) -> float | None: ...


@dataclass(frozen=True)
class TextReading:
    """What reading a frame's boxes gave (edge.recognition.words.FrameReading, with the variant and text)."""

    variant: str
    words: Sequence[WordLike]  # one per box, in the boxes' order
    text: str  # the kept words in reading order
    read: int  # crops the recognizer ran on
    reused: int  # boxes that kept the last frame's reading
    ms: float


def utc_iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="milliseconds")


def box_json(box: BoxLike, word: WordLike | None = None) -> dict:
    """A box in the message; ``word`` its reading (None: not read)."""
    return {"points": [[round(float(x), 1), round(float(y), 1)] for x, y in box.points], "score": round(box.score, 3),
            "text": word.text if word else None, "text_score": word.score if word else None}


@dataclass(frozen=True)
class TilingSettings:
    mode: str
    scale: float
    context: int
    tile_input: tuple[int, int]
    gating: bool


def detection_message(
    *, device_id: str, source_kind: str, source_name: str, seq: int, captured: float, frame_hw: tuple[int, int],
    variant: str, backend: str, runtime: str, input_hw: tuple[int, int], tiling: TilingSettings,
    tile_variant: str, tile_backend: str, detection: DetectionLike, reading: TextReading | None = None,
) -> dict:
    """``model`` is the model a letterboxed pass runs (tiling off, adaptive's coarse pass); ``tiling.tile_model``
    the one the tiles run (the same model when its folder plays both roles or tiling is off)."""
    tile_model = {"variant": tile_variant, "backend": tile_backend}
    timing = detection.timing
    recognition_ms = reading.ms if reading else 0.0
    words = list(reading.words) if reading else [None] * len(detection.boxes)
    return {
        "schema": SCHEMA_VERSION,
        "device_id": device_id,
        "source": {"kind": source_kind, "name": source_name},
        "frame": {"seq": seq, "timestamp": utc_iso(captured), "width": frame_hw[1], "height": frame_hw[0]},
        "model": {"variant": variant, "backend": backend, "runtime": runtime, "input": list(input_hw)},
        "tiling": {"mode": tiling.mode, "scale": tiling.scale, "tile_input": list(tiling.tile_input),
                   "gating": tiling.gating, "tile_model": tile_model, "tiles_run": detection.tiles_run,
                   "tiles_skipped": detection.tiles_skipped},
        "recognition": {"variant": reading.variant, "words_read": reading.read, "words_reused": reading.reused}
        if reading else None,
        "timing_ms": {
            "preprocess": round(timing.preprocess, 2), "inference": round(timing.inference, 2),
            "postprocess": round(timing.postprocess, 2), "recognition": round(recognition_ms, 2),
            "total": round(timing.total + recognition_ms, 2),
        },
        "boxes": [box_json(box, word) for box, word in zip(detection.boxes, words, strict=True)],
        "text": reading.text if reading else None,
    }


def fit_to_size(payload: str, limit: int | None) -> tuple[str, int] | None:
    """``payload`` (a detections message as JSON) made to fit in ``limit`` bytes (None: no limit), and how many
    boxes were left out to get there: the lowest-scoring ones, the rest in their order; the top-level
    ``text`` (every word read) stays unless even no boxes would not fit with it. None when even no boxes
    and no text would fit. The message stays schema-valid; the publisher says the count in the
    PUBLISH's ``boxes_omitted`` user property."""
    if limit is None or len(payload.encode()) <= limit:
        return payload, 0
    message = json.loads(payload)
    boxes = message["boxes"]
    by_score = sorted(range(len(boxes)), key=lambda i: boxes[i]["score"], reverse=True)

    def keeping(count: int) -> str:
        kept = sorted(by_score[:count])
        return json.dumps({**message, "boxes": [boxes[i] for i in kept]}, separators=(",", ":"))

    if len(keeping(0).encode()) > limit:
        if message.get("text") is None:
            return None
        message["text"] = None  # the words read go last: the boxes that fit still carry theirs
        if len(keeping(0).encode()) > limit:
            return None
    low, high = 0, len(boxes) - 1  # the most boxes that fit lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if len(keeping(middle).encode()) <= limit:
            low = middle
        else:
            high = middle - 1
    return keeping(low), len(boxes) - low


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
