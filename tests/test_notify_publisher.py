"""sd_notify on a real socket; Home Assistant discovery; defensive parsing of incoming messages."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from edge.commands.watch import watch_line
from edge.config.settings import parse_config
from edge.messaging.homeassistant import discovery_message
from edge.messaging.publisher import Publisher
from edge.messaging.topics import Topics
from edge.service.notify import Watchdog, notify
from tests.mqtt_helpers import Broker, Subscriber


def test_a_notify_socket_nobody_reads_drops_messages_instead_of_hanging_the_daemon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, once the socket's queue was full every send waited for ever: a test's socket read only now and
    then hung the daemon's SIGTERM shutdown (found as a flaky lifecycle test), as a stuck manager would."""
    monkeypatch.setattr("edge.service.notify.SEND_TIMEOUT_SECONDS", 0.05)
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))  # and never read
    sent: list[bool] = []
    sender = threading.Thread(target=lambda: sent.extend(notify("WATCHDOG=1", {"NOTIFY_SOCKET": str(path)})
                                                         for _ in range(100)), daemon=True)
    sender.start()
    sender.join(30)
    assert not sender.is_alive(), "a send waits for ever"
    assert sent[0] and not sent[-1]  # the queue filled, then the rest were dropped
    server.close()


def test_notify_and_watchdog_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    assert notify("READY=1", env)
    assert server.recv(100) == b"READY=1"
    watchdog = Watchdog(env)
    watchdog.start()  # pings every 0.5 s while the loop beats
    try:
        for _ in range(3):
            watchdog.beat()
            assert server.recv(100) == b"WATCHDOG=1"
        time.sleep(1.5)  # no beat for longer than WATCHDOG_USEC: the loop is stuck, the pings stop
        server.settimeout(0.75)
        with contextlib.suppress(TimeoutError):
            while True:
                server.recv(100)  # what was sent before it stopped
        with pytest.raises(TimeoutError):
            server.recv(100)
        server.settimeout(2)
        with watchdog.long_work(5.0):  # announced long work: systemd's timeout is extended, the pings go on
            assert server.recv(100) == b"EXTEND_TIMEOUT_USEC=5000000"
            assert server.recv(100) == b"WATCHDOG=1"
    finally:
        watchdog.stop()
    assert not notify("READY=1", {})
    server.close()


def test_the_timeout_is_extended_before_long_work_counts_as_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    watchdog = Watchdog({"WATCHDOG_USEC": "200000", "NOTIFY_SOCKET": "unused"}, clock=lambda: now[0])
    alive_when_sent: dict[str, bool] = {}
    monkeypatch.setattr("edge.service.notify.notify",
                        lambda message, environ=None: alive_when_sent.setdefault(message, watchdog.alive()))
    now[0] = 101.0  # the loop has not beaten for a second: the pinger is silent
    with watchdog.long_work(5.0):
        assert watchdog.alive()
    # a ping sent between the two would reach systemd before the extension it relies on
    assert alive_when_sent == {"EXTEND_TIMEOUT_USEC=5000000": False}


def test_the_watchdog_means_the_loop_is_alive_not_that_a_frame_arrived() -> None:
    now = [0.0]
    watchdog = Watchdog({"WATCHDOG_USEC": "60000000"}, clock=lambda: now[0])
    watchdog.beat()
    now[0] = 59.0
    assert watchdog.alive()
    now[0] = 61.0
    assert not watchdog.alive()  # a hung inference or a deadlock: systemd restarts the service
    watchdog.beat()  # the loop (or an inference of a slow frame) beats again
    assert watchdog.alive()
    with watchdog.long_work(600):  # models measured: the loop is away for minutes, on purpose
        now[0] += 500
        assert watchdog.alive()
        now[0] += 200
        assert not watchdog.alive()  # past what was announced: hung
    assert watchdog.alive()  # the work ended: it counts as a beat
    assert not Watchdog({}).alive()  # not under systemd's watchdog: never pings


def test_home_assistant_discovery_wires_availability() -> None:
    config = parse_config("device_id: porch\nmqtt: {home_assistant: {enabled: true}}", "c")
    topic, payload = discovery_message(config, Topics.for_prefix(config.topic_prefix))
    assert topic == "homeassistant/sensor/craft_edge_porch/text_boxes/config"
    assert payload["state_topic"] == payload["json_attributes_topic"] == "craft-edge/porch/detections"
    assert payload["availability_topic"] == "craft-edge/porch/availability"
    assert payload["value_template"] == "{{ value_json.boxes | count }}"


def test_home_assistant_object_id_is_sanitised() -> None:
    config = parse_config("device_id: 'Porch Cam.1 (ä)'", "c")
    topic, payload = discovery_message(config, Topics.for_prefix(config.topic_prefix))
    assert topic == "homeassistant/sensor/craft_edge_Porch_Cam_1____/text_boxes/config"
    assert payload["unique_id"] == "craft_edge_Porch_Cam_1_____text_boxes"


def test_discovery_republished_on_ha_birth_and_junk_ignored(broker: Broker) -> None:
    config = parse_config(
        f"device_id: porch\nmqtt: {{host: 127.0.0.1, port: {broker.port}, home_assistant: {{enabled: true}}}}", "c"
    )
    discovery = Subscriber(broker, "homeassistant/sensor/#")
    publisher = Publisher(config, None)
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        def announced() -> list:  # the text sensor (recognition off) is published empty: removed
            return [m for m in discovery.messages if m.payload]

        assert discovery.wait_for(lambda: len(announced()) == 1, timeout=10)
        ha = Subscriber(broker, "unused/#")
        ha.client.publish("homeassistant/status", b"\xff\xfe" * 10, qos=1)  # not UTF-8
        ha.client.publish("homeassistant/status", b"x" * 2000, qos=1)  # over our 1 KiB, under the packet limit
        ha.client.publish("homeassistant/status", b"x" * 1_000_000, qos=1)  # over MaximumPacketSize
        ha.client.publish("homeassistant/status", b"restarting", qos=1)  # unknown word
        ha.client.publish("homeassistant/status", b"online", qos=1)
        assert discovery.wait_for(lambda: len(announced()) == 2, timeout=10)
        # The megabyte never reached paho: the broker honours the MaximumPacketSize sent on CONNECT.
        assert publisher.ignored_messages == 3
        assert json.loads(announced()[-1].payload)["unique_id"] == "craft_edge_porch_text_boxes"
    finally:
        publisher.stop()


def test_watch_line_summarises_a_message() -> None:
    message = {
        "schema": 3, "device_id": "porch", "source": {"kind": "files", "name": "a.jpg"},
        "frame": {"seq": 7, "timestamp": "2026-01-01T00:00:00.000+00:00", "width": 640, "height": 480},
        "model": {"variant": "int8", "backend": "cpu", "runtime": "ai-edge-litert", "input": [480, 640]},
        "timing_ms": {"preprocess": 1, "inference": 120, "postprocess": 3, "total": 124.4}, "boxes": [{}, {}],
    }
    assert watch_line(message) == "porch #7 2026-01-01T00:00:00.000+00:00 a.jpg 640x480 int8/cpu 124 ms: 2 boxes"
    message["text"] = "Platform 4"
    assert watch_line(message).endswith('124 ms: 2 boxes: "Platform 4"')


def test_a_password_without_tls_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    plain = parse_config("device_id: t\nmqtt: {host: broker.lan, username: cam}", "c")
    with caplog.at_level("WARNING", logger="edge.messaging.publisher"):
        Publisher(plain, "s3cret")
        Publisher(plain, None)  # no password, nothing to warn about
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["MQTT password for broker.lan:1883 goes over a connection without TLS: anyone on the "
                        "network path can read it (set mqtt.tls.enabled)"]
    assert "s3cret" not in caplog.text
