"""craft-edge detect / probe / bench, and the payload schema refusing what it should."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edge.commands.run import source_kind
from edge.detection.boxes import match_boxes
from edge.detection.tiling import CONTEXT, plan
from edge.messaging.payload import load_schema
from edge.sources.imageio import read_rgb
from tests import daemon_helpers
from tests.conftest import SAMPLES, TEST_TILE_SIZE, sample_words


def craft_edge(*args: str, state: Path) -> subprocess.CompletedProcess:
    return daemon_helpers.craft_edge(*args, "--state-dir", str(state), timeout=300)


@pytest.mark.conversion
def test_detect_json_lines_in_source_pixels(model_dir: Path, tmp_path: Path) -> None:
    images = [SAMPLES / "chelsea_02.jpg", SAMPLES / "rocket_07.jpg"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    result = craft_edge("detect", *map(str, images), str(broken), "--model", str(model_dir), "--variant", "int8",
                        "--json", "--draw", str(tmp_path / "drawn"), state=tmp_path)
    assert result.returncode == 1  # one image was unreadable
    assert f"craft-edge: {broken}: not a readable image" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(line["image"]).name for line in lines] == ["chelsea_02.jpg", "rocket_07.jpg"]
    for line in lines:
        truth = [np.array(w["poly"]) for w in sample_words(line["image"])]
        found = [np.array(b["points"]) for b in line["boxes"]]
        assert match_boxes(found, truth, min_iou=0.3).recall >= 0.5
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["chelsea_02_boxes.png", "rocket_07_boxes.png"]


@pytest.mark.conversion
def test_detect_read_gives_each_box_its_text(converted: Path, model_dir: Path, tmp_path: Path) -> None:
    image = SAMPLES / "coffee_05.jpg"  # Bread, Danger, 204, EXIT, Fresh, EXIT
    common = ("detect", str(image), "--model", str(converted), "--variant", "int8", "--tiling", "full", "--read")
    result = craft_edge(*common, "--json", "--draw", str(tmp_path / "drawn"), state=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    truth = sample_words(image.name)
    found = {}
    for box in line["boxes"]:
        assert set(box) == {"points", "score", "text", "text_score"} and 0 <= box["text_score"] <= 1
        for word in truth:
            if match_boxes([np.array(box["points"])], [np.array(word["poly"])], min_iou=0.5).matched:
                found.setdefault(word["text"], []).append(box["text"])
    assert found == {"Bread": ["Bread"], "Danger": ["Danger"], "204": ["204"], "EXIT": ["EXIT", "EXIT"],
                     "Fresh": ["Fresh"]}
    assert (tmp_path / "drawn" / "coffee_05_boxes.png").is_file()
    printed = craft_edge(*common, state=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[1].split() == ["EXIT", "Bread", "204", "EXIT", "Fresh", "Danger"]  # by lines
    without = craft_edge("detect", str(image), "--model", str(model_dir), "--read", state=tmp_path)
    assert without.returncode == 2
    bundle = model_dir.parent  # its index names the recognizer: before, the advice was to convert again
    assert without.stderr.strip().splitlines()[-1] == (
        f"craft-edge: error: --read: {model_dir} is one model folder of the bundle {bundle}; its text recognizer is "
        f"used only when {bundle} itself is the model folder (model.dir, --model)")


@pytest.mark.conversion
def test_probe_says_what_it_would_run_and_why(model_dir: Path, tmp_path: Path) -> None:
    result = craft_edge("probe", "--model", str(model_dir), state=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runtime: ai-edge-litert" in result.stdout
    assert "edge tpu: none found" in result.stdout
    assert "would use: " in result.stdout and "because fastest measured on this device" in result.stdout


@pytest.mark.conversion
def test_detect_tiles_with_the_context_asked_for(converted: Path, tmp_path: Path) -> None:
    image = SAMPLES / "chelsea_02.jpg"
    frame_hw = read_rgb(image).shape[:2]

    def tiles_run(*context: str) -> int:
        result = craft_edge("detect", str(image), "--model", str(converted), "--variant", "int8", "--tiling", "full",
                            *context, "--json", state=tmp_path)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["tiles_run"]

    assert tiles_run() == len(plan(frame_hw, TEST_TILE_SIZE, CONTEXT))
    assert tiles_run("--context", "64") == len(plan(frame_hw, TEST_TILE_SIZE, 64)) > len(plan(frame_hw, TEST_TILE_SIZE))
    too_wide = craft_edge("detect", str(image), "--model", str(converted), "--variant", "int8", "--tiling", "full",
                          "--context", "72", state=tmp_path)
    assert too_wide.returncode == 2
    assert too_wide.stderr.strip().splitlines()[-1] == (
        "craft-edge: error: --tiling full --context 72: tile 160 must be a multiple of 32 and at least 32 more than "
        "twice the context 72 (>= 0), so context <= 64")
    assert "Traceback" not in too_wide.stderr


def test_missing_model_folder_is_one_line(tmp_path: Path) -> None:
    result = craft_edge("detect", str(SAMPLES / "chelsea_02.jpg"), "--model", str(tmp_path / "none"), state=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"craft-edge: error: {tmp_path / 'none'}/manifest.json: cannot read "
                                                  "(No such file or directory)"]


def test_source_kind_guess(tmp_path: Path) -> None:
    assert source_kind("picamera2") == "picamera2"
    assert source_kind(str(SAMPLES)) == "files" and source_kind("/data/*.jpg") == "files"
    assert source_kind("frame.png") == "files"
    assert source_kind("0") == "opencv" and source_kind("rtsp://cam/1") == "opencv"
    assert source_kind("clip.mp4") == "opencv"


def test_schema_refuses_malformed_messages() -> None:
    schema = load_schema()
    good = {
        "schema": 3, "device_id": "porch", "source": {"kind": "files", "name": "a.jpg"},
        "frame": {"seq": 1, "timestamp": "2026-01-01T00:00:00.000+00:00", "width": 640, "height": 480},
        "model": {"variant": "int8", "backend": "cpu", "runtime": "ai-edge-litert", "input": [480, 640]},
        "tiling": {"mode": "adaptive", "scale": 1.0, "tile_input": [288, 288], "gating": True,
                   "tile_model": {"variant": "edgetpu", "backend": "edgetpu"}, "tiles_run": 3,
                   "tiles_skipped": 12},
        "recognition": {"variant": "dynamic", "words_read": 1, "words_reused": 0},
        "timing_ms": {"preprocess": 1.0, "inference": 2.0, "postprocess": 3.0, "recognition": 4.0, "total": 10.0},
        "boxes": [{"points": [[0, 0], [1, 0], [1, 1], [0, 1]], "score": 0.9, "text": "EXIT", "text_score": 0.97}],
        "text": "EXIT",
    }
    jsonschema.validate(good, schema)
    not_reading = {**copy.deepcopy(good), "recognition": None, "text": None}
    not_reading["boxes"][0].update(text=None, text_score=None)
    jsonschema.validate(not_reading, schema)
    for path, value in [(("schema",), 2), (("device_id",), "a/b"), (("model", "backend"), "gpu"),
                        (("tiling", "mode"), "some"), (("tiling", "tiles_run"), -1),
                        (("boxes",), [{"points": [[0, 0]], "score": 1}]), (("frame", "seq"), 0),
                        (("boxes",), [{"points": [[0, 0], [1, 0], [1, 1], [0, 1]], "score": 0.9}]),  # no text
                        (("recognition", "words_read"), -1), (("timing_ms",), {"preprocess": 1.0, "inference": 2.0,
                                                                               "postprocess": 3.0, "total": 6.0}),
                        (("text",), 5)]:
        bad = copy.deepcopy(good)
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_watch_uses_the_daemons_config_for_topic_and_broker(broker, tmp_path: Path) -> None:
    import sys
    import time

    import yaml

    from edge.detection.detector import Detection, Timing
    from edge.messaging.payload import TilingSettings, detection_message
    from tests.mqtt_helpers import Subscriber

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"device_id": "cam1", "mqtt": {
        "host": broker.host, "port": broker.port, "topic_prefix": "site/north/cam1"}}))
    watcher = subprocess.Popen([sys.executable, "-m", "edge.commands", "watch", "--config", str(config),
                                "--count", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=daemon_helpers.REPO)
    message = detection_message(device_id="cam1", source_kind="files", source_name="a.jpg", seq=7, captured=0.0,
                                frame_hw=(480, 640), variant="int8", backend="cpu", runtime="ai-edge-litert",
                                input_hw=(480, 640), tiling=TilingSettings("off", 1.0, 64, (480, 640), False),
                                tile_variant="int8", tile_backend="cpu",
                                detection=Detection([], Timing(1.0, 2.0, 3.0), tiles_run=1))
    publisher = Subscriber(broker, "unused/topic")
    try:
        deadline = time.monotonic() + 30
        while watcher.poll() is None and time.monotonic() < deadline:
            for _ in range(5):  # a burst: --count 1 must still print one message, not what arrives before it stops
                publisher.client.publish("site/north/cam1/detections", json.dumps(message), qos=1)
            time.sleep(0.5)
        out, err = watcher.communicate(timeout=10)
    finally:
        watcher.kill()
        publisher.close()
    assert watcher.returncode == 0, err
    assert "watching site/north/cam1/detections on 127.0.0.1" in err
    assert out.splitlines()[0].startswith("cam1 #7 ")
    assert len(out.splitlines()) == 1, out


def test_a_draw_folder_that_cannot_be_made_is_one_line_before_any_model_loads(tmp_path: Path) -> None:
    """A file where the folder should be escaped as FileExistsError once the models had loaded."""
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"mine")
    result = daemon_helpers.craft_edge("detect", str(SAMPLES / "chelsea_02.jpg"), "--model", str(tmp_path / "none"),
                                       "--draw", str(taken))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"craft-edge: error: --draw {taken}: cannot make the folder (File exists)"


def test_drawn_images_of_the_same_stem_do_not_overwrite_each_other() -> None:
    from edge.commands.detect import drawn_name

    taken: set[str] = set()
    names = [drawn_name(Path(p), taken) for p in ("a.jpg", "b/a.png", "a.jpg", "c.jpg")]
    assert names == ["a_boxes.png", "a_2_boxes.png", "a_3_boxes.png", "c_boxes.png"]
