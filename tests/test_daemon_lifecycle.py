"""The daemon as systemd sees it: READY/WATCHDOG/STATUS on a real socket, SIGHUP reload, stats,
and on_change publishing. Real weights, real mosquitto."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests import daemon_helpers
from tests.conftest import SAMPLES
from tests.daemon_helpers import NotifySocket
from tests.mqtt_helpers import Broker, Subscriber

pytestmark = pytest.mark.conversion


def write_config(path: Path, broker: Broker, model_dir: Path, source: Path, prefer: str = "fp16",
                 publish: str = "every_frame") -> Path:
    return daemon_helpers.write_config(path, broker.port, model_dir, source, device_id="life",
                                       model={"prefer": prefer}, mqtt={"publish": publish, "heartbeat_seconds": 3600})


def start(config: Path, env: dict[str, str]):
    return daemon_helpers.start_daemon(config, env=env)


def test_systemd_notifications_stats_and_sighup_reload(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    write_config(config, broker, model_dir, SAMPLES)
    notify = NotifySocket(tmp_path / "notify.sock")
    subscriber = Subscriber(broker, "craft-edge/life/#")
    daemon = start(config, {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"})
    try:
        assert notify.wait_for("READY=1"), notify.received
        assert notify.wait_for("WATCHDOG=1", timeout=30)
        assert notify.wait_for("STATUS=fp16 on cpu", timeout=30), notify.received  # sent after READY

        def stats() -> list[dict]:
            return [json.loads(m.payload) for m in subscriber.on("craft-edge/life/stats")]

        # fps needs two processed frames: wait for stats that have seen them
        assert subscriber.wait_for(lambda: any(s["frames"] >= 2 for s in stats()), timeout=30)
        latest = next(s for s in reversed(stats()) if s["frames"] >= 2)
        assert latest["variant"] == "fp16" and latest["runtime"].startswith("ai-edge-litert")
        assert latest["source_state"] == "ok" and latest["inference_ms"]["median"] > 0
        assert latest["tpu_state"] == "not used" and latest["fps"] > 0  # no edgetpu variant in the folder

        write_config(config, broker, model_dir, SAMPLES, prefer="int8")
        daemon.send_signal(signal.SIGHUP)
        assert notify.wait_for("RELOADING=1", timeout=30)

        def variants() -> set[str]:
            return {json.loads(m.payload)["model"]["variant"] for m in subscriber.on("craft-edge/life/detections")}

        assert subscriber.wait_for(lambda: "int8" in variants(), timeout=60), variants()
        status = json.loads(subscriber.on("craft-edge/life/status")[-1].payload)
        assert status["variant"] == "int8" and status["choice"] == "forced by model.prefer"

        config.write_text("mqtt: {port: nonsense}\n")  # a bad edit: logged, the running config kept
        daemon.send_signal(signal.SIGHUP)
        count = len(subscriber.on("craft-edge/life/detections"))
        assert subscriber.wait_for(lambda: len(subscriber.on("craft-edge/life/detections")) > count + 2, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0
        assert "reload failed, keeping the running configuration" in stderr and "mqtt.port" in stderr
        assert notify.wait_for("STOPPING=1", timeout=5)
    finally:
        daemon.kill()


def test_on_change_publishes_only_when_boxes_change(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    still = tmp_path / "still"
    still.mkdir()
    shutil.copy(SAMPLES / "coffee_01.jpg", still / "frame.jpg")  # the same view, frame after frame
    config = tmp_path / "config.yaml"
    write_config(config, broker, model_dir, still, prefer="int8", publish="on_change")
    subscriber = Subscriber(broker, "craft-edge/life/#")
    daemon = start(config, {"NOTIFY_SOCKET": ""})
    try:
        def frames() -> int:
            stats = subscriber.on("craft-edge/life/stats")
            return json.loads(stats[-1].payload)["frames"] if stats else 0

        assert subscriber.wait_for(lambda: frames() >= 5, timeout=120)
        assert len(subscriber.on("craft-edge/life/detections")) == 1
        shutil.copy(SAMPLES / "rocket_03.jpg", still / "frame.jpg")  # the view changes
        assert subscriber.wait_for(lambda: len(subscriber.on("craft-edge/life/detections")) == 2, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        daemon.kill()
        daemon.communicate()


def test_ready_with_the_broker_and_the_camera_down(model_dir: Path, tmp_path: Path) -> None:
    """READY=1 once config and model are up, so systemd does not kill a device whose broker is away."""
    config = daemon_helpers.write_config(tmp_path / "config.yaml", 1, model_dir, tmp_path / "no-frames-yet",
                                         device_id="life", source={"reopen_backoff_max_seconds": 1})
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = start(config, {"NOTIFY_SOCKET": str(notify.path)})
    try:
        assert notify.wait_for("READY=1"), notify.received
        assert notify.wait_for("source lost, broker disconnected", timeout=30), notify.received
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
    finally:
        daemon.kill()


def test_reload_with_a_bad_tls_file_keeps_running_and_says_why(broker: Broker, model_dir: Path,
                                                                tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    write_config(config, broker, model_dir, SAMPLES, prefer="int8")
    subscriber = Subscriber(broker, "craft-edge/life/detections")
    daemon = start(config, {"NOTIFY_SOCKET": ""})
    try:
        assert subscriber.wait_for(lambda: len(subscriber.messages) >= 3, timeout=120)
        garbage_ca = tmp_path / "garbage-ca.crt"
        garbage_ca.write_text("not a certificate\n")
        for ca_file in (tmp_path / "missing-ca.crt", garbage_ca):  # refused at load; refused by the TLS library
            daemon_helpers.write_config(config, broker.port, model_dir, SAMPLES, device_id="life",
                                        model={"prefer": "int8"}, mqtt={"tls": {"enabled": True,
                                                                                "ca_file": str(ca_file)}})
            daemon.send_signal(signal.SIGHUP)
            count = len(subscriber.messages)
            assert subscriber.wait_for(lambda count=count: len(subscriber.messages) > count + 3, timeout=60)
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
    finally:
        daemon.kill()
    failures = [line for line in stderr.splitlines() if "reload failed, keeping the running configuration" in line]
    assert len(failures) == 2, stderr
    assert f"mqtt.tls.ca_file {tmp_path / 'missing-ca.crt'}: cannot read (No such file or directory)" in failures[0]
    assert "mqtt: cannot use the new settings" in failures[1]
    assert "Traceback" not in stderr


def test_reload_keeps_the_running_model_when_its_settings_are_unchanged(model_dir: Path, tmp_path: Path) -> None:
    import copy

    from edge.config.settings import Config, ConfigError
    from edge.service.daemon import Daemon

    config = Config()
    config.model.dir, config.model.prefer, config.state_dir = str(model_dir), "int8", str(tmp_path / "state")
    config.source.kind, config.source.path = "files", str(SAMPLES)
    config.model.tiling = "full"
    daemon = Daemon(lambda: config)
    first = daemon._build(config)
    edited = copy.deepcopy(config)
    edited.detection.text_threshold = 0.8  # a reload that leaves the model alone
    edited.model.tiling, edited.model.scale = "adaptive", 0.5  # how tiles meet the frame: still the same models
    edited.model.context = 32
    second = daemon._build(edited, running=first)
    assert second.runners is first.runners and second.detector.thresholds.text == 0.8
    assert (second.detector.tiling_mode, second.detector.scale, second.detector.context) == ("adaptive", 0.5, 32)
    too_wide = copy.deepcopy(edited)
    too_wide.model.context = 88  # the 192x256 model's rows leave no 32 px core step around 88 px of context
    with pytest.raises(ConfigError) as refused:
        daemon._build(too_wide, running=second)
    assert str(refused.value) == ("model.tiling adaptive, model.context 88: tile 192 must be a multiple of 32 and at "
                                  "least 32 more than twice the context 88 (>= 0), so context <= 80")
    other_model = copy.deepcopy(edited)  # each reload parses a new Config
    other_model.model.prefer = "fp32"
    third = daemon._build(other_model, running=second)
    assert third.runners is not second.runners and third.runners.coarse.choice.variant == "fp32"
    untiled = copy.deepcopy(other_model)
    untiled.model.tiling = "off"  # no tile model to load: the models are built again, without it
    assert daemon._build(untiled, running=third).runners is not third.runners
