"""The README's first command and the paths people type: relative or absolute, from any folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import pytest

from edge.commands.run import source_kind, source_location
from edge.config.settings import load_config
from edge.messaging.payload import load_schema
from tests.conftest import SAMPLES
from tests.daemon_helpers import REPO
from tests.mqtt_helpers import free_port

DEMO = REPO / "scripts" / "demo.sh"


def run_from(folder: Path, *command: str, timeout: float, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=timeout)


@pytest.mark.conversion
@pytest.mark.converter
def test_conversion_with_relative_paths_from_another_folder(tmp_path: Path, weights: Path) -> None:
    """Every path relative to a working directory that is neither the repository nor the output."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "craft.pth").symlink_to(weights)
    for purpose, names in (("cal", ["astronaut_00.jpg", "coffee_01.jpg"]), ("val", ["rocket_03.jpg"])):
        (tmp_path / "in" / purpose).mkdir()
        for name in names:
            shutil.copy(SAMPLES / name, tmp_path / "in" / purpose / name)
    result = run_from(tmp_path, sys.executable, "-m", "converter.cli", "--out", "out/models",
                      "--weights", "in/craft.pth", "--calibration", "in/cal", "--validation", "in/val",
                      "--input-size", "64x96", "--tile-size", "160x160", "--variants", "fp32", "--no-recognizer",
                      "--threads", "2",
                      timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    index = json.loads((tmp_path / "out" / "models" / "manifest.json").read_text())
    assert index["models"] == {"coarse": "64x96", "tile": "160x160"}
    manifest = json.loads((tmp_path / "out" / "models" / "64x96" / "manifest.json").read_text())
    assert manifest["validation_images"] == ["rocket_03.jpg"]
    assert [v["name"] for v in manifest["variants"]] == ["fp32"]
    assert (tmp_path / "out" / "models" / "64x96" / manifest["variants"][0]["file"]).is_file()


def test_config_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"")
    config_file = folder / "config.yaml"
    config_file.write_text(
        "source: {kind: files, path: frames/*.jpg, device: clip.mp4}\n"
        "model: {dir: ../models/480x640}\nstate_dir: state\n"
        "mqtt: {tls: {enabled: true, ca_file: certs/ca.pem, cert_file: /abs/c.pem, key_file: k.pem}}\n"
    )
    for name in ("certs/ca.pem", "k.pem"):  # TLS files must exist and be readable at load
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text("-----BEGIN CERTIFICATE-----\n")
    absolute_cert = tmp_path / "c.pem"
    absolute_cert.write_text("-----BEGIN CERTIFICATE-----\n")
    config_file.write_text(config_file.read_text().replace("/abs/c.pem", str(absolute_cert)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../etc/config.yaml"))

    def same(path: str, expected: Path) -> bool:
        return Path(path).is_absolute() and os.path.normpath(path) == os.path.normpath(expected)

    assert same(config.source.path, folder / "frames" / "*.jpg")
    assert same(config.source.device, folder / "clip.mp4")
    assert same(config.model.dir, tmp_path / "models" / "480x640")
    assert same(config.state_dir, folder / "state")
    assert same(config.mqtt.tls.ca_file, folder / "certs" / "ca.pem")
    assert config.mqtt.tls.cert_file == str(absolute_cert)
    assert same(config.mqtt.tls.key_file, folder / "k.pem")


@pytest.mark.parametrize("device", ["0", "rtsp://camera.local/stream", "v4l2src ! videoconvert ! appsink"])
def test_camera_devices_stay_as_written(tmp_path: Path, device: str) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps({"source": {"kind": "opencv", "device": device}}))
    assert load_config(config_file).source.device == device


def test_command_line_sources_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "0").write_bytes(b"")  # a file named like a camera index does not turn the index into a path
    assert source_location("frames/*.jpg", source_kind("frames/*.jpg")) == str(tmp_path / "frames" / "*.jpg")
    assert source_location("clip.mp4", source_kind("clip.mp4")) == str(tmp_path / "clip.mp4")
    assert source_location("0", source_kind("0")) == "0"
    for url in ("rtsp://cam/1", "rtsp://cam.local/live?channel=1&subtype=0", "http://cam/snap[1].jpg"):
        assert (source_kind(url), source_location(url, source_kind(url))) == ("opencv", url)


@contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything: not an MQTT broker."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def demo(tmp_path: Path, models: Path, port: int, frames: int = 3) -> subprocess.CompletedProcess:
    env = {"CRAFT_EDGE_DEMO_PORT": str(port), "CRAFT_EDGE_DEMO_FRAMES": str(frames),
           "CRAFT_EDGE_DEMO_MODELS": str(models), "CRAFT_EDGE_DEMO_DIR": str(tmp_path / "demo")}
    return run_from(tmp_path, "bash", str(DEMO), timeout=300, env=env)


def test_demo_reuses_converted_models(tmp_path: Path, model_dir: Path) -> None:
    models = tmp_path / "models" / model_dir.name
    shutil.copytree(model_dir, models)
    before = {path.name: path.stat().st_mtime_ns for path in models.iterdir()}
    result = demo(tmp_path, models, free_port())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"reusing {models}" in result.stdout and "converting" not in result.stdout
    assert {path.name: path.stat().st_mtime_ns for path in models.iterdir()} == before
    message = json.loads((tmp_path / "demo" / "message.json").read_text())
    jsonschema.validate(message, load_schema())
    assert message["schema"] == 3 and message["device_id"] == "demo"
    assert message["frame"]["seq"] >= 1


def test_demo_refuses_a_port_held_by_something_else(tmp_path: Path, model_dir: Path) -> None:
    with silent_listener() as port:
        result = demo(tmp_path, model_dir, port)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"localhost:{port} accepted a connection but did not answer as an MQTT broker" in lines[0]
    assert not (tmp_path / "demo" / "daemon.log").exists()  # stopped before starting the daemon


def test_watch_gives_one_line_when_the_port_is_not_a_broker() -> None:
    with silent_listener() as port:
        result = subprocess.run([sys.executable, "-m", "edge.commands", "watch", "--broker", f"127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"craft-edge: error: 127.0.0.1:{port} accepted a connection but did not answer as an MQTT broker "
        "within 5 s (is something else listening on that port?)"]


def test_dot_dot_after_a_symlink_is_left_to_the_operating_system(tmp_path: Path) -> None:
    from edge.config.paths import absolute

    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "models").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real" / "sub")
    assert absolute("link/../models", tmp_path).is_dir()  # link/.. is real/, not tmp_path/
