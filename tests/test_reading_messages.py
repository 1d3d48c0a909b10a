"""What reading adds to the messages, without a model: the schema-3 detections message with ``text`` and
``text_score``, Home Assistant's ``Text`` and region sensors checked against HA's sensor schema (their
templates rendered with Jinja2 as HA renders them), reading order, regions, and the retained region
topics published only when their reading changes (real mosquitto)."""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import jinja2
import jsonschema
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.reading import PATTERN_MAX_CHARS
from edge.config.settings import parse_config
from edge.messaging.homeassistant import (
    STATE_LIMIT,
    discovery_messages,
    region_discovery_messages,
    text_discovery_message,
)
from edge.messaging.payload import TextReading, TilingSettings, detection_message, fit_to_size, load_schema
from edge.messaging.publisher import Publisher
from edge.messaging.topics import Topics
from edge.recognition.ctc import greedy_decode, likeliest_accepted
from edge.recognition.reader import Reader
from edge.recognition.reader import Reading as Reading_
from edge.recognition.regions import RegionReading, Regions, joined, reading_order
from edge.recognition.words import NOT_READ, FrameReader, WordReading, matches
from edge.service.reading import (
    FAILURES_BEFORE_GIVING_UP,
    NO_FRAME_SECONDS,
    REASON_CHARS,
    RETRY_MAX_SECONDS,
    RETRY_SECONDS,
    Loaded,
    Reading,
    build_reading,
    flush_held,
    loading_key,
    publish_held,
    publish_regions,
    publish_unavailable,
    read_frame,
    retry_given_up,
    retry_wait,
    stale_because,
)
from edge.sources.capture import SourceState
from tests.mqtt_helpers import Broker, Subscriber
from tests.test_snapshots import HA_CAMERA, SUBSCRIBE_TOPIC

# Home Assistant's MQTT sensor (homeassistant/components/mqtt/sensor.py PLATFORM_SCHEMA_MODERN: a required
# state_topic, value_template, unit, classes and expiry, on the same common entity options as the camera).
HA_SENSOR = {
    **HA_CAMERA,
    "required": ["state_topic"],
    "properties": {
        **{k: v for k, v in HA_CAMERA["properties"].items() if k not in ("topic", "image_encoding")},
        "state_topic": SUBSCRIBE_TOPIC, "value_template": {"type": "string"},
        "unit_of_measurement": {"type": "string"},
        "state_class": {"enum": ["measurement", "total", "total_increasing"]},
        "device_class": {"type": ["string", "null"]}, "expire_after": {"type": "integer", "minimum": 0},
        "force_update": {"type": "boolean"}, "suggested_display_precision": {"type": "integer", "minimum": 0},
        "last_reset_value_template": {"type": "string"}, "options": {"type": "array"},
    },
}


def quad(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float64)


def message(words: list[WordReading] | None, text: str | None = None) -> dict:
    quads = [quad(10, 10, 90, 30), quad(100, 10, 180, 30), quad(10, 50, 90, 70)]
    detection = SimpleNamespace(
        boxes=[SimpleNamespace(points=q, score=0.9) for q in quads],
        timing=SimpleNamespace(preprocess=1.0, inference=2.0, postprocess=3.0, total=6.0),
        tiles_run=1, tiles_skipped=0, tiles=())
    reading = None if words is None else TextReading("dynamic", words, text or "", read=2, reused=1, ms=4.5)
    return detection_message(device_id="cam", source_kind="files", source_name="a.jpg", seq=1, captured=0.0,
                             frame_hw=(480, 640), variant="int8", backend="cpu", runtime="ai-edge-litert",
                             input_hw=(384, 640), tiling=TilingSettings("off", 1.0, 64, (384, 640), False),
                             tile_variant="int8", tile_backend="cpu", detection=detection, reading=reading)


def test_the_message_gives_every_box_a_text_or_null_and_the_schema_checks_it() -> None:
    schema = load_schema()
    read = message([WordReading("OPEN", 0.93), NOT_READ, WordReading("24", 0.81)], "OPEN 24")
    jsonschema.validate(read, schema)
    assert read["schema"] == 3
    assert [(b["text"], b["text_score"]) for b in read["boxes"]] == [("OPEN", 0.93), (None, None), ("24", 0.81)]
    assert read["text"] == "OPEN 24"
    assert read["recognition"] == {"variant": "dynamic", "words_read": 2, "words_reused": 1}
    assert read["timing_ms"]["recognition"] == 4.5 and read["timing_ms"]["total"] == 10.5
    unread = message(None)  # reading off or no recognizer: said explicitly
    jsonschema.validate(unread, schema)
    assert unread["text"] is None and unread["recognition"] is None and unread["timing_ms"]["recognition"] == 0
    assert all(b["text"] is None and b["text_score"] is None for b in unread["boxes"])
    missing_text = copy.deepcopy(read)
    missing_text["boxes"][0].pop("text")
    bad_score = copy.deepcopy(read)
    bad_score["boxes"][0]["text_score"] = 1.5
    no_text = {k: v for k, v in read.items() if k != "text"}
    for broken in (missing_text, bad_score, no_text):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_reading_order_is_lines_top_to_bottom_then_left_to_right() -> None:
    quads = [quad(300, 12, 380, 32), quad(10, 100, 90, 120), quad(10, 10, 90, 30), quad(150, 8, 250, 28)]
    assert reading_order(quads) == [2, 3, 0, 1]
    words = [WordReading("C", 0.9), WordReading("D", 0.9), WordReading("A", 0.9), NOT_READ]
    text, kept = joined(quads, words)
    assert text == "A C D" and [w.text for w in kept] == ["A", "C", "D"]


def test_a_region_holds_the_words_whose_centre_falls_in_it_and_match_its_patterns() -> None:
    config = parse_config("recognition: {enabled: true}\nregions: [{name: meter, rect: [0, 0, 200, 50], "
                          "patterns: ['^\\d{5}$']}, {name: sign, rect: [0, 60, 640, 480]}]", "c")
    regions = Regions(config.regions)
    quads = [quad(10, 10, 90, 30), quad(120, 10, 220, 30), quad(150, 40, 300, 58), quad(20, 100, 100, 120),
             quad(110, 100, 190, 120)]
    raws = [Reading_("01234", 0.9), Reading_("04711", 0.9), Reading_("kWh", 0.9), Reading_("Exit", 0.8),
            Reading_("", 0.0)]
    keep = FrameReader(Reader(Failing(), "0123456789", "test"), config.recognition).kept
    read = regions.read((480, 640), quads, raws, [], keep)
    words = [keep(raw, []) for raw in raws]
    assert read["meter"] == RegionReading("01234 04711", (words[0], words[1]))  # the centre of 1 is inside
    assert read["sign"] == RegionReading("Exit", (words[3],))  # kWh's centre (y 49) is outside; "" not kept


def test_regions_past_the_frame_are_warned_about_once_per_frame_size(caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config("recognition: {enabled: true}\nregions: [{name: meter, rect: [600, 0, 700, 50]}, "
                          "{name: door, rect: [0, 0, 100, 50]}]", "c")
    regions = Regions(config.regions)
    with caplog.at_level("WARNING", logger="edge.recognition.regions"):
        for frame_hw in ((480, 640), (480, 640), (720, 1280), (480, 640)):
            regions.read(frame_hw, [], [], [], lambda raw, patterns: NOT_READ)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # once for 640 wide, which comes back (a files source of mixed sizes)
    assert "past the 640x480 frame" in warnings[0] and "meter [600, 0, 700, 50]" in warnings[0]
    assert "door" not in warnings[0]


def test_a_region_with_boxes_past_max_words_says_so_instead_of_a_partial_reading() -> None:
    """Before, a meter split into '04712' and '5' under max_words 1 published '04712': a wrong reading."""
    config = parse_config("recognition: {enabled: true, max_words: 1}\nregions: [{name: meter, rect: [0, 0, 300, 60]}, "
                          "{name: door, rect: [0, 100, 300, 160]}]", "c")
    regions = Regions(config.regions)
    frames = FrameReader(Reader(ReadsA(), "ab", "test"), config.recognition)
    quads = [quad(10, 10, 110, 50), quad(120, 10, 150, 50), quad(10, 110, 60, 150)]
    frame = frames.read(np.zeros((480, 640, 3), np.uint8), quads, None, first=regions.boxes_inside(quads))[0]
    assert [r is not None for r in frame.raw] == [True, False, False]  # max_words: the largest box alone is read
    read = regions.read((480, 640), quads, frame.raw, [], frames.kept)
    assert read["meter"] == RegionReading("", (), "1 of its 2 boxes not read: past recognition.max_words")
    assert read["door"].unavailable == "1 of its 1 boxes not read: past recognition.max_words"


def test_a_region_wholly_outside_the_frame_says_so_instead_of_reading_nothing() -> None:
    """Before, a rect written for another resolution published "" (retained) for ever: to Home Assistant, a
    region in view with nothing written in it."""
    config = parse_config("recognition: {enabled: true}\nregions: [{name: far, rect: [1000, 700, 1200, 760]}, "
                          "{name: shown, rect: [1000, 700, 1200, 760], detect: false}]", "c")
    regions, keep = Regions(config.regions), FrameReader(Reader(ReadsA(), "ab", "test"), config.recognition).kept
    sent: list[tuple[str, dict]] = []
    publisher = SimpleNamespace(connected=threading.Event(), connections=1,
                                publish_region=lambda name, message: sent.append((name, message)) or True)
    publisher.connected.set()
    reading = Reading(None, None, regions, "reading")
    for seq, frame_hw in enumerate(((480, 640), (480, 640), (720, 1280)), start=1):
        fixed = [Reading_("a", 1.0)] * len(regions.fixed_quads(frame_hw))
        read = regions.read(frame_hw, [quad(1010, 710, 1100, 750)], [Reading_("a", 1.0)], fixed, keep)
        publish_regions(reading, read, publisher, seq, 0.0)  # type: ignore[arg-type]
    outside = "rect [1000, 700, 1200, 760] lies outside the 640x480 frame"
    assert [(name, message["seq"], message["text"], message.get("unavailable")) for name, message in sent] == [
        ("far", 1, None, outside), ("shown", 1, None, outside), ("far", 3, "a", None), ("shown", 3, "a", None)]
    sent.clear()  # stale first (no frame for a while), then frames again in which the regions lie outside
    publish_unavailable(reading, publisher, 4, 0.0, "unavailable: no frame for over 30 s (source lost)")  # type: ignore[arg-type]
    read = regions.read((480, 640), [], [], [], keep)
    publish_regions(reading, read, publisher, 5, 0.0)  # type: ignore[arg-type]
    assert [(name, message["seq"], message["unavailable"]) for name, message in sent] == [
        ("far", 4, "unavailable: no frame for over 30 s (source lost)"),
        ("shown", 4, "unavailable: no frame for over 30 s (source lost)"), ("far", 5, outside), ("shown", 5, outside)]


def test_home_assistant_text_sensors_are_what_it_expects_and_cut_at_its_state_limit() -> None:
    config = parse_config("device_id: 'Porch Cam'\nmqtt: {home_assistant: {enabled: true}}\n"
                          "recognition: {enabled: true}\nregions: [{name: meter, rect: [0, 0, 200, 50]}]", "c")
    topics = Topics.for_prefix(config.topic_prefix)
    topic, sensor = text_discovery_message(config, topics)
    assert topic == "homeassistant/sensor/craft_edge_Porch_Cam/text/config" and sensor is not None
    ((region_topic, region),) = region_discovery_messages(config, topics)
    assert region_topic == "homeassistant/sensor/craft_edge_Porch_Cam/region_meter/config"
    for payload in (sensor, region):
        jsonschema.validate(payload, HA_SENSOR)
    assert sensor["state_topic"] == sensor["json_attributes_topic"] == "craft-edge/Porch Cam/detections"
    assert region["state_topic"] == "craft-edge/Porch Cam/regions/meter"
    entities = [p["unique_id"] for _, p in discovery_messages(config, topics) if p]  # snapshots off: no camera
    assert sorted(entities) == ["craft_edge_Porch_Cam_region_meter", "craft_edge_Porch_Cam_text",
                                "craft_edge_Porch_Cam_text_boxes"]
    with pytest.raises(jsonschema.ValidationError):  # the schema bites
        jsonschema.validate({**sensor, "command_topic": "x"}, HA_SENSOR)

    def render(template: str, value_json: dict) -> str:
        return jinja2.Environment().from_string(template).render(value_json=value_json)

    long = message([WordReading("A" * 200, 0.9), WordReading("B" * 200, 0.9), NOT_READ], "A" * 200 + " " + "B" * 200)
    assert render(sensor["value_template"], long) == long["text"][:STATE_LIMIT]
    assert render(sensor["value_template"], message(None)) == ""  # not reading: an empty state, no error
    attributes = json.loads(render(sensor["json_attributes_template"], long))
    assert [w["text"] for w in attributes["words"]] == ["A" * 200, "B" * 200] and attributes["seq"] == 1
    assert {"points", "score", "text_score"} <= set(attributes["words"][0])
    region_state = {"text": "01234", "words": [{"text": "01234", "score": 0.9}], "seq": 3, "timestamp": "t"}
    assert render(region["value_template"], region_state) == "01234"
    cannot_read = {"text": None, "words": [], "seq": 4, "timestamp": "t", "unavailable": "unavailable: no file"}
    assert render(region["value_template"], cannot_read) == ""
    daemon, own = region["availability"]
    assert region["availability_mode"] == "all" and daemon["topic"] == "craft-edge/Porch Cam/availability"
    assert own["topic"] == region["state_topic"]
    assert [render(own["value_template"], state) for state in (region_state, cannot_read)] == ["online", "offline"]
    daemon, own = sensor["availability"]  # before, the Text sensor showed "" (no words) while it could not read
    assert sensor["availability_mode"] == "all" and daemon["topic"] == "craft-edge/Porch Cam/availability"
    assert own["topic"] == "craft-edge/Porch Cam/status"  # retained: known at once after Home Assistant restarts
    statuses = [{"recognition": {"state": state, "variant": "dynamic"}} for state in ("reading", "unavailable: x")]
    assert [render(own["value_template"], status) for status in statuses] == ["online", "offline"]
    assert render(own["value_template"], {"recognition": None}) == "offline"
    off = copy.deepcopy(config)
    off.recognition.enabled, off.regions = False, []
    assert text_discovery_message(off, topics) == (topic, None)  # published empty: removes the entity


def test_regions_are_published_retained_and_only_when_their_reading_changes(broker: Broker) -> None:
    config = parse_config(f"device_id: cam\nmqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
                          "recognition: {enabled: true}\nregions: [{name: meter, rect: [0, 0, 200, 50]}]", "c")
    subscriber = Subscriber(broker, "craft-edge/cam/regions/#")
    publisher = Publisher(config, None)
    publisher.start()
    reading = Reading(None, None, Regions(config.regions), "reading")
    try:
        assert publisher.connected.wait(10)
        for seq, text in enumerate(["01234", "01234", "01235", "01235", ""], start=1):
            words = (WordReading(text, 0.9),) if text else ()

            def publish(text: str = text, words: tuple = words, seq: int = seq) -> bool:
                publish_regions(reading, {"meter": RegionReading(text, words)}, publisher, seq, 0.0)
                return reading.published["meter"] == text
            until_taken(publish)
        topic = "craft-edge/cam/regions/meter"
        assert subscriber.wait_for(lambda: len(subscriber.on(topic)) == 3, timeout=10)
        sent = [json.loads(m.payload) for m in subscriber.on(topic)]
        assert [(m["text"], m["seq"]) for m in sent] == [("01234", 1), ("01235", 3), ("", 5)]
        assert sent[0]["words"] == [{"text": "01234", "score": 0.9}] and sent[2]["words"] == []
        late = Subscriber(broker, topic)  # joins late: the retained, latest reading
        assert late.wait_for(lambda: late.messages != [], timeout=10)
        assert late.messages[0].retain and json.loads(late.messages[0].payload)["seq"] == 5
        late.close()
    finally:
        publisher.stop()
        subscriber.close()


def test_regions_are_sent_again_on_a_new_connection() -> None:
    """A broker restarted without persistence has lost the retained readings: before, a steady reading was
    never sent again and its topic stayed empty."""
    sent: list[tuple[str, dict]] = []
    publisher = SimpleNamespace(connected=threading.Event(), connections=1,
                                publish_region=lambda name, message: sent.append((name, message)) or True)
    publisher.connected.set()
    reading = Reading(None, None, Regions([]), "reading")
    for connections in (1, 1, 2, 2):
        publisher.connections = connections
        publish_regions(reading, {"meter": RegionReading("04711", ())}, publisher, connections, 0.0)  # type: ignore[arg-type]
    assert [(name, message["seq"]) for name, message in sent] == [("meter", 1), ("meter", 2)]


def test_a_region_removed_from_the_config_leaves_no_reading_or_sensor_behind(broker: Broker) -> None:
    """A region dropped from the config (then SIGHUP or a restart) had a retained reading and a Home Assistant
    sensor: the next publisher clears both, and keeps the regions still configured."""
    def config(regions: str) -> object:
        return region_config(broker.port, regions)

    sensors, regions = "homeassistant/sensor/craft_edge_cam", "craft-edge/cam/regions"
    watcher = Subscriber(broker, "#")
    before = Publisher(config("{name: meter, rect: [0, 0, 9, 9]}, {name: door, rect: [9, 0, 19, 9]}"), None)
    before.start()
    try:
        assert before.connected.wait(10)
        for name in ("meter", "door"):
            before.publish_region(name, {"text": name, "words": [], "seq": 1, "timestamp": "t"})
        assert watcher.wait_for(lambda: watcher.on(f"{regions}/door") != [], timeout=10)
    finally:
        before.stop()
    after = Publisher(config("{name: meter, rect: [0, 0, 9, 9]}"), None)
    after.start()
    try:
        assert after.connected.wait(10)
        cleared = [f"{regions}/door", f"{sensors}/region_door/config"]
        assert watcher.wait_for(lambda: all(last_payload(watcher, topic) == b"" for topic in cleared), 10)
        late = Subscriber(broker, "#")
        assert late.wait_for(lambda: {f"{regions}/meter", f"{sensors}/region_meter/config"} <= {
            m.topic for m in late.messages}, timeout=10)
        assert not {m.topic for m in late.messages if m.payload} & set(cleared)
        late.close()
    finally:
        after.stop()
        watcher.close()


def region_config(port: int, regions: str, home_assistant: bool = True) -> object:
    return parse_config(f"device_id: cam\nmqtt: {{host: 127.0.0.1, port: {port}, home_assistant: "
                        f"{{enabled: {str(home_assistant).lower()}}}}}\nrecognition: {{enabled: true}}\n"
                        f"regions: [{regions}]", "c")


def publish_retained(broker: Broker, messages: dict[str, bytes], retain: bool = True) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for topic, payload in messages.items():
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def until_taken(publish: Callable[[], bool], timeout: float = 10) -> None:
    """Calls ``publish`` until it says the publisher took the message: a region's last one must be
    acknowledged first."""
    deadline = time.monotonic() + timeout
    while not publish():
        assert time.monotonic() < deadline, "the region's last message was never acknowledged"
        time.sleep(0.02)


def last_payload(subscriber: Subscriber, topic: str) -> bytes | None:
    """The last payload seen on ``topic``; None before any."""
    received = subscriber.on(topic)
    return received[-1].payload if received else None


class Handled:
    """Records every message a publisher handled (its ``_handle``), to wait on instead of sleeping."""

    def __init__(self, publisher: Publisher, fail_first: bool = False) -> None:
        self.topics: list[str] = []
        self._handle, self._fail = publisher._handle, fail_first
        publisher._handle = self

    def __call__(self, message: mqtt.MQTTMessage) -> None:
        self.topics.append(message.topic)
        if self._fail:
            self._fail = False
            raise RuntimeError("a bug in handling")
        self._handle(message)

    def wait_for(self, topic: str) -> bool:
        deadline = time.monotonic() + 10
        while topic not in self.topics and time.monotonic() < deadline:
            time.sleep(0.02)
        return topic in self.topics


def test_only_retained_leftovers_of_our_own_regions_are_cleared(broker: Broker) -> None:
    """Another daemon's region sensor on our object id (device ids "cam" and "cam." share it) stays; a live
    message on a removed region's topic is not answered; our own readings do not come back to us; with Home
    Assistant off, readings are still cleared and sensors left to the user."""
    sensors, regions = "homeassistant/sensor/craft_edge_cam", "craft-edge/cam/regions"
    theirs = json.dumps({"state_topic": "craft-edge/cam./regions/door"}).encode()
    publish_retained(broker, {f"{sensors}/region_door/config": theirs, f"{regions}/old": b'{"text": "1"}',
                              f"{sensors}/region_old/config": json.dumps({"state_topic": f"{regions}/old"}).encode()})
    watcher = Subscriber(broker, "#")
    publisher = Publisher(region_config(broker.port, "{name: meter, rect: [0, 0, 9, 9]}", home_assistant=False), None)
    handled = Handled(publisher)
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        assert watcher.wait_for(lambda: last_payload(watcher, f"{regions}/old") == b"", 10)
        publisher.publish_region("meter", {"text": "5", "words": [], "seq": 1, "timestamp": "t"})
        assert watcher.wait_for(lambda: watcher.on(f"{regions}/meter") != [], 10)
        publish_retained(broker, {f"{regions}/gone": b'{"text": "2"}'}, retain=False)
        assert handled.wait_for(f"{regions}/gone")  # handled after the broker sent us our own reading, if it did
        assert f"{regions}/meter" not in handled.topics
        assert [m.payload for m in watcher.on(f"{regions}/gone")] == [b'{"text": "2"}']
        late = Subscriber(broker, f"{sensors}/#")  # Home Assistant off: its sensors are not ours to touch
        assert late.wait_for(lambda: len(late.messages) == 2, 10)
        late.close()
    finally:
        publisher.stop()
    publisher = Publisher(region_config(broker.port, "{name: meter, rect: [0, 0, 9, 9]}"), None)
    handled = Handled(publisher)
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        old_sensor = f"{sensors}/region_old/config"
        assert watcher.wait_for(lambda: last_payload(watcher, old_sensor) == b"", 10)
        assert handled.wait_for(f"{sensors}/region_door/config")
        late = Subscriber(broker, f"{sensors}/region_door/config")
        assert late.wait_for(lambda: [m.payload for m in late.messages] == [theirs], 10)
        late.close()
        assert f"{sensors}/region_door/config" not in publisher.leftovers.cleared and publisher.ignored_messages == 0
    finally:
        publisher.stop()
        watcher.close()


def test_a_message_that_cannot_be_handled_never_ends_the_network_thread(broker: Broker) -> None:
    """paho ends its network thread on an exception from a callback: a bug in handling one message must cost
    that message only (counted), and the next is handled (here Home Assistant's birth message republishes
    discovery)."""
    publisher = Publisher(region_config(broker.port, "{name: meter, rect: [0, 0, 9, 9]}"), None)
    handled = Handled(publisher, fail_first=True)
    watcher = Subscriber(broker, "homeassistant/sensor/craft_edge_cam/text/config")
    publisher.start()
    try:
        assert publisher.connected.wait(10) and watcher.wait_for(lambda: len(watcher.messages) == 1, 10)
        publish_retained(broker, {"craft-edge/cam/regions/x": b"1"}, retain=False)  # handling it raises
        assert handled.wait_for("craft-edge/cam/regions/x")
        publish_retained(broker, {"homeassistant/status": b"online"}, retain=False)
        assert watcher.wait_for(lambda: len(watcher.messages) == 2, 10)
        assert publisher.client._thread is not None and publisher.client._thread.is_alive()
        assert publisher.ignored_messages == 1
    finally:
        publisher.stop()
        watcher.close()


def test_a_refused_subscription_is_said_once(broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """A broker whose ACL refuses the subscriptions clearing needs, in its SUBACK (as EMQX and HiveMQ do; mosquitto
    2.0 grants them and delivers nothing): said once per filter, reconnects or not."""
    publisher = Publisher(region_config(broker.port, "{name: meter, rect: [0, 0, 9, 9]}"), None)
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        for mid in (1001, 1002):  # the same filter, refused on two connections
            publisher._subscriptions[mid] = ("craft-edge/cam/regions/+", "removed regions keep their retained readings")
            publisher._on_subscribe(publisher.client, None, mid, [ReasonCode(PacketTypes.SUBACK, "Not authorized")],
                                    None)
    finally:
        publisher.stop()
    refused = [r.getMessage() for r in caplog.records if "refused the subscription" in r.getMessage()]
    assert len(refused) == 1 and "craft-edge/cam/regions/+" in refused[0] and "retained readings" in refused[0], refused


class Failing:
    """A sequence model that raises, as a recognizer failing mid-run would (an allocation, an OpenCV error)."""

    height, widths, lanes = 16, (32, 64), 1

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        raise RuntimeError("tensor allocation failed")


class ReadsA:
    """A sequence model that reads every crop as "a", with certainty."""

    height, widths, lanes = 16, (32, 64), 1

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        probs = np.zeros((len(pixels), 4, 3), np.float32)
        probs[:, :, 0] = 1.0  # blank
        probs[:, 0] = (0.0, 1.0, 0.0)  # "a" at the first step
        return probs


def test_past_max_words_the_boxes_of_named_regions_are_read_first() -> None:
    """Three large boxes and a small one in the meter region, max_words 2: before, the two largest were
    read and the meter never was."""
    config = parse_config("recognition: {enabled: true, max_words: 2}\n"
                          "regions: [{name: meter, rect: [400, 200, 500, 260]}]", "c")
    reader = Reader(ReadsA(), "ab", "test")
    reading = Reading(reader, FrameReader(reader, config.recognition), Regions(config.regions), "reading")
    boxes = [quad(10, 10, 210, 60), quad(10, 100, 200, 150), quad(220, 10, 400, 60), quad(420, 220, 460, 240)]
    detection = SimpleNamespace(boxes=[SimpleNamespace(points=q, score=0.9) for q in boxes], tiles_run=1, tiles=())
    text, regions = read_frame(reading, np.full((300, 600, 3), 128, np.uint8), detection, gated=False)
    assert text is not None and [w.text for w in text.words] == ["a", None, None, "a"]  # the meter's, the largest
    assert regions["meter"] == RegionReading("a", (WordReading("a", 1.0),))


def test_a_recognizer_failing_mid_run_leaves_frames_published_without_text(caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config("recognition: {enabled: true}", "c")
    reader = Reader(Failing(), "ab", "test")
    reading = Reading(reader, FrameReader(reader, config.recognition), Regions([]), "reading")
    rgb = np.full((100, 200, 3), 255, np.uint8)
    detection = SimpleNamespace(boxes=[SimpleNamespace(points=quad(10, 10, 90, 30), score=0.9)], tiles_run=1,
                                tiles=())
    for _ in range(FAILURES_BEFORE_GIVING_UP - 1):
        assert read_frame(reading, rgb, detection, gated=False) == (None, {})
        assert reading.state == "reading"
    assert read_frame(reading, rgb, detection, gated=False) == (None, {})
    assert reading.state.startswith("unavailable: failed 3 frames in a row") and reading.frames is None
    assert read_frame(reading, rgb, detection, gated=False) == (None, {})  # not tried again until a reload
    assert sum("reading a frame failed" in r.getMessage() for r in caplog.records) == FAILURES_BEFORE_GIVING_UP


def test_reading_given_up_is_tried_again_after_a_while() -> None:
    """Before, reading given up after failed frames stayed off until someone sent SIGHUP."""
    config = parse_config("recognition: {enabled: true}", "c")
    model = Flaky()
    reader = Reader(model, CLOCK, "test")
    reading = Reading(reader, FrameReader(reader, config.recognition), Regions([]), "reading")
    rgb = np.full((60, 120, 3), 128, np.uint8)
    detection = SimpleNamespace(boxes=[SimpleNamespace(points=quad(10, 10, 90, 30), score=0.9)], tiles_run=1,
                                tiles=())
    model.failing = True
    for _ in range(FAILURES_BEFORE_GIVING_UP):
        assert read_frame(reading, rgb, detection, gated=False) == (None, {})
    assert reading.state.startswith("unavailable: failed 3 frames") and reading.given_up_at is not None
    given_up = reading.given_up_at
    model.failing = False
    retry_given_up(reading, config.recognition, given_up + RETRY_SECONDS - 1)
    assert reading.frames is None and read_frame(reading, rgb, detection, gated=False) == (None, {})
    retry_given_up(reading, config.recognition, given_up + RETRY_SECONDS)
    assert reading.state == "reading"
    model.failing = True  # still broken: given up again, and the next retry waits twice as long
    for _ in range(FAILURES_BEFORE_GIVING_UP):
        read_frame(reading, rgb, detection, gated=False)
    given_up = reading.given_up_at
    retry_given_up(reading, config.recognition, given_up + 2 * RETRY_SECONDS - 1)
    assert reading.frames is None
    retry_given_up(reading, config.recognition, given_up + 2 * RETRY_SECONDS)
    model.failing = False
    text, _ = read_frame(reading, rgb, detection, gated=False)
    assert text is not None and text.words[0].text == "19.40" and reading.retries == 0  # worked: back to 10 min
    assert retry_wait(10_000) == RETRY_MAX_SECONDS  # months of retries: no overflow


def test_reading_rules_keep_no_empty_reading_and_no_pattern_run_on_a_long_one() -> None:
    # overlapping alternatives: quick on 20 characters, so they pass the load check; far slower on 41
    config = parse_config("recognition: {enabled: true, min_score: 0, patterns: ['^(\\d|\\d\\d)+$']}", "c")
    frames = FrameReader(Reader(Failing(), "0123456789a", "test"), config.recognition)
    assert frames.kept(Reading_("", 0.0)) == NOT_READ
    assert frames.kept(Reading_("04711", 0.9)) == WordReading("04711", 0.9)
    assert frames.kept(Reading_("04711", float("nan"))) == NOT_READ  # passed min_score, and NaN is not JSON
    started = time.monotonic()
    assert frames.kept(Reading_("1" * 40 + "a", 0.9)) == NOT_READ  # 20 s if tried (x86)
    assert time.monotonic() - started < 1
    assert not matches("1" * (PATTERN_MAX_CHARS + 1), [re.compile(r"^\d+$")])


CLOCK = "0123456789:."


class ReadsNineteenForty:
    """A sequence model that reads every crop as "19.40", the colon second to the period at its step."""

    height, widths, lanes = 16, (32, 64), 1

    def __init__(self) -> None:
        steps = [CLOCK.index(character) + 1 for character in "19.40"]
        self.probs = np.full((len(steps), len(CLOCK) + 1), 0.002, dtype=np.float32)
        self.probs[np.arange(len(steps)), steps] = 0.95
        self.probs[2, CLOCK.index(":") + 1], self.probs[2, CLOCK.index(".") + 1] = 0.35, 0.6
        self.calls = 0

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.repeat(self.probs[None], len(pixels), axis=0)


@pytest.mark.parametrize(("patterns", "min_score", "expected"), [
    ([], 0.3, "19.40"),  # no pattern: greedy's reading
    (["^\\d\\d:\\d\\d$"], 0.3, "19:40"),  # the colon was the model's second choice: steered to it
    (["^\\d\\d:\\d\\d$"], 0.9, None),  # the steered reading scores lower than greedy's, under min_score
    (["^[a-z]+$"], 0.0, None),  # no likely reading matches: none kept
])
def test_patterns_steer_a_reading_to_the_likeliest_that_matches(patterns: list[str], min_score: float,
                                                                 expected: str | None) -> None:
    config = parse_config(f"recognition: {{enabled: true, min_score: {min_score}, patterns: {json.dumps(patterns)}}}",
                          "c")
    model = ReadsNineteenForty()
    frames = FrameReader(Reader(model, CLOCK, "test"), config.recognition)
    result, _ = frames.read(np.full((60, 120, 3), 128, np.uint8), [quad(10, 10, 90, 30)], None)
    assert result.words[0].text == expected
    if expected == "19:40":
        assert result.words[0].score < greedy_decode(model.probs, CLOCK)[1]


def test_a_steered_reading_never_scores_above_the_reading_it_replaced_nor_steers_a_nan() -> None:
    """Found in review: steering "19.40" to "1940" dropped the uncertain point's step from the score, which
    rose from 0.45 to 0.82 and passed a min_score greedy's reading did not; and a NaN step was stepped around."""
    config = parse_config("recognition: {enabled: true, min_score: 0.7, patterns: ['^\\d{4}$']}", "c")
    frames = FrameReader(Reader(Failing(), CLOCK, "test"), config.recognition)
    steps = ReadsNineteenForty().probs
    steps[2, 0], steps[2, CLOCK.index(".") + 1] = 0.47, 0.5  # the point, or a blank
    text, score = greedy_decode(steps, CLOCK)
    assert text == "19.40" and score < 0.7
    assert likeliest_accepted(steps, CLOCK, lambda t: t == "1940")[1] > 0.7  # its own score
    assert frames.kept(Reading_(text, score, steps)) == NOT_READ
    assert frames.steered(Reading_(text, score, steps)) == Reading_("1940", score)
    broken = steps.copy()
    broken[2, CLOCK.index(".") + 1] = np.nan
    nan_text, nan_score = greedy_decode(broken, CLOCK)
    lenient = FrameReader(Reader(Failing(), CLOCK, "test"), parse_config(
        "recognition: {enabled: true, min_score: 0, patterns: ['^\\d{4}$']}", "c").recognition)
    assert lenient.kept(Reading_(nan_text, nan_score, broken)) == NOT_READ
    assert lenient.steered(Reading_("1940", 0.9, broken)).text == "1940"  # a NaN step: not stepped around
    assert lenient.steered(Reading_("19.40", 0.9, broken)).text == "19.40"


def test_steering_stops_for_the_frame_past_its_time_budget(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("edge.recognition.words.STEER_SECONDS_PER_FRAME", 0.0)  # one search, then the budget is out
    config = parse_config("recognition: {enabled: true, min_score: 0, patterns: ['^\\d\\d:\\d\\d$']}", "c")
    frames = FrameReader(Reader(ReadsNineteenForty(), CLOCK, "test"), config.recognition)
    regions = Regions(parse_config("recognition: {enabled: true}\nregions: [{name: shown, rect: [0, 0, 100, 40], "
                                   "detect: false, patterns: ['^\\d\\d:\\d\\d$']}]", "c").regions)
    rgb, boxes = np.full((60, 200, 3), 128, np.uint8), [quad(10, 10, 90, 30), quad(100, 10, 180, 30)]
    first, whole = frames.read(rgb, boxes, None, regions.fixed_quads((60, 200)))
    shown = regions.read((60, 200), boxes, first.raw, whole, frames.kept)["shown"]
    again, _ = frames.read(rgb, boxes, [])  # unchanged: both reused; the budget anew
    assert [w.text for w in first.words] == ["19:40", None] and [w.text for w in again.words] == ["19:40"] * 2
    assert shown.text == "19:40"  # the regions' own budget: boxes that used theirs up do not starve them
    assert caplog.text.count("steering readings by the patterns took over") == 1


def test_a_region_steers_its_words_by_its_own_patterns_and_a_gated_word_is_not_read_again() -> None:
    config = parse_config("recognition: {enabled: true}\nregions: [{name: clock, rect: [0, 0, 100, 40], "
                          "patterns: ['^\\d\\d:\\d\\d$']}, {name: shown, rect: [0, 0, 100, 40], detect: false, "
                          "patterns: ['^\\d\\d:\\d\\d$']}]", "c")
    model = ReadsNineteenForty()
    frames, regions = FrameReader(Reader(model, CLOCK, "test"), config.recognition), Regions(config.regions)
    rgb, boxes = np.full((60, 120, 3), 128, np.uint8), [quad(10, 10, 90, 30)]
    for changed in (None, []):  # the second frame: nothing changed, the box keeps its reading
        result, whole = frames.read(rgb, boxes, changed, regions.fixed_quads((60, 120)))
        read = regions.read((60, 120), boxes, result.raw, whole, frames.kept)
        assert result.words[0].text == "19.40"  # the payload's box: the rules have no pattern
        assert read["clock"].text == "19:40" and read["shown"].text == "19:40"
    assert model.calls == 3  # the box and the whole rectangle, then the rectangle again


class Flaky(ReadsNineteenForty):
    """Reads "19.40", or raises while ``failing``."""

    failing = False

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if self.failing:
            raise RuntimeError("tensor allocation failed")
        return super().__call__(pixels)


def test_after_a_failed_frame_every_box_is_read_afresh_and_each_error_is_traced_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """Before, the frame after a failed one reused the reading of the frame before it for every box the gate
    saw unchanged (compared with the failed frame): a meter's new digits published as the old ones."""
    config = parse_config("recognition: {enabled: true}", "c")
    model = Flaky()
    reader = Reader(model, CLOCK, "test")
    reading = Reading(reader, FrameReader(reader, config.recognition), Regions([]), "reading")
    rgb = np.full((60, 120, 3), 128, np.uint8)
    boxes = [SimpleNamespace(points=quad(10, 10, 90, 30), score=0.9)]
    changed = SimpleNamespace(boxes=boxes, tiles_run=1, tiles=((0, 0, 120, 60),))
    unchanged = SimpleNamespace(boxes=boxes, tiles_run=1, tiles=((100, 40, 120, 60),))
    words = []
    for detection, failing in ((changed, False), (changed, True), (unchanged, False), (changed, True),
                               (unchanged, False), (unchanged, False)):
        model.failing = failing
        text, _ = read_frame(reading, rgb, detection, gated=True)
        words.append(None if text is None else (text.read, text.reused))
    assert words == [(1, 0), None, (1, 0), None, (1, 0), (0, 1)]
    failed = [r for r in caplog.records if "reading a frame failed" in r.getMessage()]
    assert len(failed) == 2 and [bool(r.exc_info) for r in failed] == [True, False]
    regions_read = reading.regions.read
    reading.regions.read = lambda *args: (_ for _ in ()).throw(RuntimeError("region failed"))  # type: ignore[method-assign]
    assert read_frame(reading, rgb, changed, gated=True) == (None, {})  # its boxes were read, then regions failed
    reading.regions.read = regions_read  # type: ignore[method-assign]
    text, _ = read_frame(reading, rgb, unchanged, gated=True)
    assert text is not None and (text.read, text.reused) == (1, 0)


def test_a_reused_word_that_no_pattern_matches_is_steered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    searches = []
    monkeypatch.setattr("edge.recognition.words.likeliest_accepted",
                        lambda *args, **kwargs: searches.append(args) or None)
    config = parse_config("recognition: {enabled: true, patterns: ['^[a-z]+$']}\n"
                          "regions: [{name: clock, rect: [0, 0, 100, 40], patterns: ['^\\d\\d$']}]", "c")
    frames = FrameReader(Reader(ReadsNineteenForty(), CLOCK, "test"), config.recognition)
    regions = Regions(config.regions)
    boxes = [quad(10, 10, 90, 30)]
    for changed in (None, [], [], []):
        result, whole = frames.read(np.full((60, 120, 3), 128, np.uint8), boxes, changed)
        regions.read((60, 120), boxes, result.raw, whole, frames.kept)
        assert result.words[0].text is None
    assert len(searches) == 2  # the rules' patterns, then the region's with them: once each, not every frame


def test_an_allow_list_the_recognizer_cannot_read_is_refused() -> None:
    reader = Reader(Failing(), "0123456789", "test")
    with pytest.raises(ValueError, match="holds none of the recognizer's characters"):
        FrameReader(reader, parse_config("recognition: {enabled: true, allow: 'äöü'}", "c").recognition)


def test_any_error_loading_the_recognizer_costs_reading_not_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    def damaged(*args: object) -> None:
        raise ValueError("embedded null byte")

    monkeypatch.setattr("edge.service.reading.load_reader", damaged)
    reading = build_reading(parse_config("recognition: {enabled: true}", "c"))
    assert reading.frames is None and reading.state == "unavailable: ValueError: embedded null byte"


def test_a_failed_recognizer_is_loaded_again_on_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config("recognition: {enabled: true}", "c")
    loads = []
    monkeypatch.setattr("edge.service.reading.load", lambda c: loads.append(c) or Loaded(None, "unavailable: no file"))
    first = build_reading(config)
    build_reading(config, first)
    assert len(loads) == 2


def test_a_region_reading_over_the_brokers_packet_limit_goes_without_its_words(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before, the oversized reading made the broker close the connection, and paho sent it again after
    every reconnect: nothing else got through. Too large even without words, the region says it is
    unavailable (its last text would look current)."""
    from tests.mqtt_helpers import mosquitto

    words = [{"text": f"word{i}", "score": 0.9} for i in range(80)]
    with mosquitto(tmp_path, extra_config="max_packet_size 2000\n") as broker:
        watcher = Subscriber(broker, "craft-edge/cam/regions/#")
        publisher = Publisher(region_config(broker.port, "{name: meter, rect: [0, 0, 9, 9]}", home_assistant=False),
                              None)
        publisher.start()
        try:
            assert publisher.connected.wait(10) and publisher.max_packet_bytes == 2000
            publisher.publish_region("meter", {"text": "x" * 100, "words": words, "seq": 1, "timestamp": "t"})
            for seq in (2, 3):
                until_taken(lambda seq=seq: publisher.publish_region(
                    "long", {"text": "y" * 2100, "words": [], "seq": seq, "timestamp": "t"}))
            publisher.publish_region("door", {"text": "Exit", "words": words[:1], "seq": 4, "timestamp": "t"})
            assert watcher.wait_for(lambda: len(watcher.messages) == 4, 10), watcher.messages
            time.sleep(1)  # a reconnect would show by now
            assert publisher.connections == 1
        finally:
            publisher.stop()
            watcher.close()
    received = [(m.topic.rsplit("/", 1)[1], json.loads(m.payload)) for m in watcher.messages]
    assert received[0] == ("meter", {"text": "x" * 100, "words": [], "words_dropped": 80, "seq": 1, "timestamp": "t"})
    unavailable = {"text": None, "words": [], "timestamp": "t",
                   "unavailable": "reading over the broker's maximum packet size"}
    assert received[1:3] == [("long", {**unavailable, "seq": 2}), ("long", {**unavailable, "seq": 3})]
    assert received[3] == ("door", {"text": "Exit", "words": words[:1], "seq": 4, "timestamp": "t"})
    assert caplog.text.count("region long: a ") == 1 and "published as unavailable" in caplog.text


def test_a_reload_that_keeps_the_recognizer_says_reading_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading given up (or refused for its allow-list), then SIGHUP with nothing the recognizer depends
    on changed: the kept recognizer reads again, and the status says so (before, it kept the old reason)."""
    config = parse_config("recognition: {enabled: true}", "c")
    monkeypatch.setattr("edge.service.reading.load", lambda c: pytest.fail("the kept recognizer was loaded again"))
    reader = Reader(Failing(), "ab", "test")
    for reason in ("unavailable: failed 3 frames in a row: boom", "unavailable: recognition.allow 'z' ..."):
        given_up = Reading(reader, None, Regions([]), reason, loading_key(config))
        again = build_reading(config, given_up)
        assert again.reader is reader and again.frames is not None and again.state == "reading"
        assert again.status() == {"state": "reading", "variant": "test"}


def test_a_reload_loads_the_recognizer_again_only_when_its_folder_was_converted_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recognizer's key holds when its files were written: the daemon keeps the running recognizer
    across any reload with the same key (before, only across one that also kept the detector, so a change
    of ``model.prefer`` held two recognizers with all their interpreters while the new one loaded)."""
    manifest = tmp_path / "recognizer" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    config = parse_config(f"model: {{dir: '{tmp_path}'}}\nrecognition: {{enabled: true}}", "c")
    loads: list[Reader] = []

    def load(c: object) -> Loaded:
        loads.append(Reader(ReadsA(), "ab", "test"))
        return Loaded(loads[-1], "reading")

    monkeypatch.setattr("edge.service.reading.load", load)
    first = build_reading(config)
    assert build_reading(config, first).reader is first.reader and len(loads) == 1
    written = manifest.stat().st_mtime_ns
    os.utime(manifest, ns=(written + 10**9, written + 10**9))  # converted again into the same folder
    assert build_reading(config, first).reader is loads[-1] and len(loads) == 2


def raise_or_return(result: object) -> object:
    if isinstance(result, Exception):
        raise result
    return result


def test_a_reload_whose_new_recognizer_files_do_not_load_reads_on_with_the_loaded_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """SIGHUP while a new bundle was half copied threw the working recognizer away ("reloaded"), and reading
    stayed off until another SIGHUP. A change of the recognizer's settings still loads what they ask for."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    config = parse_config(f"model: {{dir: '{tmp_path}'}}\nrecognition: {{enabled: true}}", "c")
    from edge.models.manifest import ManifestError
    from edge.models.selection import NoUsableModel

    loaded = Reader(ReadsA(), "ab", "test")
    half_copied = ManifestError("manifest.json: not valid JSON")
    results = iter([loaded, half_copied, half_copied, NoUsableModel("no fp16")])
    monkeypatch.setattr("edge.service.reading.load_reader", lambda *a: raise_or_return(next(results)))
    first = build_reading(config)
    written = manifest.stat().st_mtime_ns
    os.utime(manifest, ns=(written + 10**9, written + 10**9))  # being copied again
    with caplog.at_level("ERROR", logger="edge.service.reading"):
        kept = build_reading(config, first)
    assert kept.reader is loaded and kept.frames is not None and kept.state == "reading"
    assert "changed but cannot be loaded (manifest.json: not valid JSON); reading on with the one loaded" in caplog.text
    again = build_reading(config, kept)  # the files are tried again on the next reload
    assert again.reader is loaded and again.state == "reading"
    other = parse_config(f"model: {{dir: '{tmp_path}'}}\nrecognition: {{enabled: true, variant: fp16}}", "c")
    asked = build_reading(other, again)
    assert asked.reader is None and asked.state == "unavailable: no fp16"


def test_a_reload_after_the_bundle_was_converted_without_a_recognizer_stops_reading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files that fail to load keep the recognizer in memory; a bundle that names none any more is meant."""
    from edge.models.recognizer import NO_RECOGNIZER

    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    config = parse_config(f"model: {{dir: '{tmp_path}'}}\nrecognition: {{enabled: true}}", "c")
    results = iter([Reader(ReadsA(), "ab", "test"), None])  # None: the bundle names no recognizer
    monkeypatch.setattr("edge.service.reading.load_reader", lambda *a: next(results))
    first = build_reading(config)
    written = manifest.stat().st_mtime_ns
    os.utime(manifest, ns=(written + 10**9, written + 10**9))  # converted again with --no-recognizer
    stopped = build_reading(config, first)
    assert stopped.reader is None and stopped.state == f"unavailable: {tmp_path}{NO_RECOGNIZER}"


def test_regions_say_once_that_they_cannot_be_read() -> None:
    """Reading unavailable (no recognizer, or given up): each region's retained reading says so once, so
    that Home Assistant shows the sensor unavailable instead of the last text as current (before, nothing
    was published and the last reading stayed)."""
    sent: list[tuple[str, dict]] = []
    publisher = SimpleNamespace(connected=threading.Event(), connections=0,
                                publish_region=lambda name, payload: sent.append((name, payload)) or True)
    publisher.connected.set()
    config = parse_config("recognition: {enabled: true}\nregions: [{name: meter, rect: [0, 0, 9, 9]}, "
                          "{name: door, rect: [0, 0, 9, 9]}]", "c")
    reading = Reading(None, None, Regions(config.regions), "unavailable: failed 3 frames in a row: boom",
                      published={"meter": "04711"})
    for seq in (7, 8):
        reason = stale_because(reading, SourceState(state="ok"), 0.0, 0.0)
        publish_unavailable(reading, publisher, seq, 0.0, reason)  # type: ignore[arg-type]
    assert [(name, payload["text"], payload["unavailable"], payload["seq"]) for name, payload in sent] == [
        ("meter", None, "unavailable: failed 3 frames in a row: boom", 7),
        ("door", None, "unavailable: failed 3 frames in a row: boom", 7)]
    again = build_reading(config, reading)  # a reload: readings go out afresh when they can be read
    assert again.published == {}


def test_regions_say_they_are_stale_when_no_frame_comes_for_a_while() -> None:
    """A camera lost, or sending only bad frames, while reading works: before, each region's last retained
    reading stayed and looked current in Home Assistant for as long as no frame came."""
    sent: list[tuple[str, str | None]] = []
    publisher = SimpleNamespace(connected=threading.Event(), connections=0,
                                publish_region=lambda name, payload: sent.append((name, payload["text"])) or True)
    publisher.connected.set()
    config = parse_config("recognition: {enabled: true}\nregions: [{name: meter, rect: [0, 0, 9, 9]}]", "c")
    reading = Reading(None, None, Regions(config.regions), "reading", published={"meter": "04711"})
    lost = SourceState(state="lost", detail="camera 0 did not open")
    assert stale_because(reading, lost, NO_FRAME_SECONDS - 1, 0.0) is None  # a short drop
    assert stale_because(reading, SourceState(state="ok"), 250.0, 0.01) is None  # max_fps 0.01: one frame a 100 s
    garbage = SourceState(state="ok", bad_frames=40)  # opens, but every frame is refused
    assert stale_because(reading, garbage, 300.0, 0.01) == "unavailable: no frame for over 300 s (source ok)"
    reason = stale_because(reading, lost, NO_FRAME_SECONDS, 0.01)  # lost: the slow rate does not delay it
    assert reason == "unavailable: no frame for over 30 s (source lost: camera 0 did not open)"
    long_detail = SourceState(state="lost", detail="line one\nline two " + "x" * 500)
    assert stale_because(reading, long_detail, 99.0, 0.0) == ("unavailable: no frame for over 30 s (source lost: "
                                                              f"line one line two {'x' * 102})")
    for seq in (7, 8):
        publish_unavailable(reading, publisher, seq, 0.0, reason)  # type: ignore[arg-type]
    publish_regions(reading, {"meter": RegionReading("04711", ())}, publisher, 9, 0.0)  # type: ignore[arg-type]
    assert sent == [("meter", None), ("meter", "04711")]  # said once; back: the same text goes out again


def test_region_readings_are_not_queued_while_the_broker_is_away() -> None:
    sent: list[str] = []
    publisher = SimpleNamespace(connected=threading.Event(), connections=0,
                                publish_region=lambda name, payload: sent.append(payload["text"]) or True)
    reading = Reading(None, None, Regions([]), "reading")
    for text in ("01234", "01235"):
        publish_regions(reading, {"meter": RegionReading(text, ())}, publisher, 1, 0.0)  # type: ignore[arg-type]
    assert sent == [] and reading.published == {}
    publisher.connected.set()
    publish_regions(reading, {"meter": RegionReading("01236", ())}, publisher, 2, 0.0)  # type: ignore[arg-type]
    assert sent == ["01236"]


def test_an_oversized_message_drops_its_text_before_giving_up() -> None:
    words = [WordReading("x" * 900, 0.9)] * 3
    full = message(words, " ".join(w.text for w in words))
    one_box_no_text = json.dumps({**full, "text": None, "boxes": full["boxes"][:1]}, separators=(",", ":"))
    fitted = fit_to_size(json.dumps(full), len(one_box_no_text) + 10)  # the text alone is 2,702 characters
    assert fitted is not None
    trimmed, omitted = fitted
    kept = json.loads(trimmed)
    assert kept["text"] is None and omitted == 2 and kept["boxes"][0]["text"] == "x" * 900
    jsonschema.validate(kept, load_schema())


def test_status_and_discovery_over_the_brokers_packet_limit_are_left_out_not_sent_for_ever(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Reading adds discovery messages of about a kilobyte and a status that may quote an exception. Before,
    neither was held to the broker's limit: the broker closed the connection on it, and paho sent it again
    after every reconnect, so nothing got through."""
    from tests.mqtt_helpers import mosquitto

    device = "raspberrypi-1a2b3c4d"  # a Pi's usual host name: the text sensor's config is 989 bytes
    prefix = f"craft-edge/{device}"
    with mosquitto(tmp_path, extra_config="max_packet_size 2000\n") as broker:  # payloads up to 976 bytes
        watcher = Subscriber(broker, "#")
        config = parse_config(f"device_id: {device}\nmqtt: {{host: 127.0.0.1, port: {broker.port}, "
                              "home_assistant: {enabled: true}}\nrecognition: {enabled: true}\n"
                              "regions: [{name: m, rect: [0, 0, 9, 9]}]", "c")
        publisher = Publisher(config, None)
        acknowledged: list[int] = []
        publisher.on_ack = acknowledged.append
        huge = {"state": "running", "recognition": {"state": "unavailable: " + "x" * 3000}}
        publisher.publish_status(huge)  # before the CONNACK, as the daemon's first: paho held it unchecked (review 30)
        publisher.start()
        try:
            assert publisher.connected.wait(10) and publisher.max_packet_bytes == 2000
            publisher.publish_status(huge)
            publisher.publish_status({"state": "running", "recognition": {"state": "reading"}})
            mid = publisher.publish_detection(json.dumps({"seq": 1, "boxes": []}))
            assert watcher.wait_for(lambda: watcher.on(f"{prefix}/status"), 10), watcher.messages
            assert watcher.wait_for(lambda: watcher.on(f"{prefix}/detections"), 10), watcher.messages
            time.sleep(1)  # a reconnect would show by now
            assert publisher.connections == 1 and mid in acknowledged
        finally:
            publisher.stop()
            watcher.close()
    assert [json.loads(m.payload)["recognition"] for m in watcher.on(f"{prefix}/status")] == [{"state": "reading"}]
    discovered = {m.topic.split("/")[-2] for m in watcher.messages
                  if m.topic.startswith("homeassistant/") and m.payload}
    assert discovered == {"text_boxes", "region_m"}  # the text sensor's 989 bytes are left out
    assert caplog.text.count(f"status on {prefix}/status: ") == 1
    assert caplog.text.count("discovery (that entity is left out) on homeassistant/sensor/") == 1


def test_a_region_is_offered_again_until_its_last_message_is_acknowledged(tmp_path: Path) -> None:
    """Before, every change went to paho at once: over a link with 0.4 s each way, eight regions changing at
    5 fps piled 321 messages into paho's queue in 20 s, and a detection waited 12.9 s behind them. Now a
    region has one message unacknowledged at most; the newest reading goes once it is (the broker paused)."""
    import signal

    from tests.mqtt_helpers import mosquitto

    with mosquitto(tmp_path) as broker:
        config = region_config(broker.port, "{name: meter, rect: [0, 0, 9, 9]}, {name: door, rect: [0, 0, 9, 9]}",
                               home_assistant=False)
        watcher = Subscriber(broker, "craft-edge/cam/regions/#")
        publisher = Publisher(config, None)
        publisher.start()
        reading = Reading(None, None, Regions(config.regions), "reading")
        assert broker.process is not None
        try:
            assert publisher.connected.wait(10)
            broker.process.send_signal(signal.SIGSTOP)  # the link holds: nothing is acknowledged
            for seq, text in enumerate(("01234", "01235", "01236"), start=1):
                publish_regions(reading, {"meter": RegionReading(text, ())}, publisher, seq, 0.0)
            publish_regions(reading, {"door": RegionReading("Exit", ())}, publisher, 4, 0.0)  # a region of its own
            assert reading.published == {"meter": "01234", "door": "Exit"}
            broker.process.send_signal(signal.SIGCONT)
            topic = "craft-edge/cam/regions/meter"
            assert watcher.wait_for(lambda: len(watcher.on(topic)) == 1, 10)
            deadline = time.monotonic() + 10
            while reading.published["meter"] != "01237" and time.monotonic() < deadline:
                publish_regions(reading, {"meter": RegionReading("01237", ())}, publisher, 5, 0.0)
                time.sleep(0.05)
            assert watcher.wait_for(lambda: len(watcher.on(topic)) == 2, 10)
        finally:
            broker.process.send_signal(signal.SIGCONT)
            publisher.stop()
            watcher.close()
    assert [json.loads(m.payload)["text"] for m in watcher.on(topic)] == ["01234", "01237"]
    assert [json.loads(m.payload)["text"] for m in watcher.on("craft-edge/cam/regions/door")] == ["Exit"]


def test_a_region_message_stays_in_flight_across_a_reconnect_until_acknowledged() -> None:
    """paho sends an unacknowledged message again after a reconnect: a newer one sent before its PUBACK could
    arrive first and be overwritten as the retained reading (review 30). One paho did not take is not held."""
    config = region_config(1883, "{name: meter, rect: [0, 0, 9, 9]}", home_assistant=False)
    publisher = Publisher(config, None)
    handed: list[mqtt.MQTTMessageInfo] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        handed.append(mqtt.MQTTMessageInfo(len(handed) + 1))
        handed[-1].rc = rc
        return handed[-1]

    publisher.client = SimpleNamespace(publish=publish)  # type: ignore[assignment]
    message = {"text": "1", "words": [], "seq": 1, "timestamp": "t"}
    rc = mqtt.MQTT_ERR_SUCCESS
    assert publisher.publish_region("meter", message)
    publisher.connections += 1  # reconnected; paho sends the first again
    assert not publisher.publish_region("meter", message) and len(handed) == 1
    handed[0]._set_as_published()  # its PUBACK
    rc = mqtt.MQTT_ERR_NO_CONN  # handed over while the link was down: its info never says it was acknowledged
    assert publisher.publish_region("meter", message)
    publisher.connections += 1
    assert not publisher.publish_region("meter", message)  # paho sends it on the new connection, after on_connect
    publisher._on_publish(publisher.client, None, handed[-1].mid, None, None)  # type: ignore[arg-type]  # PUBACK
    rc = mqtt.MQTT_ERR_QUEUE_SIZE  # not taken: offered again, not counted as in flight
    assert not publisher.publish_region("meter", message) and not publisher.publish_region("meter", message)
    rc = mqtt.MQTT_ERR_SUCCESS
    assert publisher.publish_region("meter", message) and len(handed) == 5


def test_a_held_region_reading_goes_out_without_another_frame_and_before_a_finished_run_exits() -> None:
    """A reading not taken while the region's last message was unacknowledged waited for the next frame:
    at the end of a finite source there is none, and it was never sent (review 30)."""
    taking = threading.Event()  # the region's last message acknowledged
    sent: list[tuple[str, str, int]] = []

    def publish_region(name: str, message: dict) -> bool:
        if taking.is_set():
            sent.append((name, message["text"], message["seq"]))
        return taking.is_set()

    publisher = SimpleNamespace(connected=threading.Event(), connections=1, publish_region=publish_region)
    publisher.connected.set()
    reading = Reading(None, None, Regions([]), "reading")
    publish_regions(reading, {"meter": RegionReading("01234", ())}, publisher, 7, 0.0)  # type: ignore[arg-type]
    publish_regions(reading, {"meter": RegionReading("01235", ())}, publisher, 8, 0.0)  # type: ignore[arg-type]
    assert sent == [] and reading.published == {} and list(reading.held) == ["meter"]
    taking.set()
    publish_held(reading, publisher)  # type: ignore[arg-type]  # the daemon's periodic step, no frame needed
    assert sent == [("meter", "01235", 8)] and reading.held == {} and reading.published == {"meter": "01235"}
    taking.clear()
    publish_regions(reading, {"meter": RegionReading("01236", ())}, publisher, 9, 0.0)  # type: ignore[arg-type]
    threading.Timer(0.3, taking.set).start()
    flush_held(reading, publisher, timeout=10)  # type: ignore[arg-type]  # the end of a finished run
    assert sent[-1] == ("meter", "01236", 9) and reading.held == {}
    publisher.connected.clear()  # the broker away: the newest reading is held, and the flush waits for it
    publish_regions(reading, {"meter": RegionReading("01237", ())}, publisher, 10, 0.0)  # type: ignore[arg-type]
    threading.Timer(0.3, publisher.connected.set).start()
    flush_held(reading, publisher, timeout=10)  # type: ignore[arg-type]
    assert sent[-1] == ("meter", "01237", 10) and reading.held == {}


def test_the_stale_reason_in_the_status_is_cut_as_the_state_is() -> None:
    """``regions_stale`` carried the recognition state uncut next to the cut ``state`` (review 30)."""
    reading = Reading(None, None, Regions([]), "unavailable: failed 3 frames in a row: " + "x" * 900)
    source = SourceState(state="running", detail="")
    assert len(stale_because(reading, source, 0.0, 5.0) or "") == REASON_CHARS == len(reading.status()["state"])


def test_the_status_goes_out_only_connected_and_never_before_an_older_one() -> None:
    """Before the CONNACK a status went to paho unchecked (the broker's limit unknown) and could close every
    connection; and an unacknowledged status, resent by paho after a reconnect, could arrive after a newer
    one and stay retained (review 31)."""
    config = region_config(1883, "{name: meter, rect: [0, 0, 9, 9]}", home_assistant=False)
    publisher = Publisher(config, None)
    handed: list[tuple[bytes, mqtt.MQTTMessageInfo]] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        assert topic == "craft-edge/cam/status" and qos == 1 and retain
        handed.append((payload, mqtt.MQTTMessageInfo(len(handed) + 1)))
        return handed[-1][1]

    publisher.client = SimpleNamespace(publish=publish)  # type: ignore[assignment]
    publisher.publish_status({"n": 1})
    assert handed == []  # not connected yet: kept
    publisher.connected.set()
    publisher.connections = 1
    publisher.send_status()  # the daemon's periodic step
    publisher.send_status()  # the same status on the same connection: once
    assert [json.loads(payload) for payload, _ in handed] == [{"n": 1}]
    publisher.connections = 2  # reconnected before its PUBACK: paho sends it again first
    publisher.publish_status({"n": 2})
    assert len(handed) == 1
    handed[0][1]._set_as_published()
    publisher.send_status()
    publisher.connections = 3  # a new connection sends the latest again (a broker without persistence lost it)
    handed[1][1]._set_as_published()
    publisher.send_status()
    assert [json.loads(payload) for payload, _ in handed] == [{"n": 1}, {"n": 2}, {"n": 2}]


def test_the_newest_status_goes_out_before_offline_when_the_daemon_stops() -> None:
    """A status made while the last one was unacknowledged waited for the periodic step: at exit there is
    none, and the retained status stayed older than the newest (review 32)."""
    config = region_config(1883, "{name: meter, rect: [0, 0, 9, 9]}", home_assistant=False)
    publisher = Publisher(config, None)
    handed: list[tuple[str, bytes | str, mqtt.MQTTMessageInfo]] = []

    def publish(topic: str, payload: bytes | str, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        handed.append((topic, payload, mqtt.MQTTMessageInfo(len(handed) + 1)))
        if topic.endswith("/availability"):
            handed[-1][2]._set_as_published()
        return handed[-1][2]

    client = SimpleNamespace(publish=publish, disconnect=lambda: None, loop_stop=lambda: None)
    publisher.client = client  # type: ignore[assignment]
    publisher.connected.set()
    publisher.publish_status({"n": 1})
    publisher.publish_status({"n": 2})  # the first not acknowledged yet: kept
    threading.Timer(0.3, handed[0][2]._set_as_published).start()
    publisher.stop(timeout=5)
    assert [(topic.rsplit("/", 1)[1], payload) for topic, payload, _ in handed] == [
        ("status", b'{"n": 1}'), ("status", b'{"n": 2}'), ("availability", "offline")]
