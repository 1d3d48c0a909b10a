"""The daemon reading text with real parts: the converted detector and recognizer, real mosquitto, the
project's clip (data/clip/clip.json says which word appears, moves and vanishes in which frame) with a meter
painted on whose reading changes in place (its box stays where it was: only gating can tell it changed)."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from edge.config.settings import parse_config
from edge.detection.boxes import match_boxes
from edge.detection.detector import Detection, Timing
from edge.messaging.payload import load_schema
from edge.service.reading import build_reading, read_frame
from tests.conftest import SAMPLES, data_module
from tests.daemon_helpers import start_daemon, write_config
from tests.mqtt_helpers import Broker, Subscriber
from tests.test_gating import clip_frames

pytestmark = pytest.mark.conversion
PREFIX = "craft-edge/reading"
# Runs of the clip's frames (clip.json's events): Platform appears in 15, Tickets moves from 30 on, Bakery vanishes
# in 50; the meter painted on by this test changes its reading in place in 56. (Taxi, 14 px high and turned, is
# too small for the test's 160x160 tile model: not detected, not used.)
FRAMES = [*range(0, 6), *range(13, 18), *range(29, 33), *range(48, 52), *range(54, 58)]
METER = ("0412", "0512")  # a meter's reading before and from frame METER_TICKS on: an inner digit changes in place
METER_TICKS = 56
METER_AT = (1100, 630)  # top-left of its digits: on the table, below the saucer
METER_PANEL, METER_INK = (30.0, 30.0, 34.0), (235.0, 235.0, 235.0)


@dataclass(frozen=True)
class Meter:
    """Light digits on a dark panel, drawn by data/textrender.py (the clip's own renderer)."""

    panel: np.ndarray  # (x0, y0, x1, y1)
    masks: dict[str, tuple[np.ndarray, np.ndarray]]  # reading -> (ink coverage of the frame, its quad)

    @classmethod
    def build(cls, frame_hw: tuple[int, int]) -> Meter:
        textrender = data_module("textrender")
        masks = {}
        for reading in METER:
            mask = textrender.glyphs_of_height(reading, "DejaVuSans-Bold.ttf", 24).mask
            matrix = textrender.placement(mask.shape, 0.0, METER_AT)
            masks[reading] = (textrender.coverage(mask, matrix, frame_hw, 0.0), textrender.quad_of(mask.shape, matrix))
        quads = np.concatenate([quad for _, quad in masks.values()])
        panel = np.concatenate([quads.min(axis=0) - 12, quads.max(axis=0) + 12]).round().astype(int)
        return cls(panel, masks)

    def paint(self, rgb: np.ndarray, frame: int) -> np.ndarray:
        painted = rgb.astype(np.float32)
        x0, y0, x1, y1 = self.panel
        painted[y0:y1, x0:x1] = METER_PANEL
        data_module("textrender").blend(painted, self.masks[self.reading(frame)][0], METER_INK)
        return np.clip(np.rint(painted), 0, 255).astype(np.uint8)

    @staticmethod
    def reading(frame: int) -> str:
        return METER[frame >= METER_TICKS]

    def quad(self, frame: int) -> list:
        return self.masks[self.reading(frame)][1].tolist()


def frame_files(folder: Path) -> Meter:
    """The chosen clip frames with the meter painted on, as files, in order: a paced source, every frame processed."""
    folder.mkdir()
    wanted = set(FRAMES)
    meter = None
    for index, rgb in enumerate(clip_frames()):
        if index in wanted:
            meter = meter or Meter.build(rgb.shape[:2])
            cv2.imwrite(str(folder / f"frame_{FRAMES.index(index):03d}.png"),
                        cv2.cvtColor(meter.paint(rgb, index), cv2.COLOR_RGB2BGR))
    assert meter is not None
    return meter


def detections(subscriber: Subscriber) -> list[dict]:
    return [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/detections")]


def text_at(message: dict, poly: list) -> str | None:
    """The text of the message's box on ``poly`` (IoU 0.5), None when no box is there."""
    for box in message["boxes"]:
        if match_boxes([np.array(box["points"])], [np.array(poly)], min_iou=0.5).matched:
            return box["text"]
    return None


def test_words_are_read_when_they_appear_or_move_and_reused_while_unchanged(broker: Broker, converted: Path,
                                                                           tmp_path: Path) -> None:
    clip = json.loads((Path(__file__).resolve().parent.parent / "data" / "clip" / "clip.json").read_text())
    truth = {frame["frame"]: {w["text"]: w["poly"] for w in frame["words"]} for frame in clip["frames"]}
    meter = frame_files(tmp_path / "frames")
    for frame, words in truth.items():
        words["meter"] = meter.quad(frame)
    config = write_config(tmp_path / "config.yaml", broker.port, converted, tmp_path / "frames",
                          source={"loop": False}, model={"tiling": "full", "scale": 1.0, "context": 32},
                          gating={"enabled": True}, recognition={"enabled": True},
                          regions=[{"name": "platform", "rect": [480, 590, 700, 660]},
                                   {"name": "meter", "rect": meter.panel.tolist(), "patterns": [r"^\d{4}$"]}],
                          mqtt={"topic_prefix": PREFIX})
    subscriber = Subscriber(broker, f"{PREFIX}/#")
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=600)
    assert daemon.returncode == 0, stderr
    assert subscriber.wait_for(lambda: len(detections(subscriber)) == len(FRAMES), timeout=10)
    messages = dict(zip(FRAMES, detections(subscriber), strict=True))
    schema = load_schema()
    for message in messages.values():
        jsonschema.validate(message, schema)
    first = messages[0]
    assert text_at(first, truth[0]["EXIT"]) == "EXIT" and text_at(first, truth[0]["Tickets"]) == "Tickets"
    assert first["recognition"]["words_read"] == len(first["boxes"]) > 0

    def counts(frame: int) -> tuple[int, int]:
        recognition = messages[frame]["recognition"]
        return recognition["words_read"], recognition["words_reused"]

    # Nothing changed: every reading kept, the recognizer not run.
    for frame in range(1, 6):
        assert counts(frame) == (0, len(first["boxes"])), frame
        assert messages[frame]["boxes"] == first["boxes"]
    # After the first frame a box is either read or reused; only new or moved words are read.
    for frame in FRAMES[1:]:
        assert sum(counts(frame)) == len(messages[frame]["boxes"]), frame
    # Platform appears in frame 15: read in that frame, and it alone.
    assert text_at(messages[14], truth[15]["Platform"]) is None
    assert text_at(messages[15], truth[15]["Platform"]) == "Platform"
    assert counts(15) == (1, len(messages[15]["boxes"]) - 1)
    assert counts(16) == (0, len(messages[16]["boxes"]))
    # Tickets moves from frame 30 on: read at its new place in each frame that shows it there, and it alone.
    for frame in (30, 31, 32):
        assert text_at(messages[frame], truth[frame]["Tickets"]) == "Tickets", frame
        assert text_at(messages[frame], truth[frame - 1]["Tickets"]) is None, frame
        assert counts(frame)[0] == 1, frame
    # Bakery vanishes in frame 50: its box and reading gone in that frame.
    assert text_at(messages[49], truth[49]["Bakery"]) == "Bakery"
    assert text_at(messages[50], truth[49]["Bakery"]) is None
    assert "Bakery" in messages[49]["text"].split() and "Bakery" not in messages[50]["text"].split()
    assert all(text_at(messages[50], truth[50][word]) == word for word in ("EXIT", "OPEN", "Platform"))
    # The meter's reading changes in place in frame 56: re-read in that frame, and it alone; kept before and after.
    shown = [text_at(messages[frame], truth[frame]["meter"]) for frame in range(54, 58)]
    assert shown == [METER[0], METER[0], METER[1], METER[1]]
    assert [counts(frame)[0] for frame in range(54, 58)] == [0, 0, 1, 0]
    # The region around Platform's place: published when its reading changes, retained.
    region = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/regions/platform")]
    assert [(m["text"], m["seq"]) for m in region] == [("", messages[0]["frame"]["seq"]),
                                                       ("Platform", messages[15]["frame"]["seq"])]
    readings = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/regions/meter")]
    assert [(m["text"], m["seq"]) for m in readings] == [(METER[0], messages[0]["frame"]["seq"]),
                                                         (METER[1], messages[METER_TICKS]["frame"]["seq"])]
    late = Subscriber(broker, f"{PREFIX}/regions/platform")  # joins after the daemon ended: the retained one
    assert late.wait_for(lambda: late.messages != [], timeout=10)
    assert late.messages[0].retain and json.loads(late.messages[0].payload) == region[-1]
    late.close()
    stats = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/stats")]
    assert stats
    for sent in stats:  # each counts what was processed until it was sent (one a second: maybe only the first)
        done = FRAMES[:sent["frames"]]
        assert (sent["words_read"], sent["words_reused"]) == (sum(counts(frame)[0] for frame in done),
                                                              sum(counts(frame)[1] for frame in done))
    status = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/status") if m.payload]
    assert status[-1]["recognition"]["state"] == "reading"
    subscriber.close()


def test_enabled_without_a_recognizer_the_daemon_detects_and_says_why(broker: Broker, model_dir: Path,
                                                                     tmp_path: Path) -> None:
    """``model_dir`` is one model folder of a bundle: the detector runs from it, the bundle's recognizer does not."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, rgb in zip(range(2), clip_frames(), strict=False):
        cv2.imwrite(str(frames / f"frame_{index:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, frames, source={"loop": False},
                          model={"tiling": "off"}, recognition={"enabled": True}, mqtt={"topic_prefix": PREFIX})
    subscriber = Subscriber(broker, f"{PREFIX}/#")
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 0, stderr
    assert subscriber.wait_for(lambda: len(detections(subscriber)) == 2, timeout=10)
    for message in detections(subscriber):
        jsonschema.validate(message, load_schema())
        assert message["boxes"] and message["recognition"] is None and message["text"] is None
        assert all(box["text"] is None for box in message["boxes"])
    status = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/status") if m.payload]
    assert status and status[-1]["recognition"]["state"].startswith("unavailable:")
    assert "is one model folder of the bundle" in status[-1]["recognition"]["state"]
    assert sum("cannot read" in line for line in stderr.splitlines()) == 1  # said once, not in a loop
    subscriber.close()


def test_regions_say_they_cannot_be_read_even_while_no_frame_comes(broker: Broker, model_dir: Path,
                                                                   tmp_path: Path) -> None:
    """No recognizer and a camera that does not open: a region's retained reading from an earlier run would
    look current in Home Assistant; the daemon says once that it is unavailable, frames or not."""
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES,
                          source={"kind": "opencv", "device": str(tmp_path / "no-camera")},
                          recognition={"enabled": True}, regions=[{"name": "meter", "rect": [0, 0, 50, 50]}],
                          mqtt={"topic_prefix": PREFIX})
    subscriber = Subscriber(broker, f"{PREFIX}/regions/#")
    daemon = start_daemon(config)
    try:
        assert subscriber.wait_for(lambda: subscriber.on(f"{PREFIX}/regions/meter"), timeout=120)
        subscriber.wait_for(lambda: False, timeout=3)  # and not again
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
        subscriber.close()
    (message,) = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/regions/meter")]
    assert message["text"] is None and "is one model folder of the bundle" in message["unavailable"], (message, stderr)
    assert "stopped after 0 frames" in stderr  # no frame came


def test_a_detect_false_region_is_read_whole_without_a_box(converted: Path) -> None:
    """A display that always sits in one place: its rectangle is one crop, read every frame, no detection."""
    regions = ("[{name: sign, rect: [84, 64, 188, 104], detect: false},"  # EXIT in the clip's frames
               " {name: digits, rect: [84, 64, 188, 104], detect: false, patterns: ['^\\d+$']},"
               " {name: outside, rect: [2000, 0, 2100, 50], detect: false}]")
    config = parse_config(f"model: {{dir: '{converted}'}}\nrecognition: {{enabled: true}}\nregions: {regions}", "c")
    reading = build_reading(config)
    assert reading.state == "reading"
    rgb = next(clip_frames())
    detection = Detection([], Timing(0.0, 0.0, 0.0), tiles_run=1)
    words, read = read_frame(reading, rgb, detection, gated=False)
    assert words is not None and (words.read, words.reused, words.text) == (2, 0, "")  # the sign twice, no boxes
    assert read["sign"].text == "EXIT" and read["sign"].words[0].score > 0.5
    assert read["digits"].text == "" and read["outside"].text == ""  # not a number; beyond the 1280x720 frame


def test_reload_turns_reading_on_and_a_bad_pattern_keeps_the_running_config(broker: Broker, converted: Path,
                                                                            tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    sections = {"model": {"tiling": "off", "prefer": "int8"}, "mqtt": {"topic_prefix": PREFIX,
                                                                      "home_assistant": {"enabled": True}}}
    write_config(config, broker.port, converted, SAMPLES, **sections)
    subscriber = Subscriber(broker, "#")
    daemon = start_daemon(config)

    def recognition(after: int) -> list:
        return [m["recognition"] for m in detections(subscriber)[after:]]

    def text_sensor() -> list[bytes]:
        return [m.payload for m in subscriber.messages if m.topic.endswith("/text/config")]

    try:
        assert subscriber.wait_for(lambda: len(recognition(0)) >= 2, timeout=120)
        assert set(map(str, recognition(0))) == {"None"} and text_sensor() == [b""]  # off: the sensor removed
        for patterns, state in ((["("], None), ([], "reading")):
            write_config(config, broker.port, converted, SAMPLES, **sections,
                         recognition={"enabled": True, "patterns": patterns})
            daemon.send_signal(signal.SIGHUP)
            seen = len(detections(subscriber))
            assert subscriber.wait_for(lambda seen=seen: len(recognition(seen)) >= 4, timeout=120)
            if state is None:  # refused: still not reading
                assert set(map(str, recognition(seen))) == {"None"}
        assert recognition(len(detections(subscriber)) - 1)[0]["variant"] == "dynamic"
        status = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/status") if m.payload]
        assert status[-1]["recognition"] == {"state": "reading", "variant": "dynamic", "regions_stale": None}
        assert subscriber.wait_for(lambda: text_sensor()[-1] != b"", timeout=10)
        assert json.loads(text_sensor()[-1])["state_topic"] == f"{PREFIX}/detections"
        # another detector variant, the same recognizer: the detector loads again, the recognizer is kept
        write_config(config, broker.port, converted, SAMPLES, model={"tiling": "off", "prefer": "fp32"},
                     mqtt=sections["mqtt"], recognition={"enabled": True})
        daemon.send_signal(signal.SIGHUP)
        assert subscriber.wait_for(lambda: detections(subscriber)[-1]["model"]["variant"] == "fp32", timeout=120)
        assert recognition(len(detections(subscriber)) - 1)[0]["variant"] == "dynamic"
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, stderr
    (refused,) = [line for line in stderr.splitlines() if "reload failed" in line]
    assert "recognition.patterns[0] '(' is not a regular expression" in refused
    assert stderr.count("reading text with the recognizer's") == 1, stderr  # loaded once, kept since
    subscriber.close()
