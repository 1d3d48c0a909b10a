"""Reading with the converted recognizer on the device: load_reader, word crops of rotated words, the
``craft-edge read`` command, and bundles without a recognizer (no reading, detection unchanged)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.models.manifest import ManifestError, model_folders, recognizer_folder
from edge.models.recognizer import MIN_SAME_TEXT, load_reader
from edge.models.recognizer_manifest import load_recognizer_manifest
from edge.recognition.crops import word_crop
from edge.recognition.reader import Reader
from tests import daemon_helpers
from tests.conftest import (
    RECOGNIZER_FOLDER,
    SAMPLES,
    TEST_SIZE,
    TEST_TILE_SIZE,
    sample_words,
    size_name,
    unavailable,
)

pytestmark = pytest.mark.conversion
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@pytest.fixture(scope="module")
def reader(converted: Path) -> Reader:
    loaded = load_reader(converted, threads=2)
    assert loaded is not None
    return loaded


def sample_crops(name: str) -> tuple[list[np.ndarray], list[str]]:
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLES / name)), cv2.COLOR_BGR2RGB)
    words = [w for w in sample_words(name) if not w["ignore"]]
    return [word_crop(rgb, np.array(w["poly"])) for w in words], [w["text"] for w in words]


def test_the_automatic_choice_reads_like_pytorch_on_its_manifests_crops(converted: Path, reader: Reader) -> None:
    manifest = load_recognizer_manifest(converted / RECOGNIZER_FOLDER)
    chosen = next(v for v in manifest.variants if v.name == reader.variant)
    assert chosen.agreement is not None and chosen.agreement.same_text >= MIN_SAME_TEXT
    assert manifest.charset[:10] == "0123456789" and len(manifest.charset) == 96


def test_the_samples_words_are_read(reader: Reader) -> None:
    crops, texts = sample_crops("coffee_05.jpg")  # Bread, Danger, 204, EXIT, Fresh, EXIT
    readings = reader.read(crops)
    assert [r.text for r in readings] == texts
    assert all(0.5 < r.score <= 1.0 for r in readings)


def render_rotated(text: str, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``text`` drawn dark on light (DejaVu Sans Bold), turned by ``angle`` degrees about the picture's
    centre; its quad clockwise from the word's own top-left corner."""
    from PIL import Image as image_module
    from PIL import ImageDraw as draw_module
    from PIL import ImageFont as font_module

    font = font_module.truetype(str(FONT), 40)
    left, top, right, bottom = font.getbbox(text)
    canvas = image_module.new("RGB", (400, 400), (235, 230, 220))
    origin = (200 - (right - left) / 2, 200 - (bottom - top) / 2)
    draw_module.Draw(canvas).text((origin[0] - left, origin[1] - top), text, font=font, fill=(20, 30, 40))
    quad = np.array([[0, 0], [right - left, 0], [right - left, bottom - top], [0, bottom - top]], float) + origin
    turn = cv2.getRotationMatrix2D((200, 200), angle, 1.0)
    rgb = cv2.warpAffine(np.asarray(canvas), turn, (400, 400), borderValue=(235, 230, 220))
    return rgb, quad @ turn[:, :2].T + turn[:, 2]


@pytest.mark.parametrize("angle", [0, 35, 160, -100])
def test_a_rotated_word_is_cut_upright_and_read(reader: Reader, angle: float) -> None:
    rgb, quad = render_rotated("Station", angle)
    crop = word_crop(rgb, quad)
    assert crop.shape[1] > 3 * crop.shape[0]  # laid flat whatever the angle
    (reading,) = reader.read([crop])
    assert reading.text == "Station"


def test_a_rotated_crop_without_the_quads_order_is_not_read(reader: Reader) -> None:
    """The check above can fail: the same word cut from its quad starting at the wrong corner is upside down."""
    rgb, quad = render_rotated("Station", 35)
    (reading,) = reader.read([word_crop(rgb, np.roll(quad, 2, axis=0))])
    assert reading.text != "Station"


def test_read_json_lines_and_one_line_errors(converted: Path, tmp_path: Path) -> None:
    crops, texts = sample_crops("astronaut_00.jpg")
    paths = []
    for index, crop in enumerate(crops[:3]):
        paths.append(tmp_path / f"word{index}.png")
        cv2.imwrite(str(paths[-1]), crop)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    result = daemon_helpers.craft_edge("read", *map(str, paths), str(broken), "--model", str(converted),
                                       "--variant", "fp32", "--threads", "2", "--json", timeout=300)
    assert result.returncode == 1  # as detect's: the others are read, 2 is for a bad argument
    assert f"craft-edge: {broken}: not a readable image" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == list(map(str, paths))
    assert [line["text"] for line in lines] == texts[:3]
    assert all(set(line) == {"image", "text", "score"} and 0 < line["score"] <= 1 for line in lines)


def test_read_with_a_pattern_keeps_what_matches_and_says_null_for_the_rest(converted: Path, tmp_path: Path) -> None:
    crops, texts = sample_crops("astronaut_00.jpg")
    assert texts[0] == "PARKING" and texts[2] == "24h"
    paths = [tmp_path / "parking.png", tmp_path / "24h.png"]
    for path, crop in zip(paths, (crops[0], crops[2]), strict=True):
        cv2.imwrite(str(path), crop)
    result = daemon_helpers.craft_edge("read", *map(str, paths), "--model", str(converted), "--variant", "fp32",
                                       "--pattern", "^\\d+h$", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [None, "24h"]


def test_a_bad_pattern_is_one_line_before_any_model_is_read() -> None:
    result = daemon_helpers.craft_edge("read", "word.png", "--model", "m", "--pattern", "(", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "craft-edge: error: --pattern[0] '(' is not a regular expression " \
                                    "(missing ), unterminated subpattern at position 0)"


def bundle_without_recognizer(converted: Path, tmp_path: Path, format_version: int) -> Path:
    """The test bundle's detector folders under an index naming no recognizer (format 2: before reading)."""
    for size in (TEST_SIZE, TEST_TILE_SIZE):
        (tmp_path / size_name(size)).symlink_to(converted / size_name(size))
    index = json.loads((converted / "manifest.json").read_text())
    del index["models"]["recognizer"]
    index["format_version"] = format_version
    (tmp_path / "manifest.json").write_text(json.dumps(index))
    return tmp_path


@pytest.mark.parametrize("format_version", [2, 3])
def test_a_bundle_without_a_recognizer_detects_but_does_not_read(converted: Path, tmp_path: Path,
                                                                 format_version: int) -> None:
    bundle = bundle_without_recognizer(converted, tmp_path, format_version)
    assert model_folders(bundle).coarse == bundle / size_name(TEST_SIZE)
    assert recognizer_folder(bundle) is None
    assert load_reader(bundle) is None
    crop = tmp_path / "word.png"
    cv2.imwrite(str(crop), np.full((32, 96), 200, np.uint8))
    result = daemon_helpers.craft_edge("read", str(crop), "--model", str(bundle), timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (f"craft-edge: error: {bundle} has no text recognizer "
                                                      "(convert-for-device without --no-recognizer makes one)")


def test_the_recognizer_folder_itself_is_a_model_and_a_broken_one_is_refused(converted: Path,
                                                                              tmp_path: Path) -> None:
    folder = tmp_path / RECOGNIZER_FOLDER
    shutil.copytree(converted / RECOGNIZER_FOLDER, folder, ignore=shutil.ignore_patterns("*.onnx"))
    loaded = load_reader(folder, "dynamic")
    assert loaded is not None and loaded.variant == "dynamic"
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["widths"] = [256, 128]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=r"widths: \[256, 128\] is not an ascending list"):
        load_reader(folder)


def test_a_damaged_recognizer_manifest_costs_reading_not_the_daemon(converted: Path, tmp_path: Path) -> None:
    """A byte that is not UTF-8 (a damaged card) used to escape as UnicodeDecodeError: a traceback, exit 1,
    and systemd restarting the daemon for ever."""
    from edge.config.settings import parse_config
    from edge.service.reading import build_reading

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for entry in converted.iterdir():
        if entry.name != RECOGNIZER_FOLDER:
            (bundle / entry.name).symlink_to(entry)
    folder = bundle / RECOGNIZER_FOLDER
    shutil.copytree(converted / RECOGNIZER_FOLDER, folder, ignore=shutil.ignore_patterns("*.onnx"))
    damaged = bytearray((folder / "manifest.json").read_bytes())
    damaged[100] = 0xFF
    (folder / "manifest.json").write_bytes(bytes(damaged))
    reading = build_reading(parse_config(f"model: {{dir: {bundle}}}\nrecognition: {{enabled: true}}", "c"))
    assert reading.frames is None
    assert reading.state == f"unavailable: {folder / 'manifest.json'}: not UTF-8 text (byte 100: 0xff)"
    result = daemon_helpers.craft_edge("read", "word.png", "--model", str(bundle), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("not UTF-8 text (byte 100: 0xff)")


def test_a_recognizer_file_that_does_not_match_its_manifest_is_refused(converted: Path, tmp_path: Path) -> None:
    from edge.models.selection import NoUsableModel

    folder = tmp_path / RECOGNIZER_FOLDER
    shutil.copytree(converted / RECOGNIZER_FOLDER, folder, ignore=shutil.ignore_patterns("*.onnx"))
    manifest = load_recognizer_manifest(folder)
    target = folder / manifest.variants[0].file
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    with pytest.raises(NoUsableModel, match="does not match its manifest sha256"):
        load_reader(folder, manifest.variants[0].name)


class RuntimeWithoutNewOps:
    """The real runtime, except that it refuses dynamic-range files the way tflite-runtime 2.14 does: its
    FULLY_CONNECTED is older than the converter's."""

    def __init__(self, runtime: object) -> None:
        self.runtime = runtime
        self.name, self.version = "tflite-runtime", "2.14.0"

    def describe(self) -> str:
        return f"{self.name} {self.version}"

    def interpreter(self, model_path: Path, num_threads: int) -> object:
        if "dynamic" in model_path.name:
            raise ValueError("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version "
                             "of this builtin might be supported.")
        return self.runtime.interpreter(model_path, num_threads)  # type: ignore[attr-defined]


class FailsToRun:
    """An interpreter that loads and allocates like the real one but whose ``invoke`` fails."""

    def __init__(self, interpreter: object) -> None:
        self.interpreter = interpreter

    def __getattr__(self, name: str) -> object:
        return getattr(self.interpreter, name)

    def invoke(self) -> None:
        raise RuntimeError("Node number 12 (WHILE) failed to invoke.")


class RuntimeWhoseDynamicFailsToRun(RuntimeWithoutNewOps):
    def interpreter(self, model_path: Path, num_threads: int) -> object:
        loaded = self.runtime.interpreter(model_path, num_threads)  # type: ignore[attr-defined]
        return FailsToRun(loaded) if "dynamic" in model_path.name else loaded


@pytest.mark.parametrize(("runtime_type", "logged"), [
    (RuntimeWithoutNewOps, ("skipping recognizer dynamic", "FULLY_CONNECTED' version '12'")),
    # before, this failure escaped the choice and the daemon's start: a traceback and a restart loop
    (RuntimeWhoseDynamicFailsToRun,
     ("skipping recognizer dynamic: it loads but fails to run (RuntimeError: Node number 12",)),
])
def test_the_automatic_choice_skips_a_variant_the_runtime_cannot_load_or_run(
        converted: Path, caplog: pytest.LogCaptureFixture, runtime_type: type, logged: tuple[str, ...]) -> None:
    from edge.models.recognizer import choose
    from edge.models.runtime import find_runtime

    folder = converted / RECOGNIZER_FOLDER
    manifest = load_recognizer_manifest(folder)
    with caplog.at_level("ERROR", logger="edge.models.recognizer"):
        chosen, runner = choose(folder, manifest, runtime_type(find_runtime()), 2, None)
    assert chosen.name == "fp32"
    assert all(fragment in caplog.text for fragment in logged), caplog.text
    assert runner(np.full((1, runner.height, 128), 200, np.uint8)).shape[0] == 1


class RuntimeWithoutLoopOps(RuntimeWithoutNewOps):
    """A runtime older than the recognizer's loop ops refuses every variant."""

    def interpreter(self, model_path: Path, num_threads: int) -> object:
        raise ValueError("Didn't find op for builtin opcode 'DYNAMIC_UPDATE_SLICE' version '1'")


def test_when_no_variant_loads_the_error_gives_each_reason_and_the_runtime(converted: Path) -> None:
    """It said "missing, altered or reading unlike PyTorch": wrong when the runtime is too old for the files."""
    from edge.models.recognizer import choose
    from edge.models.runtime import find_runtime
    from edge.models.selection import NoUsableModel

    folder = converted / RECOGNIZER_FOLDER
    manifest = load_recognizer_manifest(folder)
    with pytest.raises(NoUsableModel) as caught:
        choose(folder, manifest, RuntimeWithoutLoopOps(find_runtime()), 2, None)
    message = str(caught.value)
    assert message.startswith(f"no usable recognizer variant in {folder} with tflite-runtime 2.14.0 (fp32: ")
    assert message.count("'DYNAMIC_UPDATE_SLICE' version '1'") == 2 and "dynamic: " in message


def test_the_runner_refuses_a_width_its_loops_cannot_run(converted: Path) -> None:
    """Under 8 px the LSTM loops would run no step, and the runtime crashes (segmentation fault)."""
    from edge.models.recognizer import load_variant
    from edge.models.runtime import find_runtime

    folder = converted / RECOGNIZER_FOLDER
    manifest = load_recognizer_manifest(folder)
    runner = load_variant(folder, manifest, manifest.variants[0], find_runtime(), 2)
    with pytest.raises(ValueError, match=r"the recognizer takes \(N, 64, W\), W >= 8"):
        runner(np.zeros((1, 64, 4), np.uint8))
    assert runner(np.zeros((1, 64, 8), np.uint8)).shape[1] == 1


def test_words_read_on_two_lanes_at_once_read_as_on_one(converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.models import recognizer
    from edge.models.runtime import find_runtime

    monkeypatch.setattr(recognizer, "default_threads", lambda: 2)  # two cores, whatever this machine has
    folder = converted / RECOGNIZER_FOLDER
    manifest = load_recognizer_manifest(folder)
    variant = next(v for v in manifest.variants if v.name == "fp32")
    one, two = (recognizer.load_variant(folder, manifest, variant, find_runtime(), threads) for threads in (1, 2))
    assert (one.lanes, two.lanes) == (1, 2)
    # what the automatic choice times: one of the interpreters two threads give
    assert recognizer.load_variant(folder, manifest, variant, find_runtime(), 2, one_lane=True).lanes == 1
    with pytest.raises(ValueError, match="at least one thread, not 0"):  # before any file is read
        recognizer.load_variant(folder, manifest, variant, find_runtime(), 0)
    crops = [crop for name in ("coffee_05.jpg", "astronaut_04.jpg") for crop in sample_crops(name)[0]] * 3
    alone = Reader(one, manifest.charset, "fp32").read(crops)
    assert Reader(two, manifest.charset, "fp32").read(crops) == alone
    assert len({r.text for r in alone}) > 3


def test_a_charset_that_does_not_fit_the_model_is_refused(converted: Path, tmp_path: Path) -> None:
    from edge.models.selection import NoUsableModel

    folder = tmp_path / RECOGNIZER_FOLDER
    shutil.copytree(converted / RECOGNIZER_FOLDER, folder, ignore=shutil.ignore_patterns("*.onnx"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["charset"] = manifest["charset"][:-2]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NoUsableModel, match=r"gives 97 classes but the manifest's charset has 94 characters"):
        load_reader(folder, "dynamic")


def test_bad_threads_are_one_line() -> None:
    result = daemon_helpers.craft_edge("read", "word.png", "--model", "m", "--threads", "1000000", timeout=60)
    assert result.returncode == 2 and "--threads: '1000000' must be 0 (one per core) to 64" in result.stderr


def test_the_old_index_check_refuses_the_new_format_in_one_line(converted: Path) -> None:
    """craft-edge before reading (bundle index format 2 only) meets a format 3 bundle: one line naming the
    version, no traceback (its check, from the commit before this format, run on the new index)."""
    old = subprocess.run(["git", "show", "56b2fa1:edge/models/manifest.py"], cwd=daemon_helpers.REPO,
                         capture_output=True, text=True)
    if old.returncode != 0:
        unavailable("not a git checkout with the history")
    module = types.ModuleType("old_manifest")
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    try:
        exec(compile(old.stdout, "old_manifest.py", "exec"), module.__dict__)
        with pytest.raises(module.ManifestError) as caught:
            module.model_folders(converted)
        # the detector folders themselves are unchanged, and still read by the older version
        assert module.load_manifest(converted / size_name(TEST_SIZE)).input_size == list(TEST_SIZE)
    finally:
        del sys.modules[module.__name__]
    assert str(caught.value) == (f"{converted / 'manifest.json'}: format_version 3, this craft-edge reads bundle "
                                 "indexes of format 2")


def test_the_daemon_beats_its_watchdog_for_every_word_read(converted: Path, tmp_path: Path) -> None:
    """A frame of many words on a slow CPU keeps the loop away past WatchdogSec: each word says it is alive."""
    from edge.config.settings import Config
    from edge.service.daemon import Daemon

    config = Config()
    config.model.dir, config.model.prefer, config.state_dir = str(converted), "int8", str(tmp_path / "state")
    config.source.kind, config.source.path = "files", str(SAMPLES)
    config.recognition.enabled, config.recognition.variant = True, "dynamic"
    daemon = Daemon(lambda: config)
    beats: list[int] = []
    daemon.watchdog.beat = lambda: beats.append(1)  # type: ignore[method-assign]
    parts = daemon._build(config)
    assert parts.reading.reader is not None
    runner = parts.reading.reader.model
    beats.clear()
    runner(np.full((3, runner.height, 128), 200, np.uint8))
    assert len(beats) == 3


class RecordingPublisher:
    """What the daemon's periodic step publishes: regions and statuses kept, stats dropped; connected."""

    def __init__(self) -> None:
        import threading

        self.connected = threading.Event()
        self.connected.set()
        self.connections = 1  # connected once
        self.regions: list[tuple[str, dict]] = []
        self.statuses: list[dict] = []

    def publish_region(self, name: str, payload: dict) -> bool:
        self.regions.append((name, payload))
        return True

    def publish_status(self, status: dict) -> None:
        self.statuses.append(status)

    def send_status(self) -> None:
        pass  # each status is recorded as it is made

    def publish_stats(self, stats: dict) -> None:
        pass


def daemon_reading_a_region(converted: Path, tmp_path: Path) -> tuple:
    """A daemon built (not run) on the sample frames, reading, with one region: (daemon, its parts)."""
    from edge.config.settings import parse_config
    from edge.service.daemon import Daemon

    config = parse_config("recognition: {enabled: true, variant: dynamic}\n"
                          "regions: [{name: meter, rect: [0, 0, 99, 99]}]", "c")
    config.model.dir, config.model.prefer, config.state_dir = str(converted), "int8", str(tmp_path / "state")
    config.source.kind, config.source.path = "files", str(SAMPLES)
    daemon = Daemon(lambda: config)
    return daemon, daemon._build(config)


def test_the_daemon_says_its_regions_are_stale_when_no_frame_comes(converted: Path, tmp_path: Path) -> None:
    """A camera lost (or sending only bad frames) while reading works: before, each region's last retained
    reading stayed and looked current. The daemon's own clock of frames taken decides, at its periodic step."""
    import time

    from edge.service.reading import NO_FRAME_SECONDS

    daemon, parts = daemon_reading_a_region(converted, tmp_path)
    publisher = RecordingPublisher()
    sent, statuses = publisher.regions, publisher.statuses
    daemon._periodic(parts, publisher)  # type: ignore[arg-type]
    assert sent == [] and len(statuses) == 1  # frames are due: the regions' readings hold
    daemon._frame_at = time.monotonic() - NO_FRAME_SECONDS - 1
    daemon._periodic(parts, publisher)  # type: ignore[arg-type]
    parts.capture.status.detail = "another error each reopen"  # changes the reason's text, not the state
    daemon._periodic(parts, publisher)  # type: ignore[arg-type]
    assert [(name, payload["text"]) for name, payload in sent] == [("meter", None)]  # once
    assert sent[0][1]["unavailable"] == "unavailable: no frame for over 30 s (source starting)"
    assert len(statuses) == 2 and statuses[1]["recognition"]["regions_stale"] == sent[0][1]["unavailable"]


def test_the_daemon_tries_reading_again_after_it_gave_up(converted: Path, tmp_path: Path) -> None:
    """Before, reading given up after failed frames stayed off until SIGHUP; the periodic step retries it."""
    import time

    from edge.service.reading import RETRY_SECONDS

    daemon, parts = daemon_reading_a_region(converted, tmp_path)
    publisher = RecordingPublisher()
    parts.reading.frames, parts.reading.state = None, "unavailable: failed 3 frames in a row: boom"
    parts.reading.given_up_at = time.monotonic() - RETRY_SECONDS + 60  # not yet
    daemon._periodic(parts, publisher)  # type: ignore[arg-type]
    assert parts.reading.frames is None and publisher.statuses[-1]["recognition"]["state"].startswith("unavailable")
    parts.reading.given_up_at -= 61
    daemon._periodic(parts, publisher)  # type: ignore[arg-type]
    assert parts.reading.frames is not None and publisher.statuses[-1]["recognition"]["state"] == "reading"


def test_a_frame_slower_than_the_stale_limit_does_not_make_the_regions_stale(
        converted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock counted from when a frame was taken: one that took longer to process than the limit (a slow
    CPU, many words) made every region say unavailable right after its own reading, on every frame."""
    import time

    daemon, parts = daemon_reading_a_region(converted, tmp_path)
    monkeypatch.setattr("edge.service.reading.NO_FRAME_SECONDS", 0.2)
    monkeypatch.setattr(daemon, "_process", lambda frame, parts: time.sleep(0.4))
    publisher = RecordingPublisher()
    daemon._on_frame(None, parts, publisher)  # type: ignore[arg-type]
    assert publisher.regions == []
