"""The daemon left alone for a year: each way it used to stop working unattended, as a real process
with real mosquitto (a damaged spool, an empty host, a starved watchdog, a seq handed out twice, a
stuck camera driver, a SIGHUP during a long start, a password nobody sends)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from tests.daemon_helpers import NotifySocket, seqs, start_daemon, write_config
from tests.mqtt_helpers import Broker, Received, Subscriber

pytestmark = pytest.mark.conversion
TOPIC = "craft-edge/test"


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def test_a_damaged_spool_is_kept_aside_and_seq_goes_on_above_anything_issued(tmp_path: Path, model_dir: Path,
                                                                              broker: Broker) -> None:
    """Random bytes as the spool used to be a traceback and exit 1 on every start (systemd: forever)."""
    state = tmp_path / "state"
    state.mkdir()
    garbage = os.urandom(8192)
    (state / "spool.sqlite3").write_bytes(garbage)
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES)
    subscriber = Subscriber(broker, f"{TOPIC}/#")
    started_ms = int(time.time() * 1000)
    daemon = start_daemon(config, "--max-frames", "3")
    _, stderr = daemon.communicate(timeout=180)
    assert daemon.returncode == 0, stderr
    assert "Traceback" not in stderr
    kept = list(state.glob("spool.sqlite3.damaged-*"))
    assert [p.read_bytes() for p in kept] == [garbage]  # kept aside whole, never deleted
    assert f"is damaged (file is not a database): kept aside as {kept[0]}" in stderr
    assert subscriber.wait_for(lambda: len(subscriber.on(f"{TOPIC}/detections")) == 3, timeout=30)
    received = seqs(subscriber.on(f"{TOPIC}/detections"))
    assert min(received) > started_ms  # no record of the old seqs survived: above any frame count there was
    status = json.loads(subscriber.on(f"{TOPIC}/status")[-1].payload)
    assert status["spool"] == {"state": "ok", "detail": "", "kept_aside": str(kept[0])}
    subscriber.close()


def arrived(subscriber: Subscriber, after: int, topic: str) -> list[Received]:
    """What arrived on ``TOPIC/topic`` since the subscriber's first ``after`` messages (not clearings)."""
    return [m for m in subscriber.messages[after:] if m.topic == f"{TOPIC}/{topic}" and m.payload]


def test_seq_is_never_given_twice_across_restarts_with_on_change_and_snapshots(tmp_path: Path, model_dir: Path,
                                                                                broker: Broker) -> None:
    """With ``publish: on_change`` only the first frame's detections are spooled, but every frame's seq
    leaves in a snapshot: a restart used to start again above the spooled one."""
    still = tmp_path / "still"
    still.mkdir()
    (still / "frame.jpg").write_bytes((SAMPLES / "coffee_01.jpg").read_bytes())
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, still, mqtt={
        "publish": "on_change", "heartbeat_seconds": 3600,
        "snapshot": {"enabled": True, "interval_seconds": 0.1, "min_interval_seconds": 0.1}})
    subscriber = Subscriber(broker, f"{TOPIC}/#")
    issued: list[int] = []
    for run in (1, 2):
        count = len(subscriber.messages)
        daemon = start_daemon(config, "--max-frames", "6")
        _, stderr = daemon.communicate(timeout=180)
        assert daemon.returncode == 0, stderr
        published = int(re.search(r"snapshots (\d+) published", stderr).group(1))  # from its exit line
        # every snapshot it handed to paho (QoS 0; on loopback each arrives), and its detection
        assert subscriber.wait_for(lambda count=count, published=published: len(
            arrived(subscriber, count, "snapshot")) >= published and arrived(subscriber, count, "detections"), 30)
        detections = seqs(arrived(subscriber, count, "detections"))
        snapshots = [int(m.properties["seq"]) for m in arrived(subscriber, count, "snapshot")]
        assert len(detections) == 1 and snapshots, (run, detections, snapshots)
        if run == 2:
            assert min(detections + snapshots) > max(issued), (issued, detections, snapshots)
        issued += detections + snapshots
    subscriber.close()


def test_an_empty_mqtt_host_is_one_line_at_start_and_a_refused_reload(tmp_path: Path, model_dir: Path,
                                                                       broker: Broker) -> None:
    """It passed validation: at start paho's ValueError (exit 1, a restart loop); on SIGHUP the old
    publisher was stopped before the new one raised, and the running daemon died."""
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, mqtt={"host": ""})
    daemon = start_daemon(config)
    _, stderr = daemon.communicate(timeout=120)
    assert daemon.returncode == 2
    assert one_line_error(stderr) == (f"craft-edge: error: {config}: mqtt.host '' must be a host name or address, "
                                      "non-empty, without spaces")

    write_config(config, broker.port, model_dir, SAMPLES)
    subscriber = Subscriber(broker, f"{TOPIC}/detections")
    daemon = start_daemon(config)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= 2, timeout=120)
        write_config(config, broker.port, model_dir, SAMPLES, mqtt={"host": ""})
        daemon.send_signal(signal.SIGHUP)
        count = len(subscriber.messages)
        assert subscriber.wait_for(lambda: len(subscriber.messages) > count + 3, timeout=60)  # still publishing
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr
        assert "reload failed, keeping the running configuration" in stderr and "mqtt.host ''" in stderr
    finally:
        daemon.kill()
        subscriber.close()


def test_the_watchdog_says_the_loop_is_alive_at_a_slow_frame_rate(tmp_path: Path, model_dir: Path,
                                                                   broker: Broker) -> None:
    """``source.max_fps: 0.1`` is one frame in 10 s: WATCHDOG=1 used to come only after a frame."""
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, source={"max_fps": 0.1})
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = start_daemon(config, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"})
    try:
        assert notify.wait_for("READY=1", timeout=120), notify.received
        ready = max(t for t, message in list(notify.log) if message == "READY=1")
        notify.collect(8)
        pings = [t for t, message in list(notify.log)
                 if message == "WATCHDOG=1" and t > ready]
        gaps = [b - a for a, b in zip([ready, *pings], pings, strict=False)]
        assert len(pings) >= 6 and max(gaps) < 3.0, gaps  # every second, frames or not (one may be late)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)


def test_a_capture_stuck_in_the_driver_ends_the_daemon_for_a_restart(tmp_path: Path, model_dir: Path) -> None:
    """Opening a FIFO nobody writes blocks inside OpenCV for ever, like a hung camera driver: the loop
    is alive, the capture is not, and only a new process can get it back."""
    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    config = write_config(tmp_path / "config.yaml", 1, model_dir, SAMPLES,
                          source={"kind": "opencv", "device": str(fifo), "stuck_seconds": 5})
    daemon = start_daemon(config)
    try:
        _, stderr = daemon.communicate(timeout=120)
    finally:
        daemon.kill()
    assert daemon.returncode == 1, stderr
    assert "capture stuck in the source's open for" in stderr and "Traceback" not in stderr


def test_sighup_during_a_long_first_start_is_a_reload_not_the_end(tmp_path: Path, model_dir: Path,
                                                                  broker: Broker) -> None:
    """The first start measures every CPU variant before READY=1; SIGHUP's default action is to end the
    process, and the handlers used to be installed only after that."""
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES, model={"prefer": "auto"})
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = start_daemon(config, env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        # sent from within the first start's model loading, after the handlers are installed
        assert notify.wait_for("EXTEND_TIMEOUT_USEC", timeout=60), notify.received
        assert not any("READY=1" in m for m in notify.received)
        daemon.send_signal(signal.SIGHUP)  # while the variants are measured
        assert notify.wait_for("READY=1", timeout=120), (daemon.poll(), notify.received)
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr


def test_a_password_without_a_user_name_is_refused(tmp_path: Path, model_dir: Path, broker: Broker) -> None:
    """MQTT sends a password only with a user name: it used to be dropped silently."""
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES)
    daemon = start_daemon(config, env={"CRAFT_EDGE_MQTT_PASSWORD": "s3cret"})
    _, stderr = daemon.communicate(timeout=120)
    assert daemon.returncode == 2
    assert one_line_error(stderr) == ("craft-edge: error: mqtt: cannot use the settings (a password is set "
                                      "(CRAFT_EDGE_MQTT_PASSWORD) but mqtt.username is empty: MQTT sends a "
                                      "password only with a user name)")


def test_a_reload_that_moves_the_state_directory_is_refused_in_one_line(tmp_path: Path, model_dir: Path,
                                                                        broker: Broker) -> None:
    """``state_dir`` holds the spool and the lock: a reload used to ignore a new one silently."""
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, SAMPLES)
    subscriber = Subscriber(broker, f"{TOPIC}/detections")
    daemon = start_daemon(config)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= 2, timeout=120)
        write_config(config, broker.port, model_dir, SAMPLES, state_dir=str(tmp_path / "elsewhere"))
        daemon.send_signal(signal.SIGHUP)
        count = len(subscriber.messages)
        assert subscriber.wait_for(lambda: len(subscriber.messages) > count + 3, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        daemon.kill()
        subscriber.close()
    assert daemon.returncode == 0, stderr
    assert (f"reload failed, keeping the running configuration: state_dir: {tmp_path / 'elsewhere'} differs from "
            f"the running {tmp_path / 'state'}; moving the spool and the lock takes a restart") in stderr
    assert not (tmp_path / "elsewhere").exists()
