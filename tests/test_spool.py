"""The spool and the delivery thread with real SQLite and a real mosquitto: durable before the next
frame, nothing dropped but by the configured policy, safe to read from another thread."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from edge.config.settings import parse_config
from edge.messaging.delivery import Delivery
from edge.messaging.publisher import Publisher
from edge.messaging.spool import Spool, is_disk_full
from tests.mqtt_helpers import Broker, Subscriber


def message(seq: int) -> dict:
    return {"frame": {"seq": seq}, "boxes": []}


def test_submit_returns_once_the_detection_is_durable(tmp_path: Path) -> None:
    """No queue in memory between inference and the spool: what submit accepted survives a SIGKILL."""
    spool = Spool(tmp_path, 100)
    publisher = Publisher(parse_config("device_id: t\nmqtt: {port: 1}", "c"), None)  # never started
    delivery = Delivery(publisher, spool, memory_limit=100)  # thread not started: nobody else writes
    delivery.submit(message(7), 7)
    with sqlite3.connect(tmp_path / "spool.sqlite3") as other:  # another connection, as after a restart
        assert other.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
        assert other.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0] == 7
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: the commit survives a power cut


def test_busy_database_drops_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.messaging.spool.BUSY_TIMEOUT_MS", 50)
    spool = Spool(tmp_path, 100)
    for seq in range(1, 21):
        assert spool.put(f"m{seq}", seq) is not None
    holder = sqlite3.connect(tmp_path / "spool.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (a sqlite3 shell, a backup tool) holds the lock
    try:
        with pytest.raises(sqlite3.OperationalError) as busy:
            spool._db.execute("BEGIN IMMEDIATE")
        assert not is_disk_full(busy.value)
        assert spool.put("m21", 21) is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert spool.count() == 20 and spool.dropped == 0 and spool.dropped_disk_full == 0 and spool.write_failures == 1
    assert [p for _, p in spool.pending(0, 100)] == [f"m{seq}" for seq in range(1, 21)]


def test_disk_full_is_told_apart() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE
    assert is_disk_full(full) and is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(io) and not is_disk_full(OSError(5, "Input/output error"))


def test_undelivered_can_be_read_while_the_thread_delivers(broker: Broker, tmp_path: Path) -> None:
    """The main thread counts what is undelivered (end of --max-frames, stats) while acks pour in."""
    config = parse_config(f"device_id: race\nmqtt: {{host: 127.0.0.1, port: {broker.port}}}", "c")
    subscriber = Subscriber(broker, "craft-edge/race/detections")
    publisher = Publisher(config, None)
    delivery = Delivery(publisher, Spool(tmp_path, 100_000), memory_limit=100)
    delivery.start()
    publisher.start()
    errors: list[BaseException] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        assert publisher.connected.wait(10)

        def produce() -> None:
            for seq in range(1, 1501):
                delivery.submit(message(seq), seq)

        producer = threading.Thread(target=produce)
        producer.start()
        while producer.is_alive() or delivery.undelivered():
            try:
                delivery.undelivered()
            except RuntimeError as exc:  # "dictionary changed size during iteration"
                errors.append(exc)
                break
        producer.join()
    finally:
        sys.setswitchinterval(interval)
        delivery.stop()
        publisher.stop()
    assert errors == []
    assert subscriber.wait_for(lambda: len(subscriber.messages) >= 1500, timeout=30)
