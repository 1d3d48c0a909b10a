"""The daemon under faults, with real processes: broker outage and restart, SIGKILL while the broker
is down, a full disk, lost sources, unusable models. Real weights, real mosquitto."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.models.manifest import load_manifest
from tests.conftest import SAMPLES
from tests.daemon_helpers import seqs, start_daemon, write_config
from tests.mqtt_helpers import Broker, Subscriber

pytestmark = pytest.mark.conversion
TOPIC = "craft-edge/test"
OUTAGE_SECONDS = 30


def report(name: str, **numbers: object) -> None:
    """Counts for the record (run pytest -s to see them)."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


def latest(subscriber: Subscriber, topic: str) -> dict:
    messages = subscriber.on(f"{TOPIC}/{topic}")
    return json.loads(messages[-1].payload) if messages else {}


def test_broker_outage_loses_nothing(tmp_path: Path, model_dir: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    subscriber = Subscriber(broker, f"{TOPIC}/detections", client_id="outage-subscriber")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, source={"max_fps": 5})
    frames = 5 * (OUTAGE_SECONDS + 12)
    daemon = start_daemon(config, "--max-frames", str(frames))
    try:
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= 10, timeout=120)
        broker.stop()
        before = set(seqs(subscriber.messages))
        time.sleep(OUTAGE_SECONDS)
        broker.start()
        _, stderr = daemon.communicate(timeout=600)
        assert daemon.returncode == 0, stderr
        assert subscriber.wait_for(lambda: set(seqs(subscriber.messages)) >= set(range(1, frames + 1)), timeout=60)
    finally:
        daemon.kill()
        broker.stop()
    received = seqs(subscriber.messages)
    during = set(received) - before
    report("broker outage", produced=frames, received_unique=len(set(received)),
           duplicates=len(received) - len(set(received)), produced_during_outage_or_after=len(during),
           lost=len(set(range(1, frames + 1)) - set(received)))
    assert set(received) == set(range(1, frames + 1))
    assert "MQTT connection lost" in stderr or "cannot connect" in stderr


def spool_state(state: Path) -> tuple[int, int]:
    """(messages in the spool, last seq) read from the daemon's SQLite spool."""
    with sqlite3.connect(state / "spool.sqlite3") as db:
        count = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    return count, int(row[0]) if row else 0


def wait_for_spooled_seq(state: Path, seq: int, timeout: float) -> None:
    """Wait until the daemon's spool has reached `seq`. The spool file exists a moment before its
    tables do, so a read in that moment is retried, not taken as an answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (state / "spool.sqlite3").exists() and spool_state(state)[1] >= seq:
                return
        except sqlite3.OperationalError:  # no such table yet
            pass
        time.sleep(0.2)


def test_sigkill_while_the_broker_is_down_then_restart(tmp_path: Path, model_dir: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    subscriber = Subscriber(broker, f"{TOPIC}/detections", client_id="kill-subscriber")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, source={"max_fps": 5})
    daemon = start_daemon(config)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= 5, timeout=120)
        broker.stop()
        wait_for_spooled_seq(tmp_path / "state", spool_state(tmp_path / "state")[1] + 6, timeout=60)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        spooled, last_seq = spool_state(tmp_path / "state")
        assert spooled > 5 and last_seq > len(subscriber.messages)
        broker.start()
        restarted = start_daemon(config, "--max-frames", "3")
        _, stderr = restarted.communicate(timeout=180)
        assert restarted.returncode == 0, stderr
        assert f"spool holds {spooled} detections from an earlier run" in stderr
        expected = set(range(1, last_seq + 1))

        def after_restart() -> list[int]:
            return sorted(set(seqs(subscriber.messages)) - expected)

        assert subscriber.wait_for(lambda: set(seqs(subscriber.messages)) >= expected and len(after_restart()) == 3,
                                   timeout=60), (sorted(expected - set(seqs(subscriber.messages))), after_restart(),
                                                 spooled, last_seq, broker.log.read_text()[-3000:])
    finally:
        daemon.kill()
        broker.stop()
    received = seqs(subscriber.messages)
    report("sigkill", produced_before_kill=last_seq, spooled_at_kill=spooled, produced_after_restart=3,
           received_unique=len(set(received)), duplicates=len(received) - len(set(received)),
           lost=len(expected - set(received)), first_after_restart=after_restart()[0])
    # seq carried on above every seq reserved before the kill (edge.service.sequence): a gap, never a reuse
    assert last_seq < after_restart()[0] <= last_seq + 1000


def limit_file_size() -> None:
    """In the child: files may not grow past 96 KiB (a full disk as far as the spool is concerned)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, 96 * 1024))


def test_full_disk_for_the_spool(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    subscriber = Subscriber(broker, f"{TOPIC}/#")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES)
    daemon = start_daemon(config, preexec_fn=limit_file_size)
    try:
        assert subscriber.wait_for(
            lambda: latest(subscriber, "stats").get("spool", {}).get("write_failures", 0) > 0, timeout=180
        ), "the spool never filled"
        count = len(subscriber.on(f"{TOPIC}/detections"))
        assert subscriber.wait_for(lambda: len(subscriber.on(f"{TOPIC}/detections")) > count + 5, timeout=60)
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0
    finally:
        daemon.kill()
    stats = latest(subscriber, "stats")
    received = seqs(subscriber.on(f"{TOPIC}/detections"))
    report("disk full", frames=stats["frames"], received=len(received), write_failures=stats["spool"]["write_failures"],
           lost=len(set(range(1, max(received) + 1)) - set(received)))
    assert "cannot be written" in stderr and "Traceback" not in stderr
    assert set(received) == set(range(1, max(received) + 1))  # published from memory, nothing lost


def test_spool_full_drops_oldest_and_counts(tmp_path: Path, model_dir: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()  # make the subscriber's session, then take the broker away
    Subscriber(broker, f"{TOPIC}/detections", client_id="full-subscriber").close()
    broker.stop()
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES,
                          source={"max_fps": 10}, mqtt={"spool_max_messages": 10})
    daemon = start_daemon(config, "--max-frames", "25")
    try:
        wait_for_spooled_seq(tmp_path / "state", 20, timeout=120)
        assert spool_state(tmp_path / "state")[0] == 10  # bounded
        broker.start()
        subscriber = Subscriber(broker, f"{TOPIC}/detections", client_id="full-subscriber")
        _, stderr = daemon.communicate(timeout=180)
        assert daemon.returncode == 0, stderr
        assert subscriber.wait_for(lambda: 25 in seqs(subscriber.messages), timeout=30)
    finally:
        daemon.kill()
        broker.stop()
    received = sorted(set(seqs(subscriber.messages)))
    report("spool full", produced=25, bound=10, received=len(received), dropped_oldest=25 - len(received))
    assert "spool full (10 messages)" in stderr
    assert 1 not in received and received == list(range(received[0], 26))  # the oldest went, the rest in order


def test_lost_file_source_comes_back(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    frames = tmp_path / "frames"
    shutil.copytree(SAMPLES, frames)
    subscriber = Subscriber(broker, f"{TOPIC}/#")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, frames,
                          source={"reopen_backoff_max_seconds": 1})
    daemon = start_daemon(config)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.on(f"{TOPIC}/detections")) >= 3, timeout=120)
        frames.rename(tmp_path / "away")
        assert subscriber.wait_for(lambda: latest(subscriber, "status").get("source", {}).get("state") == "lost",
                                   timeout=30)
        lost_at = len(subscriber.on(f"{TOPIC}/detections"))
        (tmp_path / "away").rename(frames)
        assert subscriber.wait_for(lambda: latest(subscriber, "status").get("source", {}).get("state") == "ok",
                                   timeout=30)
        assert subscriber.wait_for(lambda: len(subscriber.on(f"{TOPIC}/detections")) > lost_at + 3, timeout=60)
        status = latest(subscriber, "status")
        report("file source lost", detections_before=lost_at, reopens=status["source"]["reopens"])
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        daemon.kill()
        daemon.communicate()


def test_video_stream_that_stops_is_reopened(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    for image in ("coffee_01.jpg", "rocket_03.jpg", "chelsea_02.jpg"):
        writer.write(cv2.imread(str(SAMPLES / image)))
    writer.release()
    subscriber = Subscriber(broker, f"{TOPIC}/#")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES,
                          source={"kind": "opencv", "device": str(video), "name": "door",
                                  "reopen_backoff_max_seconds": 1})
    daemon = start_daemon(config)
    try:
        # three frames at 5 fps, played again and again: a reopen every 0.6 s
        assert subscriber.wait_for(lambda: len(subscriber.on(f"{TOPIC}/detections")) >= 7, timeout=120)
        assert subscriber.wait_for(lambda: latest(subscriber, "stats").get("source_reopens", 0) >= 2, timeout=30)
        messages = [json.loads(m.payload) for m in subscriber.on(f"{TOPIC}/detections")]
        assert {m["source"]["kind"] for m in messages} == {"opencv"} and messages[0]["source"]["name"] == "door"
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert "stopped delivering frames" in stderr
    finally:
        daemon.kill()


def test_corrupt_models_fall_back_then_refuse(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    models = tmp_path / "models"
    shutil.copytree(model_dir, models)
    manifest = load_manifest(models)
    (models / manifest.variant("int8").file).write_bytes(b"truncated")
    subscriber = Subscriber(broker, f"{TOPIC}/detections")
    config = write_config(tmp_path / "config.yaml", broker.port, models, SAMPLES, model={"prefer": "auto"})
    daemon = start_daemon(config, "--max-frames", "2")
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 0, stderr
    assert "refusing variant int8" in stderr
    assert subscriber.wait_for(lambda: len(subscriber.messages) == 2, timeout=10)
    assert json.loads(subscriber.messages[0].payload)["model"]["variant"] != "int8"
    for variant in manifest.variants:
        (models / variant.file).write_bytes(b"truncated")
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=120)
    assert daemon.returncode == 2
    lines = [line for line in stderr.splitlines() if line.startswith("craft-edge: error:")]
    assert lines == [f"craft-edge: error: no usable CPU variant in {models} (missing, altered or below the "
                     "agreement floor)"], stderr
    assert "Traceback" not in stderr


def test_bad_frames_are_skipped_and_counted(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(SAMPLES / "coffee_01.jpg", frames / "a_good.jpg")
    (frames / "b_empty.jpg").write_bytes(b"")
    (frames / "c_text.png").write_text("not an image at all")
    cv2.imwrite(str(frames / "d_gray.png"), cv2.imread(str(SAMPLES / "rocket_03.jpg"), cv2.IMREAD_GRAYSCALE))
    rgba = cv2.cvtColor(cv2.imread(str(SAMPLES / "chelsea_02.jpg")), cv2.COLOR_BGR2BGRA)
    cv2.imwrite(str(frames / "e_alpha.png"), rgba)
    cv2.imwrite(str(frames / "f_tiny.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(frames / "g_huge.jpg"), np.full((6000, 8000, 3), 90, np.uint8))
    cv2.imwrite(str(frames / "h_16bit.png"), np.full((20, 20, 3), 40000, np.uint16))  # decoded as `detect` does
    subscriber = Subscriber(broker, f"{TOPIC}/#")
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, frames, source={"loop": False})
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 0, stderr  # a finite source ends, the daemon exits cleanly
    names = [json.loads(m.payload)["source"]["name"] for m in subscriber.on(f"{TOPIC}/detections")]
    assert names == ["a_good.jpg", "d_gray.png", "e_alpha.png", "g_huge.jpg", "h_16bit.png"]
    for bad in ("b_empty.jpg", "c_text.png", "f_tiny.png"):
        assert f"skipped a frame: {frames / bad}" in stderr
    assert "Traceback" not in stderr


def test_manifest_problems_are_one_line(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    models = tmp_path / "models"
    shutil.copytree(model_dir, models)
    config = write_config(tmp_path / "config.yaml", broker.port, models, SAMPLES)
    (models / "manifest.json").write_text('{"format_version": 1, "variants": [')
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 2
    assert stderr.strip().splitlines()[-1].startswith(f"craft-edge: error: {models}/manifest.json: not valid JSON")
    shutil.copy(model_dir / "manifest.json", models / "manifest.json")
    manifest = load_manifest(models)
    manifest.variant("int8").input.shape = [1, 480, 640, 3]  # lies about the file
    manifest.write(models)
    auto = write_config(tmp_path / "auto.yaml", broker.port, models, SAMPLES, model={"prefer": "auto"})
    subscriber = Subscriber(broker, f"{TOPIC}/detections")
    daemon = start_daemon(auto, "--max-frames", "1")  # auto selection meets the lie: that variant is refused
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 0, stderr
    assert "int8: the manifest says input [1, 480, 640, 3] but the file takes [1, 192, 256, 3]" in stderr
    assert subscriber.wait_for(lambda: len(subscriber.messages) == 1, timeout=10)
    assert json.loads(subscriber.messages[0].payload)["model"]["variant"] != "int8"
    daemon = start_daemon(config, "--max-frames", "1")  # forced, nothing to fall back to: one line, exit 2
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 2
    assert "int8: the manifest says input [1, 480, 640, 3] but the file takes [1, 192, 256, 3]" in stderr
