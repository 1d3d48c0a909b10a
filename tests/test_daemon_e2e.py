"""craft-edge run with real parts: converted real weights, real mosquitto, real JSON on the wire."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from edge.detection.boxes import match_boxes
from edge.detection.tiling import plan
from edge.messaging.payload import load_schema
from tests.conftest import SAMPLES, TEST_SIZE, sample_words
from tests.daemon_helpers import start_daemon as start_configured
from tests.daemon_helpers import write_config
from tests.mqtt_helpers import Broker, Subscriber
from tests.test_gating import clip_frames

pytestmark = pytest.mark.conversion
REPO = Path(__file__).resolve().parent.parent
PREFIX = "craft-edge/e2e"


def start_daemon(broker: Broker, model_dir: Path, state: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "edge.commands", "run", "--config", str(REPO / "config.yaml"), "--model", str(model_dir),
        "--broker", broker.address, "--device-id", "e2e", "--source", str(SAMPLES), *extra,
    ]
    env = {**os.environ, "STATE_DIRECTORY": str(state), "NOTIFY_SOCKET": ""}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def detections(subscriber: Subscriber) -> list[dict]:
    return [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/detections")]


def valid_detections(subscriber: Subscriber, count: int) -> list[dict]:
    """The ``count`` detections messages once they have all arrived, each checked against the schema."""
    assert subscriber.wait_for(lambda: len(detections(subscriber)) == count, timeout=10)
    messages = detections(subscriber)
    schema = load_schema()
    for message in messages:
        jsonschema.validate(message, schema)
    return messages


def test_messages_arrive_valid_and_on_the_words(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    subscriber = Subscriber(broker, f"{PREFIX}/#")
    daemon = start_daemon(broker, model_dir, tmp_path, "--max-frames", "9")
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 0, stderr
    messages = valid_detections(subscriber, 9)
    assert [m["frame"]["seq"] for m in messages] == list(range(1, 10))
    assert all(m["model"]["input"] == list(TEST_SIZE) for m in messages)
    by_name = {m["source"]["name"]: m for m in messages}
    assert by_name["astronaut_00.jpg"]["frame"]["width"] == 640
    for name in ("astronaut_00.jpg", "coffee_01.jpg", "rocket_03.jpg"):
        truth = [np.array(w["poly"]) for w in sample_words(name)]
        found = [np.array(b["points"]) for b in by_name[name]["boxes"]]
        count = match_boxes(found, truth, min_iou=0.3)
        assert count.recall >= 0.6, (name, count)
    availability = [m.payload for m in subscriber.on(f"{PREFIX}/availability")]
    assert availability[0] == b"online" and availability[-1] == b"offline"
    status = json.loads(subscriber.on(f"{PREFIX}/status")[-1].payload)
    assert status["backend"] == "cpu" and status["variant"] == messages[0]["model"]["variant"]
    subscriber.close()


def test_sigterm_publishes_offline_and_exits_0(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    watcher = Subscriber(broker, f"{PREFIX}/detections")
    daemon = start_daemon(broker, model_dir, tmp_path, "--loop")
    try:
        assert watcher.wait_for(lambda: len(watcher.messages) >= 2, timeout=120), "no detections"
        late = Subscriber(broker, f"{PREFIX}/availability")  # joins late: sees the retained value
        assert late.wait_for(lambda: late.messages != [], timeout=10)
        assert late.messages[0].payload == b"online" and late.messages[0].retain
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        assert late.wait_for(lambda: late.messages[-1].payload == b"offline", timeout=10)
    finally:
        daemon.kill()
        daemon.communicate()
    again = Subscriber(broker, f"{PREFIX}/availability")
    assert again.wait_for(lambda: again.messages != [], timeout=10)
    assert again.messages[0].payload == b"offline" and again.messages[0].retain


def test_sigkill_delivers_the_last_will(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    subscriber = Subscriber(broker, f"{PREFIX}/#")
    daemon = start_daemon(broker, model_dir, tmp_path, "--loop")
    try:
        assert subscriber.wait_for(lambda: len(detections(subscriber)) >= 1, timeout=120), "no detections"
        assert subscriber.on(f"{PREFIX}/availability")[-1].payload == b"online"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        assert subscriber.wait_for(
            lambda: subscriber.on(f"{PREFIX}/availability")[-1].payload == b"offline", timeout=30
        ), "the last will was not delivered"
    finally:
        daemon.kill()
        daemon.communicate()


def test_daemon_detect_and_eval_give_the_same_boxes(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    """One pipeline: the daemon's messages, `detect --json` and `eval` agree box for box on the samples."""
    images = sorted(SAMPLES.glob("*.jpg"))
    subscriber = Subscriber(broker, f"{PREFIX}/detections")
    daemon = start_daemon(broker, model_dir, tmp_path, "--variant", "int8", "--max-frames", str(len(images)))
    _, stderr = daemon.communicate(timeout=300)
    assert daemon.returncode == 0, stderr
    assert subscriber.wait_for(lambda: len(subscriber.messages) == len(images), timeout=10)
    from_daemon = {m["source"]["name"]: m["boxes"] for m in map(json.loads, (s.payload for s in subscriber.messages))}

    detect = subprocess.run([sys.executable, "-m", "edge.commands", "detect", *map(str, images),
                             "--model", str(model_dir), "--variant", "int8", "--json", "--tiling", "adaptive",
                             "--state-dir", str(tmp_path / "cache")],  # the daemon's default mode
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert detect.returncode == 0, detect.stderr
    from_detect = {Path(line["image"]).name: line["boxes"] for line in map(json.loads, detect.stdout.splitlines())}
    assert from_detect == from_daemon
    assert sum(len(boxes) for boxes in from_detect.values()) > 20

    report = tmp_path / "eval.json"
    evaluate = subprocess.run([sys.executable, "-m", "edge.commands", "eval", "--model", str(model_dir),
                               "--variant", "int8", "--images", str(SAMPLES), "--gt", str(SAMPLES),
                               "--json", str(report), "--tiling", "adaptive", "--state-dir", str(tmp_path / "cache")],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
    assert evaluate.returncode == 0, evaluate.stderr
    per_image = {r["image"]: r["detections"] for r in json.loads(report.read_text())["variants"]["int8"]["images"]}
    assert {name: per_image[name] for name in from_detect} == {n: len(b) for n, b in from_detect.items()}


def test_adaptive_tiling_with_gating_on_the_clip(broker: Broker, model_dir: Path, tmp_path: Path) -> None:
    """The daemon on a video with ``tiling: adaptive`` and gating: schema-valid messages that say what
    ran, unchanged frames republished without inference, and the stats counting tiles."""
    frames = tmp_path / "frames"  # the clip's first 40 frames as files: a paced source, every frame processed
    frames.mkdir()
    for index, rgb in zip(range(40), clip_frames(), strict=False):
        cv2.imwrite(str(frames / f"frame_{index:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    config = write_config(tmp_path / "config.yaml", broker.port, model_dir, frames, source={"loop": False},
                          model={"tiling": "adaptive", "scale": 0.5, "context": 32}, gating={"enabled": True},
                          mqtt={"topic_prefix": PREFIX})
    subscriber = Subscriber(broker, f"{PREFIX}/#")
    daemon = start_configured(config)
    _, stderr = daemon.communicate(timeout=600)
    assert daemon.returncode == 0, stderr
    messages = valid_detections(subscriber, 40)
    tiling = [m["tiling"] for m in messages]
    assert all((t["mode"], t["scale"], t["gating"], t["tile_input"]) == ("adaptive", 0.5, True, list(TEST_SIZE))
               for t in tiling)
    per_frame = tiling[0]["tiles_run"] - 1 + tiling[0]["tiles_skipped"]  # the grid (the coarse pass is not a tile)
    assert per_frame > 1
    unchanged = [t for t in tiling if t["tiles_run"] == 0]
    assert len(unchanged) >= 20 and all(t["tiles_skipped"] == per_frame for t in unchanged)
    assert tiling[8]["tiles_run"] > 0  # "Taxi" appears in frame 8 (clip.json)
    assert [m["boxes"] for m in messages[1:8]] == [messages[0]["boxes"]] * 7  # nothing changed: republished
    stats = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/stats")]
    assert stats and stats[-1]["tiles_skipped"] > stats[-1]["tiles_run"] > 0
    status = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/status") if m.payload]
    assert status and status[0]["tiling"]["context"] == 32
    assert per_frame == len(plan((360, 640), TEST_SIZE, 32))  # the clip's 1280x720 frames at scale 0.5
    subscriber.close()
