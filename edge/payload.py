"""The detections message (schema 2): what MQTT subscribers depend on.

The JSON Schema ships in ``edge/schema/detections-v2.schema.json`` and is documented in the
README. Any incompatible change gets a new ``schema`` number (2 added ``tiling``: schema 1 allowed
no extra fields).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge.boxes import match_boxes
from edge.detector import Detection
from edge.postprocess import Box

if TYPE_CHECKING:
    from edge.selection import Choice

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "detections-v2.schema.json"
UNCHANGED_IOU = 0.7  # publish: on_change treats boxes matched one-to-one at this IoU as the same


def utc_iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="milliseconds")


def box_json(box: Box) -> dict:
    return {"points": [[round(float(x), 1), round(float(y), 1)] for x, y in box.points], "score": round(box.score, 3)}


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
    tile_choice: Choice, detection: Detection,
) -> dict:
    """``model`` is the model a letterboxed pass runs (tiling off, adaptive's coarse pass); ``tiling.tile_model``
    the one the tiles run (the same model when its folder plays both roles or tiling is off)."""
    tile_model = {"variant": tile_choice.variant, "backend": tile_choice.backend}
    timing = detection.timing
    return {
        "schema": SCHEMA_VERSION,
        "device_id": device_id,
        "source": {"kind": source_kind, "name": source_name},
        "frame": {"seq": seq, "timestamp": utc_iso(captured), "width": frame_hw[1], "height": frame_hw[0]},
        "model": {"variant": variant, "backend": backend, "runtime": runtime, "input": list(input_hw)},
        "tiling": {"mode": tiling.mode, "scale": tiling.scale, "tile_input": list(tiling.tile_input),
                   "gating": tiling.gating, "tile_model": tile_model, "tiles_run": detection.tiles_run,
                   "tiles_skipped": detection.tiles_skipped},
        "timing_ms": {
            "preprocess": round(timing.preprocess, 2), "inference": round(timing.inference, 2),
            "postprocess": round(timing.postprocess, 2), "total": round(timing.total, 2),
        },
        "boxes": [box_json(box) for box in detection.boxes],
    }


def boxes_changed(new: list[Box], old: list[Box] | None) -> bool:
    """``publish: on_change``: a message is due when the boxes differ from the last published ones."""
    if old is None or len(new) != len(old):
        return True
    return match_boxes([b.points for b in new], [b.points for b in old], UNCHANGED_IOU).matched != len(new)


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
