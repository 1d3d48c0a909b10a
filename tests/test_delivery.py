"""Delivery on a bad link, with the real spool, paho and mosquitto: one owner of retransmission, bounded
memory on a link that keeps dropping, a message over the broker's Maximum Packet Size that never
blocks the rest, and a delivery thread that survives a surprise."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import numpy as np
import pytest

from edge.config.settings import ConfigError, parse_config
from edge.messaging.delivery import WINDOW, Delivery
from edge.messaging.payload import TilingSettings, detection_message, load_schema
from edge.messaging.publisher import Publisher
from edge.messaging.spool import Spool
from tests.mqtt_helpers import Broker, Link, Subscriber

TOPIC = "craft-edge/link/detections"


def message(seq: int, boxes: int = 1) -> dict:
    """A real schema-3 detections message with ``boxes`` boxes, scored 0.5 to 1.0 at random."""
    rng = np.random.default_rng(seq)
    detection = SimpleNamespace(
        boxes=[SimpleNamespace(points=rng.uniform(0, 1280, (4, 2)), score=float(rng.uniform(0.5, 1.0)))
               for _ in range(boxes)],
        timing=SimpleNamespace(preprocess=1.0, inference=2.0, postprocess=3.0, total=6.0),
        tiles_run=1, tiles_skipped=0, tiles=())
    return detection_message(device_id="link", source_kind="files", source_name="a.jpg", seq=seq, captured=0.0,
                             frame_hw=(720, 1280), variant="int8", backend="cpu", runtime="ai-edge-litert",
                             input_hw=(384, 640), tiling=TilingSettings("off", 1.0, 64, (384, 640), False),
                             tile_variant="int8", tile_backend="cpu", detection=detection)


def delivery_to(port: int, folder: Path) -> tuple[Delivery, Publisher]:
    config = parse_config(f"device_id: link\nmqtt: {{host: 127.0.0.1, port: {port}, reconnect_max_seconds: 1}}",
                          "c")
    publisher = Publisher(config, None)
    delivery = Delivery(publisher, Spool(folder, 100_000), memory_limit=1000)
    delivery.start()
    publisher.start()
    return delivery, publisher


def received_seqs(subscriber: Subscriber) -> list[int]:
    return [json.loads(m.payload)["frame"]["seq"] for m in subscriber.on(TOPIC)]


def test_a_message_over_the_brokers_maximum_packet_size_is_trimmed_and_blocks_nothing(tmp_path: Path) -> None:
    """A dense frame (400 boxes, about 34 KB) to a broker that takes 16 KiB packets: the broker closed
    the connection, and the same message was resent first after every reconnect, for ever."""
    broker = Broker(tmp_path / "broker", extra_config="max_packet_size 16384\n")
    broker.start()
    subscriber = Subscriber(broker, TOPIC)
    delivery, publisher = delivery_to(broker.port, tmp_path / "spool")
    try:
        assert publisher.connected.wait(10)
        dense = message(1, boxes=400)
        for seq, sent in enumerate([dense, message(2), message(3), message(4)], start=1):
            delivery.submit(sent, seq)
        assert subscriber.wait_for(lambda: len(received_seqs(subscriber)) >= 4, timeout=20), received_seqs(subscriber)
        assert delivery.wait_until_delivered(10)  # acknowledged, so deleted from the spool
    finally:
        delivery.stop()
        publisher.stop()
        broker.stop()
    first = subscriber.on(TOPIC)[0]
    trimmed = json.loads(first.payload)
    jsonschema.validate(trimmed, load_schema())
    assert received_seqs(subscriber) == [1, 2, 3, 4]
    kept = len(trimmed["boxes"])
    assert 0 < kept < 400 and int(first.properties["boxes_omitted"]) == 400 - kept
    assert len(first.payload) <= 16384 - 1024
    scores = sorted((b["score"] for b in dense["boxes"]), reverse=True)
    assert sorted((b["score"] for b in trimmed["boxes"]), reverse=True) == scores[:kept]  # the best kept
    assert delivery.oversized_trimmed == 1 and delivery.spool.count() == 0


def test_a_flapping_link_resends_only_what_was_in_flight_and_holds_a_bounded_window(tmp_path: Path) -> None:
    """Wi-Fi with 50 ms of latency that drops every few hundred milliseconds while detections pour in:
    paho resends what it holds after each reconnect; the delivery thread used to republish its whole
    window beside it, so paho held two copies and the broker received both."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    link = Link(broker, latency=0.05)
    subscriber = Subscriber(broker, TOPIC, client_id="link-subscriber")
    delivery, publisher = delivery_to(link.port, tmp_path / "spool")
    rng = random.Random(7)
    held = []  # messages paho holds (its memory), sampled
    seq = 0
    try:
        assert publisher.connected.wait(10)
        for _ in range(8):
            for _ in range(2 * WINDOW):  # a burst: a full window in flight when the link drops
                seq += 1
                delivery.submit(message(seq), seq)
            deadline = time.monotonic() + rng.uniform(0.05, 0.3)
            while time.monotonic() < deadline:
                held.append(len(publisher.client._out_messages))
                time.sleep(0.01)
            link.cut()
            while not publisher.connected.wait(0.01):  # reconnecting: paho and the window as they are
                held.append(len(publisher.client._out_messages))
            for _ in range(50):
                held.append(len(publisher.client._out_messages))
                time.sleep(0.01)
        assert delivery.wait_until_delivered(60)
        assert subscriber.wait_for(lambda: set(received_seqs(subscriber)) >= set(range(1, seq + 1)), timeout=30)
    finally:
        delivery.stop()
        publisher.stop()
        link.close()
        broker.stop()
    received = received_seqs(subscriber)
    duplicates = len(received) - len(set(received))
    print(f"\n[flapping link] cuts={link.cuts} sent={seq} duplicates={duplicates} paho held at most {max(held)}")
    assert set(received) == set(range(1, seq + 1))  # nothing lost
    assert max(held) <= WINDOW + 5  # one window, plus availability; two copies of it before
    assert duplicates <= link.cuts * WINDOW  # at most what was in flight at each cut


def test_the_delivery_thread_survives_an_unexpected_error(tmp_path: Path, broker: Broker,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    subscriber = Subscriber(broker, TOPIC)
    delivery, publisher = delivery_to(broker.port, tmp_path / "spool")
    real_pending = delivery.spool.pending
    failures = iter([True])

    def pending_once_broken(after_id: int, limit: int) -> list[tuple[int, str]]:
        if next(failures, False):
            raise RuntimeError("a bug nobody foresaw")
        return real_pending(after_id, limit)

    monkeypatch.setattr(delivery.spool, "pending", pending_once_broken)
    try:
        assert publisher.connected.wait(10)
        for seq in (1, 2, 3):
            delivery.submit(message(seq), seq)
        assert subscriber.wait_for(lambda: received_seqs(subscriber) == [1, 2, 3], timeout=20)
        assert delivery.is_alive() and delivery.errors == 1
    finally:
        delivery.stop()
        publisher.stop()


def test_a_reload_whose_publisher_cannot_start_goes_back_to_the_running_one(
        tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SIGHUP the old publisher used to be stopped before the new one raised (paho refusing its host):
    the daemon was left with none, and died."""
    from edge.detection.boxes import boxes_changed
    from edge.messaging.outbox import Outbox

    def config(client_id: str) -> object:
        return parse_config(f"device_id: link\nmqtt: {{host: 127.0.0.1, port: {broker.port}, "
                            f"client_id: {client_id}, reconnect_max_seconds: 1}}", "c")

    subscriber = Subscriber(broker, TOPIC)
    outbox = Outbox(config("first"), tmp_path / "state", boxes_changed)
    outbox.start()
    running = outbox.publisher
    real_start = Publisher.start

    def refused(self: Publisher) -> None:
        if self is not running:
            raise ValueError("Invalid host.")
        real_start(self)

    monkeypatch.setattr(Publisher, "start", refused)
    try:
        assert running.connected.wait(10)
        with pytest.raises(ConfigError, match=r"mqtt: cannot use the new settings \(Invalid host.\)"):
            outbox.swap(config("second"))
        assert outbox.publisher is running and outbox.delivery.publisher is running
        assert outbox.config.client_id == "first"
        assert running.connected.wait(10)  # started again
        outbox.submit(message(1), 1)
        assert subscriber.wait_for(lambda: received_seqs(subscriber) == [1], timeout=20)
    finally:
        outbox.stop(1)
