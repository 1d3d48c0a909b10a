"""Snapshots without a model: when one is due, what it shows, how it is saved; the Home Assistant
camera's discovery payload against Home Assistant's schema; the text-size verdict."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import cv2
import jsonschema
import numpy as np
import pytest

from edge.config.settings import ConfigError, SnapshotConfig, parse_config
from edge.detection.boxes import boxes_changed
from edge.detection.postprocess import Box
from edge.detection.textsize import GOOD_BOX_HEIGHT, MIN_BOX_HEIGHT, box_height, verdict
from edge.messaging.homeassistant import camera_discovery_message, discovery_message
from edge.messaging.snapshot import BOX_BGR, Schedule, annotate, encode_jpeg, save_snapshot
from edge.messaging.topics import Topics
from edge.recognition.readable import GOOD_READ_HEIGHT, MIN_READ_HEIGHT, reading_verdict


def box(x0: float, y0: float, x1: float, y1: float) -> Box:
    return Box(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32), 0.9)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_snapshot_is_due_on_change_or_after_the_interval_never_within_the_minimum() -> None:
    clock = Clock()
    schedule = Schedule(SnapshotConfig(enabled=True, interval_seconds=5, min_interval_seconds=1), boxes_changed,
                        clock)
    still, moved = [box(10, 10, 60, 30)], [box(200, 10, 250, 30)]
    assert schedule.due(still)  # the first frame
    clock.now += 0.5
    assert not schedule.due(moved)  # changed, but within min_interval_seconds
    clock.now += 0.6
    assert schedule.due(moved)  # changed, 1.1 s after the last
    for _ in range(3):
        clock.now += 1.2
        assert not schedule.due(moved)  # unchanged: waits for the interval
    clock.now += 1.5  # 5.1 s after the last
    assert schedule.due(moved)
    clock.now += 1.0
    assert schedule.due([*moved, box(300, 300, 350, 330)])  # a box more


def test_an_unchanged_scene_is_compared_once_per_minimum_interval() -> None:
    """Comparing boxes costs time with many of them: not on every frame."""
    compared = []
    clock = Clock()
    schedule = Schedule(SnapshotConfig(enabled=True, interval_seconds=60, min_interval_seconds=1),
                        lambda new, old: compared.append(1) or False, clock)
    assert schedule.due([])
    for _ in range(50):  # 5 s of frames at 10 fps
        clock.now += 0.1
        assert not schedule.due([])
    assert 4 <= len(compared) <= 5


def test_min_interval_above_the_interval_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("mqtt: {snapshot: {interval_seconds: 2, min_interval_seconds: 3}}", "c.yaml")
    assert str(info.value) == ("c.yaml: mqtt.snapshot.min_interval_seconds (3.0) must not be above "
                               "mqtt.snapshot.interval_seconds (2.0)")
    with pytest.raises(ConfigError, match=r"mqtt.snapshot.jpeg_quality: 0 is below the minimum 1"):
        parse_config("mqtt: {snapshot: {jpeg_quality: 0}}", "c.yaml")
    assert not parse_config("", "c.yaml").mqtt.snapshot.enabled  # off by default


def is_box_colour(pixels: np.ndarray) -> np.ndarray:
    """Magenta (BOX_BGR) after JPEG, per pixel of a BGR array."""
    b, g, r = (pixels[..., i].astype(int) for i in range(3))
    return (b > 170) & (r > 170) & (g < 110)


def test_annotate_scales_to_max_width_and_draws_boxes_on_their_place_and_tiles_faintly() -> None:
    assert BOX_BGR == (255, 0, 255)
    rng = np.random.default_rng(1)
    rgb = np.clip(rng.normal(110, 25, (720, 1280, 3)), 0, 255).astype(np.uint8)
    boxes = [box(100, 100, 400, 160), box(800, 500, 1100, 600)]
    tiles = ((0, 0, 640, 480), (640, 240, 1280, 720))
    jpeg = encode_jpeg(annotate(rgb, boxes, tiles, max_width=640), quality=75)
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (360, 640, 3)
    magenta = is_box_colour(picture)
    for b in boxes:
        for x, y in np.round(b.points * 0.5).astype(int):
            assert magenta[y - 1:y + 2, x - 1:x + 2].any(), (x, y)
    drawn = np.zeros(picture.shape[:2], np.uint8)
    cv2.polylines(drawn, [np.round(b.points * 0.5).astype(np.int32) for b in boxes], True, 1, 6)
    assert magenta[drawn == 0].sum() == 0  # nothing box-coloured anywhere else
    # the tile edge at x = 640 (320 in the picture) is tinted towards cyan, not painted over
    edge, beside = picture[150:230, 319:321].astype(int), picture[150:230, 330:332].astype(int)
    tint = (edge[..., 0] + edge[..., 1] - 2 * edge[..., 2]).mean() - (
        beside[..., 0] + beside[..., 1] - 2 * beside[..., 2]).mean()
    assert 40 < tint < 300
    assert not is_box_colour(edge).any()
    assert annotate(rgb, [], max_width=0).shape == (720, 1280, 3)  # 0: full size
    assert annotate(rgb, [], max_width=2000).shape == (720, 1280, 3)  # never scaled up
    assert len(encode_jpeg(annotate(rgb, boxes), 30)) < len(encode_jpeg(annotate(rgb, boxes), 90))


def test_received_snapshots_are_saved_by_device_and_seq(tmp_path: Path) -> None:
    properties = SimpleNamespace(UserProperty=[("seq", "42"), ("timestamp", "2026-01-01T00:00:00.000+00:00")])
    saved = save_snapshot(tmp_path, "craft-edge/porch/snapshot", b"\xff\xd8jpeg", properties)
    assert saved == tmp_path / "porch_00000042.jpg" and saved.read_bytes() == b"\xff\xd8jpeg"
    assert save_snapshot(tmp_path, "craft-edge/porch/snapshot", b"", properties) is None  # a cleared retained one
    other = save_snapshot(tmp_path, "site/cam 1/snapshot", b"x", None)  # not ours: no seq
    assert other is not None and other.name.startswith("cam_1_")


# Home Assistant's MQTT camera as its discovery validates it (homeassistant/components/mqtt/camera.py:
# MQTT_BASE_SCHEMA + name, a required `topic` that must be a valid subscribe topic and `image_encoding`
# that may only be "b64", extended with MQTT_ENTITY_COMMON_SCHEMA from mqtt/schemas.py and mixins: the
# availability options (`availability_topic` and `availability` exclusive), `unique_id`, and `device`,
# whose keys are fixed and which needs `identifiers` or `connections`). Discovery silently removes
# keys it does not know (vol.REMOVE_EXTRA); this schema refuses them, so a key Home Assistant would
# ignore fails here.
STRING = {"type": "string"}
HA_DEVICE = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "identifiers": {"anyOf": [STRING, {"type": "array", "items": STRING}]},
        "connections": {"type": "array", "items": {"type": "array", "items": STRING, "minItems": 2, "maxItems": 2}},
        **{key: STRING for key in ("manufacturer", "model", "model_id", "name", "hw_version", "serial_number",
                                   "sw_version", "via_device", "suggested_area", "configuration_url")},
    },
    "anyOf": [{"required": ["identifiers"], "properties": {"identifiers": {"minLength": 1, "minItems": 1}}},
              {"required": ["connections"], "properties": {"connections": {"minItems": 1}}}],
}
SUBSCRIBE_TOPIC = {"type": "string", "minLength": 1, "maxLength": 65535, "pattern": "^[^\u0000]*$"}
HA_CAMERA = {
    "type": "object", "additionalProperties": False, "required": ["topic"],
    "properties": {
        "topic": SUBSCRIBE_TOPIC, "image_encoding": {"const": "b64"}, "name": {"type": ["string", "null"]},
        "qos": {"enum": [0, 1, 2]}, "encoding": STRING,
        "availability_topic": SUBSCRIBE_TOPIC, "availability_template": STRING, "payload_available": STRING,
        "payload_not_available": STRING, "availability_mode": {"enum": ["all", "any", "latest"]},
        "availability": {"type": "array", "items": {"type": "object", "required": ["topic"]}},
        "unique_id": STRING, "device": HA_DEVICE, "icon": STRING, "entity_category": {"enum": ["config", "diagnostic"]},
        "enabled_by_default": {"type": "boolean"}, "entity_picture": STRING, "json_attributes_topic": SUBSCRIBE_TOPIC,
        "json_attributes_template": STRING, "object_id": STRING, "default_entity_id": STRING,
        "origin": {"type": "object"},
    },
    "not": {"required": ["availability", "availability_topic"]},
}


def test_camera_discovery_is_what_home_assistant_expects_and_sits_on_the_sensors_device() -> None:
    config = parse_config("device_id: 'Porch Cam'\nmqtt: {home_assistant: {enabled: true}, snapshot: {enabled: true}}",
                          "c")
    topics = Topics.for_prefix(config.topic_prefix)
    topic, camera = camera_discovery_message(config, topics)
    assert topic == "homeassistant/camera/craft_edge_Porch_Cam/snapshot/config"
    assert camera is not None
    jsonschema.validate(camera, HA_CAMERA)
    assert camera["topic"] == "craft-edge/Porch Cam/snapshot" == topics.snapshot
    assert "image_encoding" not in camera  # raw JPEG bytes, as the camera platform reads them by default
    assert (camera["availability_topic"], camera["payload_available"], camera["payload_not_available"]) == (
        "craft-edge/Porch Cam/availability", "online", "offline")
    _, sensor = discovery_message(config, topics)
    assert camera["device"] == sensor["device"]  # the same device in Home Assistant
    assert camera["unique_id"] == "craft_edge_Porch_Cam_snapshot" != sensor["unique_id"]
    for broken in ({k: v for k, v in camera.items() if k != "topic"},
                   {**camera, "availability": [{"topic": "x"}]},
                   {**camera, "device": {"name": "no identifiers"}},
                   {**camera, "image_encoding": "base64"},
                   {**camera, "payload_on": "ON"}):
        with pytest.raises(jsonschema.ValidationError):  # the schema bites
            jsonschema.validate(broken, HA_CAMERA)
    off = copy.deepcopy(config)
    off.mqtt.snapshot.enabled = False
    assert camera_discovery_message(off, topics) == (topic, None)  # published empty: removes the entity


def rotated(width: float, height: float, degrees: float, start: int) -> np.ndarray:
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return np.roll(corners @ rotation.T + 50, start, axis=0)


def test_box_height_is_the_short_side_whichever_corner_comes_first() -> None:
    for start in range(4):
        assert box_height(rotated(120, 20, 30, start)) == pytest.approx(20)
        assert box_height(rotated(120, 20, -80, start)) == pytest.approx(20)


def test_verdict_says_what_to_do() -> None:
    small, fine = MIN_BOX_HEIGHT - 2, GOOD_BOX_HEIGHT + 4
    assert verdict([], (480, 640)).startswith("no text found")
    assert verdict([small, small, fine], (480, 640)).startswith("too small: median box height 7.0 px, smallest 7.0")
    assert verdict([small, fine, fine], (480, 640)).startswith("partly too small")
    assert verdict([MIN_BOX_HEIGHT + 1] * 3, (480, 640)).startswith("borderline")
    assert verdict([MIN_BOX_HEIGHT + 1, fine, fine], (480, 640)).startswith("mostly good")
    assert verdict([fine] * 3, (480, 640)).startswith("good: median box height 22.0 px")
    for heights in ([], [small], [MIN_BOX_HEIGHT + 1]):
        line = verdict(heights, (480, 640))
        assert "move the camera closer, zoom in, or use a larger model input or tiling" in line
        assert "in the 480x640 model input" in line and "\n" not in line
    assert "closer" not in verdict([fine], (480, 640))


def test_a_snapshot_over_the_brokers_maximum_packet_size_is_not_sent() -> None:
    from edge.messaging.publisher import PACKET_OVERHEAD_BYTES, Publisher

    publisher = Publisher(parse_config("device_id: t", "c"), None)
    assert publisher.fits(b"x" * 10_000_000)  # no limit said (MQTT v5 CONNACK without MaximumPacketSize)
    publisher.max_packet_bytes = 100_000  # e.g. AWS IoT: 128 KB; mosquitto's max_packet_size
    assert publisher.fits(b"x" * (100_000 - PACKET_OVERHEAD_BYTES))
    assert not publisher.fits(b"x" * (100_001 - PACKET_OVERHEAD_BYTES))


def test_a_read_word_is_written_above_its_box_and_an_unread_one_is_not() -> None:
    rgb = np.full((240, 320, 3), 128, dtype=np.uint8)
    boxes = [box(40, 100, 140, 130), box(180, 100, 280, 130)]
    plain = annotate(rgb, boxes)
    written = annotate(rgb, boxes, texts=["EXIT", None])
    above_first, above_second = (slice(70, 99), slice(40, 140)), (slice(70, 99), slice(180, 280))
    band = np.all(written[above_first] == BOX_BGR, axis=-1)
    assert band.mean() > 0.2 and (written[above_first].min(axis=-1) > 200).any()  # a band, white letters on it
    assert not np.all(plain[above_first] == BOX_BGR, axis=-1).any()
    assert (written[above_second] == plain[above_second]).all()  # no reading: nothing written
    assert (annotate(rgb, boxes, texts=[None, None]) == plain).all()


def test_reading_verdict_judges_source_pixels() -> None:
    assert reading_verdict([]).startswith("no words to read")
    assert reading_verdict([8, 9, 30]).startswith("too small to read: median box height 9.0 px, smallest 8.0 px")
    assert reading_verdict([8, 9, 30]).endswith("move the camera closer or zoom in (tiling and the model input "
                                                "do not help reading)")
    assert reading_verdict([12, 14, 30]).startswith("borderline: median box height 14.0 px")
    assert reading_verdict([6, 20, 30]).startswith("mostly readable: ")
    assert reading_verdict([MIN_READ_HEIGHT, GOOD_READ_HEIGHT, 40]).startswith("readable: ")
