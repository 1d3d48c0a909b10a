"""The spool and the delivery thread with real SQLite and a real mosquitto: durable before the next
frame, nothing dropped but by the configured policy, safe to read from another thread."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.config.settings import parse_config
from edge.messaging.delivery import Delivery
from edge.messaging.publisher import Publisher
from edge.messaging.spool import Spool, is_disk_full
from tests.daemon_helpers import REPO
from tests.mqtt_helpers import Broker, Subscriber


def message(seq: int) -> dict:
    return {"frame": {"seq": seq}, "boxes": []}


def test_submit_returns_once_the_detection_is_durable(tmp_path: Path) -> None:
    """No queue in memory between inference and the spool: what submit accepted is in the database."""
    spool = Spool(tmp_path, 100)
    publisher = Publisher(parse_config("device_id: t\nmqtt: {port: 1}", "c"), None)  # never started
    delivery = Delivery(publisher, spool, memory_limit=100)  # thread not started: nobody else writes
    delivery.submit(message(7), 7)
    with sqlite3.connect(tmp_path / "spool.sqlite3") as other:  # another connection, as after a restart
        assert other.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
        assert other.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0] == 7


SPOOLING_CHILD = """
import sys
from pathlib import Path
from edge.messaging.spool import Spool

spool = Spool(Path(sys.argv[1]), 1_000_000)
seq = spool.last_seq()
previous = None
while True:
    seq += 1
    spool_id = spool.put(f"detection {seq}", seq)
    print("put", seq, flush=True)
    if previous is not None and seq % 3 == 0:
        spool.ack([previous[1]])
        print("ack", previous[0], flush=True)
    previous = (seq, spool_id)
"""


def test_sigkill_at_random_moments_while_spooling_loses_nothing_and_damages_nothing(tmp_path: Path) -> None:
    """A process spooling as fast as it can (inserts, acknowledged deletes), killed with SIGKILL at 15
    random moments: the database passes SQLite's integrity check, every put that returned is there
    unless it was acknowledged, and the recorded seq never falls behind what was handed out."""
    rng = random.Random(15)
    put: set[int] = set()
    acked: set[int] = set()
    for _ in range(15):
        child = subprocess.Popen([sys.executable, "-c", SPOOLING_CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                                 text=True, cwd=REPO)
        assert child.stdout is not None
        assert child.stdout.readline().startswith("put")  # spooling
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=10)
        for line in out.splitlines():
            word, _, number = line.partition(" ")
            if number.isdigit():  # a line cut by the kill is not counted
                (put if word == "put" else acked).add(int(number))
    with sqlite3.connect(tmp_path / "spool.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {int(p.split()[1]) for (p,) in db.execute("SELECT payload FROM messages")}
        recorded = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
    assert len(put) > 30  # 15 runs that each spooled (about 100 puts a second here; fewer on a slow disk)
    assert put - acked <= stored  # every put that returned and was not acknowledged
    assert recorded >= max(put)


def test_acknowledged_deletes_ride_with_the_next_put(tmp_path: Path) -> None:
    """One commit (one fsync on an SD card) per detection instead of two; nothing acknowledged is left
    behind once the spool closes."""
    spool = Spool(tmp_path, 1000)
    commits = []
    spool._db.set_trace_callback(lambda sql: commits.append(sql) if sql.startswith(("COMMIT", "DELETE")) and
                                 not spool._db.in_transaction else None)
    previous = None
    for seq in range(1, 101):
        spool_id = spool.put(f"m{seq}", seq)
        if previous is not None:
            spool.ack([previous])
        previous = spool_id
    assert spool.count() == 1
    assert len(commits) <= 100 + 2, len(commits)  # the puts' commits, the odd delete on its own
    spool.ack([previous])
    spool.close()
    with sqlite3.connect(tmp_path / "spool.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_a_spool_that_cannot_be_opened_leaves_the_daemon_on_memory_until_it_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state directory the spool cannot be created in (here: its name is taken by a folder) used to
    raise out of the daemon's start, a traceback on every systemd restart."""
    (tmp_path / "spool.sqlite3").mkdir()
    spool = Spool(tmp_path, 100)
    assert spool.unavailable.startswith(f"cannot open {tmp_path / 'spool.sqlite3'}: ")
    publisher = Publisher(parse_config("device_id: t\nmqtt: {port: 1}", "c"), None)  # never started
    delivery = Delivery(publisher, spool, memory_limit=100)
    assert delivery.submit(message(1), 1) is False  # kept in memory
    assert delivery.memory_only() == 1 and spool.count() == 0 and spool.last_seq() == 0
    (tmp_path / "spool.sqlite3").rmdir()
    monkeypatch.setattr("edge.messaging.spool.REOPEN_SECONDS", 0.0)
    assert delivery.submit(message(2), 2) is True  # opened again: spooled
    assert spool.unavailable == "" and spool.count() == 1 and spool.last_seq() == 2


def test_count_says_the_last_count_when_the_database_cannot_answer(tmp_path: Path) -> None:
    """It used to say -1, which callers took as pending (a shutdown then waited its full timeout)."""
    spool = Spool(tmp_path, 100)
    for seq in (1, 2, 3):
        spool.put(f"m{seq}", seq)
    assert spool.count() == 3
    spool._db.close()  # any error from here on
    assert spool.count() == 3


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


def test_a_full_disk_deletes_what_was_acknowledged_before_it_drops_anything(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Acknowledged messages wait for the next put to be deleted; on a full disk they were counted among
    the dropped oldest (the fault soak reported 1,619 dropped where 2 were lost)."""
    from tests.test_durability import small_filesystem

    monkeypatch.setattr("edge.messaging.spool.ACK_FLUSH_SECONDS", 3600.0)  # deleted only with a put
    with small_filesystem(tmp_path / "state", "8m") as state:
        spool = Spool(state, 1_000_000)
        ids = [spool.put("x" * 200 + str(seq), seq) for seq in range(1, 201)]
        assert None not in ids
        spool.ack(ids[:150])  # delivered: waiting for the next put to be deleted
        with open(state / "filler", "wb", buffering=0) as filler:
            for chunk in (65536, 4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        filler.write(bytes(chunk))
        seq = 200
        while spool.dropped_disk_full == 0 and seq < 400 and spool.put("x" * 200 + str(seq + 1), seq + 1):
            seq += 1
        unacknowledged = [int(p[200:]) for _, p in spool.pending(0, 1000) if p[200:].isdigit()]
        assert spool.dropped_disk_full <= 6, spool.dropped_disk_full  # a tenth of the 50 not acknowledged
        assert set(range(151 + spool.dropped_disk_full, 201)) <= set(unacknowledged)
