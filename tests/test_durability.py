"""What the README's "When things go wrong" table promises about detections, tested by breaking it for
real: SIGKILL at random moments, two daemons on one state directory, a full filesystem with the
broker down, a broker that stops acknowledging while the daemon shuts down. Real processes, real
weights, real mosquitto, real SQLite on a real (small) filesystem."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, unavailable
from tests.daemon_helpers import seqs, start_daemon, write_config
from tests.mqtt_helpers import Broker, Subscriber

pytestmark = pytest.mark.conversion
TOPIC = "craft-edge/test/detections"
SPOOLED = re.compile(r"seq (\d+) spooled")


def report(name: str, **numbers: object) -> None:
    """Counts for the record (run pytest -s to see them)."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def spooled(log: Path) -> list[int]:
    """The seqs the daemon reported durable (a debug line written after the spool's commit returned)."""
    return [int(n) for n in SPOOLED.findall(log.read_text())] if log.exists() else []


def spool_seqs(state: Path) -> list[int]:
    with sqlite3.connect(state / "spool.sqlite3") as db:
        return [json.loads(p)["frame"]["seq"] for (p,) in db.execute("SELECT payload FROM messages ORDER BY id")]


def run_logged(config: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The daemon with its log in a file: a pipe nobody reads would block it."""
    with log.open("a") as stream:
        return start_daemon(config, *args, env=env, stdout=subprocess.DEVNULL, stderr=stream)


def offline_session(tmp_path: Path, client_id: str) -> Broker:
    """A broker that knows ``client_id``'s persistent subscription, then stopped: the broker is down."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    Subscriber(broker, TOPIC, client_id=client_id).close()
    broker.stop()
    return broker


@contextmanager
def running(config: Path, log: Path) -> Iterator[subprocess.Popen]:
    """The daemon for the with-block; then SIGTERM, which must end it with 0 (killed if the block fails)."""
    daemon = run_logged(config, log)
    try:
        yield daemon
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()


def deliver_after_restart(broker: Broker, config: Path, folder: Path, client_id: str, expected: list[int]
                          ) -> Subscriber:
    """The broker back and one more daemon run: every seq in ``expected`` arrives (else the test fails)."""
    broker.start()
    try:
        subscriber = Subscriber(broker, TOPIC, client_id=client_id)
        final = run_logged(config, folder / "final.log", "--max-frames", "1")
        assert final.wait(timeout=180) == 0, (folder / "final.log").read_text()[-3000:]
        assert subscriber.wait_for(lambda: set(seqs(subscriber.messages)) >= set(expected), timeout=60)
    finally:
        broker.stop()
    return subscriber


def test_sigkill_at_random_moments_loses_no_processed_seq_and_reuses_none(tmp_path: Path, model_dir: Path) -> None:
    broker = offline_session(tmp_path, "kill-20")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, log_level="debug")
    rng = random.Random(10)
    rounds: list[list[int]] = []
    for kill in range(20):
        log, frames = tmp_path / f"daemon-{kill}.log", rng.randint(1, 6)
        daemon = run_logged(config, log)
        try:
            assert wait_until(lambda log=log, n=frames: len(spooled(log)) >= n, timeout=120), log.read_text()
            time.sleep(rng.uniform(0, 0.3))
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=10)
        rounds.append(spooled(log))
    processed = [seq for reported in rounds for seq in reported]
    subscriber = deliver_after_restart(broker, config, tmp_path, "kill-20", processed)
    payloads: dict[int, set[bytes]] = {}
    for message in subscriber.messages:
        payloads.setdefault(json.loads(message.payload)["frame"]["seq"], set()).add(message.payload)
    reused = sorted(seq for seq, versions in payloads.items() if len(versions) > 1)
    missing = sorted(set(processed) - set(payloads))
    report("sigkill x20, broker down", kills=len(rounds), processed=len(processed), received=len(payloads),
           missing=len(missing), reused=len(reused), duplicates=len(subscriber.messages) - len(payloads))
    assert len(processed) == len(set(processed))  # no seq reported twice across restarts
    assert all(max(a) < min(b) for a, b in itertools.pairwise(rounds) if a and b)
    assert missing == [] and reused == []


def test_second_daemon_on_the_same_state_directory_is_refused(tmp_path: Path, model_dir: Path) -> None:
    config = write_config(tmp_path / "config.yaml", 1, model_dir, SAMPLES)  # no broker needed
    first = run_logged(config, tmp_path / "first.log")
    try:
        assert wait_until(lambda: "ready:" in (tmp_path / "first.log").read_text(), timeout=120)
        second = start_daemon(config)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 1
        state = tmp_path / "state"
        assert stderr.strip().splitlines() == [
            f"craft-edge: error: state directory {state} is in use by another craft-edge daemon (pid {first.pid}); "
            "stop it first or give this one its own state_dir"], stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    third = run_logged(config, tmp_path / "third.log")  # the kernel released the lock with the process
    try:
        assert wait_until(lambda: "ready:" in (tmp_path / "third.log").read_text(), timeout=120)
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=30) == 0
    finally:
        if third.poll() is None:  # never leave a daemon running after a failed test
            third.kill()
            third.wait(timeout=10)


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path``: a disk that really fills up (ENOSPC). Needs root (CI runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_with_the_broker_down_deletes_nothing_spooled(tmp_path: Path, model_dir: Path) -> None:
    """drop_newest: a full disk may not delete anything already spooled; new detections wait in memory."""
    broker = offline_session(tmp_path, "full-disk")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, log_level="debug",
                          source={"max_fps": 20}, mqtt={"spool_full_policy": "drop_newest"})
    log = tmp_path / "daemon.log"
    with small_filesystem(tmp_path / "state", "320k") as state:
        with running(config, log):
            assert wait_until(lambda: "cannot be written" in log.read_text(), timeout=180), log.read_text()[-2000:]
            failed_at = len(spooled(log))
            time.sleep(2)  # frames keep coming on the full disk
        text = log.read_text()
        reported = spooled(log)
        on_disk = spool_seqs(state)
        assert "Traceback" not in text and "database disk image is malformed" not in text
        assert "SQLITE_FULL" in text or "database or disk is full" in text
        assert on_disk == reported  # every spooled detection is still there, in order; nothing deleted
        subscriber = deliver_after_restart(broker, config, tmp_path, "full-disk", reported)
    report("disk full, broker down", spooled=len(reported), spooled_when_full=failed_at, kept=len(on_disk),
           received=len(set(seqs(subscriber.messages))))


def test_full_disk_drop_oldest_drops_only_what_it_logs(tmp_path: Path, model_dir: Path) -> None:
    broker = offline_session(tmp_path, "full-oldest")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, log_level="debug",
                          source={"max_fps": 20})
    log = tmp_path / "daemon.log"
    with small_filesystem(tmp_path / "state", "320k") as state:
        with running(config, log):
            assert wait_until(lambda: "disk full: dropped the oldest" in log.read_text(), timeout=180), \
                log.read_text()[-2000:]
        text = log.read_text()
        reported = spooled(log)
        on_disk = spool_seqs(state)
    drops = [int(n) for n in re.findall(r"disk full: dropped the oldest (\d+) spooled", text)]
    report("disk full, drop_oldest", spooled=len(reported), kept=len(on_disk), dropped=sum(drops))
    assert on_disk == reported[sum(drops):]  # exactly the oldest, as many as logged, the rest in order
    assert "Traceback" not in text


def test_sigterm_waits_for_the_broker_to_acknowledge(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    """The broker stops answering (SIGSTOP) just before SIGTERM: the daemon waits for its PUBACKs, bounded."""
    assert broker.process is not None
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, source={"max_fps": 10})
    subscriber = Subscriber(broker, TOPIC)
    daemon = start_daemon(config)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= 5, timeout=120)
        broker.process.send_signal(signal.SIGSTOP)
        time.sleep(1)  # detections go out, no PUBACK comes back
        daemon.send_signal(signal.SIGTERM)
        time.sleep(2)
        assert daemon.poll() is None  # still waiting for the acknowledgements
        broker.process.send_signal(signal.SIGCONT)
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr
    finally:
        broker.process.send_signal(signal.SIGCONT)
        daemon.kill()
    assert spool_seqs(tmp_path / "state") == []
    assert "all detections acknowledged by the broker" in stderr
    assert subscriber.wait_for(lambda: set(seqs(subscriber.messages)) == set(range(1, max(seqs(subscriber.messages))
                                                                                     + 1)), timeout=10)

    # Bounded: a broker that never answers again does not hold the shutdown longer than configured.
    write_config(config, broker.port, model_dir, SAMPLES, source={"max_fps": 10}, mqtt={"shutdown_ack_seconds": 2})
    daemon = start_daemon(config)
    try:
        count = len(subscriber.messages)
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= count + 5, timeout=120)
        broker.process.send_signal(signal.SIGSTOP)
        time.sleep(1)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)  # returns while the broker is still stopped
        left = spool_seqs(tmp_path / "state")
    finally:
        broker.process.send_signal(signal.SIGCONT)
        daemon.kill()
    assert daemon.returncode == 0, stderr
    assert left and f"{len(left)} detections not acknowledged by the broker: kept in the spool" in stderr


def test_an_unusable_state_directory_or_tls_file_is_one_line_and_exit_2(tmp_path: Path, model_dir: Path) -> None:
    """Setup errors found at start end with one line and exit 2 (systemd does not restart on 2)."""
    config = write_config(tmp_path / "config.yaml", 1, model_dir, SAMPLES)
    state = tmp_path / "state"
    state.mkdir()
    (state / "daemon.lock").mkdir()  # cannot be opened as a file, like a lock file another user owns
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=120)
    assert daemon.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1].startswith(f"craft-edge: error: state directory {state}: cannot use "
                                                      "daemon.lock"), stderr
    assert "Traceback" not in stderr
    (state / "daemon.lock").rmdir()
    garbage = tmp_path / "ca.crt"
    garbage.write_text("not a certificate\n")  # readable, so it passes the load check; TLS refuses it
    config = write_config(tmp_path / "config.yaml", 1, model_dir, SAMPLES,
                          mqtt={"tls": {"enabled": True, "ca_file": str(garbage)}})
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=120)
    assert daemon.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1].startswith("craft-edge: error: mqtt: cannot use the settings"), stderr
    assert "Traceback" not in stderr


def test_drop_oldest_makes_room_on_a_completely_full_disk(tmp_path: Path) -> None:
    """Even SQLite's DELETE needs room in the WAL: with not a byte left, the spool gives up its reserve
    file so that drop_oldest can still drop the oldest and store the newest."""
    from edge.messaging.spool import Spool

    with small_filesystem(tmp_path / "state", "320k") as state:
        spool = Spool(state, 10_000)
        payload = "x" * 2000
        seq = 0
        while spool.put(payload, seq := seq + 1) is not None and spool.dropped_disk_full == 0:
            pass
        with contextlib.suppress(OSError), open(state / "filler", "wb") as filler:  # not a byte left
            while True:
                filler.write(bytes(4096))
                filler.flush()
        dropped_before = spool.dropped_disk_full
        assert spool.put(payload, seq + 1) is not None, "the newest was not stored"
        assert spool.dropped_disk_full > dropped_before
        assert spool.last_seq() == seq + 1
        spool.close()
