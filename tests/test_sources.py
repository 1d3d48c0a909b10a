"""Frame sources: format handling, file sources, OpenCV targets, the latest-frame slot, reopening."""

from __future__ import annotations

import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from edge.config.settings import SourceConfig
from edge.sources import BadFrame, Frame, SourceLost, capture, make_source
from edge.sources import picamera2 as picam
from edge.sources.capture import CaptureThread, LatestFrame
from edge.sources.files import FileSource
from edge.sources.frames import as_rgb_frame
from edge.sources.opencv import OpenCvSource, capture_target
from tests.conftest import SAMPLES

RED_RGB = (255, 0, 0)


@pytest.mark.parametrize(("fmt", "pixel"), [
    ("RGB888", (0, 0, 255)), ("BGR888", (255, 0, 0)), ("XRGB8888", (0, 0, 255, 255)), ("XBGR8888", (255, 0, 0, 255)),
])
def test_picamera2_byte_orders_and_stride(fmt: str, pixel: tuple) -> None:
    """A red pixel as picamera2 lays each format out in memory, in rows padded to 64 px."""
    array = np.zeros((4, 64, len(pixel)), np.uint8)
    array[:, :48] = pixel
    array[:, 48:] = 7  # stride padding
    rgb = picam.to_rgb(array, fmt, width=48)
    assert rgb.shape == (4, 48, 3) and rgb.flags.c_contiguous
    assert tuple(rgb[0, 0]) == RED_RGB and (rgb != 7).all()


def test_picamera2_source_with_a_standin_camera() -> None:
    class Camera:
        def create_video_configuration(self, main: dict) -> dict:
            return main

        def configure(self, config: dict) -> None:
            self.config = config

        def start(self) -> None:
            pass

        def capture_array(self, stream: str) -> np.ndarray:
            return np.zeros((self.config["size"][1], 64, 3), np.uint8)

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    source = picam.Picamera2Source("porch", 40, 30, "RGB888", camera_factory=Camera)
    source.open()
    frame = source.read()
    assert frame.rgb.shape == (30, 40, 3) and frame.name == "porch"
    source.close()


def test_picamera2_missing_is_a_lost_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on a machine without it, also on a Pi that has it
    source = make_source(SourceConfig(kind="picamera2"))
    with pytest.raises(SourceLost, match="picamera2 is not installed"):
        source.open()


class BrokenCamera:
    """A stand-in Pi camera: ``configure`` or ``start`` fails, or ``capture_array`` never returns."""

    instances: ClassVar[list[BrokenCamera]] = []

    def __init__(self, fail_in: str = "", stall: threading.Event | None = None) -> None:
        self.fail_in = fail_in
        self.stall = stall
        self.closed = False
        BrokenCamera.instances.append(self)

    def create_video_configuration(self, main: dict) -> dict:
        return main

    def configure(self, config: dict) -> None:
        if self.fail_in == "configure":
            raise RuntimeError("Failed to configure camera")

    def start(self) -> None:
        if self.fail_in == "start":
            raise RuntimeError("Camera in Acquired state trying start()")

    def capture_array(self, stream: str) -> np.ndarray:
        assert self.stall is not None
        self.stall.wait()  # a stalled camera: libcamera never completes the request
        return np.zeros((30, 64, 3), np.uint8)

    def stop(self) -> None:
        if self.fail_in:
            raise RuntimeError("camera was not started")

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fail_in", ["configure", "start"])
def test_picamera2_is_closed_when_it_cannot_start(fail_in: str) -> None:
    BrokenCamera.instances.clear()
    source = picam.Picamera2Source("porch", 40, 30, "RGB888", camera_factory=lambda: BrokenCamera(fail_in))
    for _ in range(2):  # a reopen finds the camera released, not still held by the failed attempt
        with pytest.raises(SourceLost, match="cannot start the Pi camera"):
            source.open()
    assert [camera.closed for camera in BrokenCamera.instances] == [True, True]


def test_a_stalled_picamera2_is_a_lost_source() -> None:
    stall = threading.Event()
    source = picam.Picamera2Source("porch", 40, 30, "RGB888", camera_factory=lambda: BrokenCamera(stall=stall),
                                   capture_timeout=0.2)
    source.open()
    try:
        with pytest.raises(SourceLost, match=r"gave no frame in 0.2 s \(stalled\)"):
            source.read()
    finally:
        stall.set()
        source.close()


@pytest.mark.parametrize(("image", "message"), [
    (None, "empty frame"), (np.zeros((0, 5, 3), np.uint8), "empty frame"),
    (np.zeros((4, 4, 3), np.uint8), "smaller than"), (np.zeros((20, 20, 2), np.uint8), "not an image"),
    (np.zeros((20, 20, 3), np.float32), "dtype float32"),
])
def test_bad_frames_are_refused(image: np.ndarray | None, message: str) -> None:
    with pytest.raises(BadFrame, match=message):
        as_rgb_frame(image)


def test_grayscale_and_bgra_become_rgb() -> None:
    assert as_rgb_frame(np.full((10, 12), 9, np.uint8)).shape == (10, 12, 3)
    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., 2] = 255
    assert tuple(as_rgb_frame(bgra)[0, 0]) == RED_RGB


def test_file_source_lists_folders_and_globs_and_loops(tmp_path: Path) -> None:
    source = FileSource(str(SAMPLES / "coffee_*.jpg"), loop=True)
    source.open()
    names = [source.read().name for _ in range(3)]
    assert names == ["coffee_01.jpg", "coffee_05.jpg", "coffee_01.jpg"]
    once = FileSource(str(SAMPLES / "skimage_text.png"))
    once.open()
    assert once.read().rgb.shape == (172, 448, 3) and once.read() is None
    with pytest.raises(SourceLost, match="no image files"):
        FileSource(str(tmp_path / "*.jpg")).open()


def test_file_source_skips_a_broken_image(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((20, 20, 3), np.uint8))
    source = FileSource(str(tmp_path))
    source.open()
    with pytest.raises(BadFrame, match=r"a\.jpg: not a readable image"):
        source.read()
    assert source.read().name == "b.png"


def test_file_source_skips_a_file_it_cannot_read_or_that_is_gone_and_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable file was a lost source: reopened, the folder listed again from its first file, so the
    files after it were never read (and, without loop, the run never ended)."""
    for name in ("a.png", "b.png", "c.png", "d.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((20, 20, 3), np.uint8))
    real_fromfile = np.fromfile

    def fromfile(path: Path, dtype: type) -> np.ndarray:
        if Path(path).name == "b.png":
            raise PermissionError(13, "Permission denied", str(path))
        return real_fromfile(path, dtype=dtype)

    monkeypatch.setattr(np, "fromfile", fromfile)
    source = FileSource(str(tmp_path))
    source.open()
    (tmp_path / "c.png").unlink()  # gone since the listing
    assert source.read().name == "a.png"
    with pytest.raises(BadFrame, match=r"b\.png: cannot read \(Permission denied\)"):
        source.read()
    with pytest.raises(BadFrame, match=r"c\.png: file not found"):
        source.read()
    assert source.read().name == "d.png" and source.read() is None


def test_opencv_targets_and_a_video_file(tmp_path: Path) -> None:
    assert capture_target("0") == 0 and capture_target("/dev/video2") == "/dev/video2"
    assert capture_target("rtsp://cam/stream") == "rtsp://cam/stream"
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 200, np.uint8))
    writer.release()
    source = OpenCvSource(str(video), "clip", 64, 48)
    source.open()
    started = time.monotonic()
    assert source.read().rgb.shape == (48, 64, 3)
    source.read()
    source.read()
    assert time.monotonic() - started >= 0.39  # played at the file's 5 fps, not as fast as it decodes
    with pytest.raises(SourceLost, match="stopped delivering"):
        source.read()
    with pytest.raises(SourceLost, match="cannot open"):
        OpenCvSource(str(tmp_path / "missing.avi"), "x", 64, 48).open()


def frame(name: str) -> Frame:
    return Frame(rgb=np.zeros((8, 8, 3), np.uint8), name=name, captured=time.time())


def test_latest_frame_slot_drops_stale_frames() -> None:
    slot = LatestFrame()
    for name in ("a", "b", "c"):
        slot.put(frame(name))
    assert slot.take(0.1).name == "c" and slot.dropped == 2
    assert slot.take(0.05) is None


class FlakySource:
    """Fails to open twice, delivers two frames, loses the stream, then delivers again."""

    kind = "files"

    def __init__(self) -> None:
        self.opens = 0
        self.reads = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens <= 2:
            raise SourceLost("camera unplugged")

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == 3:
            raise SourceLost("stream dropped")
        time.sleep(0.01)
        return frame(f"f{self.reads}")

    def close(self) -> None:
        pass


def frames_captured(thread: CaptureThread, slot: LatestFrame, count: int, timeout: float) -> list[str]:
    """Run ``thread`` until ``count`` frames came through ``slot`` (or ``timeout``); their names."""
    thread.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        got = slot.take(0.2)
        if got is not None:
            seen.append(got.name)
    thread.stop_event.set()
    thread.join(5)
    return seen


def test_capture_reopens_a_lost_source_with_backoff() -> None:
    slot, stop, source = LatestFrame(), threading.Event(), FlakySource()
    thread = CaptureThread(source, slot, stop, backoff_max=0.2)
    seen = frames_captured(thread, slot, 4, timeout=15)
    assert len(seen) >= 4, seen
    assert source.opens == 4  # two failures, first success, reopen after the drop
    assert thread.status.reopens == 3 and thread.status.state == "ok"


class LoopingVideo:
    """Delivers one frame, then ends, reopening at once: a short video file on a loop."""

    kind = "opencv"

    def __init__(self) -> None:
        self.delivered = False

    def open(self) -> None:
        self.delivered = False

    def read(self) -> Frame | None:
        if self.delivered:
            raise SourceLost("video source 'clip.avi' stopped delivering frames")
        self.delivered = True
        return frame("clip")

    def close(self) -> None:
        pass


def test_a_source_lost_and_back_every_frame_logs_little(caplog: pytest.LogCaptureFixture) -> None:
    slot, stop = LatestFrame(), threading.Event()
    thread = CaptureThread(LoopingVideo(), slot, stop, backoff_max=1)
    with caplog.at_level("INFO", logger="edge.sources.capture"):
        seen = frames_captured(thread, slot, 50, timeout=10)
    assert len(seen) == 50 and thread.status.reopens >= 49
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    back = [r for r in caplog.records if "back after" in r.getMessage()]
    assert 1 <= len(lost) <= capture.LOG_LINES_PER_MINUTE and 1 <= len(back) <= capture.LOG_LINES_PER_MINUTE


class GarbageSource:
    """A camera that only ever sends bad frames."""

    kind = "opencv"

    def __init__(self) -> None:
        self.reads = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        self.reads += 1
        raise BadFrame(f"frame {self.reads}: empty frame")

    def close(self) -> None:
        pass


def test_a_stream_of_bad_frames_backs_off_and_logs_little(caplog: pytest.LogCaptureFixture) -> None:
    slot, stop, source = LatestFrame(), threading.Event(), GarbageSource()
    thread = CaptureThread(source, slot, stop, backoff_max=1)
    with caplog.at_level("WARNING", logger="edge.sources.capture"):
        thread.start()
        time.sleep(3)
        stop.set()
        thread.join(5)
    lines = [r for r in caplog.records if "skipped a frame" in r.getMessage()]
    assert thread.status.bad_frames == source.reads
    assert source.reads < 30  # with backoff to 1 s; without, hundreds of thousands spin a core
    assert len(lines) <= 10 and lines[0].getMessage() == "skipped a frame: frame 1: empty frame"


def test_held_back_lines_are_counted() -> None:
    now = [0.0]
    limited = capture.RateLimitedLog(2, clock=lambda: now[0])
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    capture.log.addHandler(handler)
    try:
        for second in (0, 1, 2, 3, 61):
            now[0] = second
            limited.warning("skipped a frame: %s", second)
    finally:
        capture.log.removeHandler(handler)
    assert records == ["skipped a frame: 0", "skipped a frame: 1", "skipped a frame: 61 (2 similar lines held back)"]


class DeadStream:
    """Opens fine, then fails every first read (an RTSP URL that answers but sends nothing)."""

    kind = "opencv"
    paced = False

    def __init__(self) -> None:
        self.opens = 0

    def open(self) -> None:
        self.opens += 1

    def read(self) -> Frame | None:
        raise SourceLost("video source stopped delivering frames")

    def close(self) -> None:
        pass


def test_a_source_that_opens_but_never_reads_is_reopened_with_backoff() -> None:
    slot, stop, source = LatestFrame(), threading.Event(), DeadStream()
    thread = CaptureThread(source, slot, stop, backoff_max=0.4)
    thread.start()
    time.sleep(2.0)
    stop.set()
    thread.join(5)
    # waits of 0.5 s (capped at 0.4) between reopens: a handful in 2 s, not thousands
    assert 2 <= source.opens <= 8, source.opens
    assert thread.status.state == "lost"


class SurprisingSource:
    """A folder that turns unreadable, then readable again: its third read raises PermissionError."""

    kind = "files"
    paced = False

    def __init__(self) -> None:
        self.reads = self.opens = self.closes = 0

    def open(self) -> None:
        self.opens += 1

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == 3:
            raise PermissionError(13, "Permission denied", "/srv/frames")
        time.sleep(0.01)
        return Frame(np.zeros((4, 4, 3), np.uint8), f"f{self.reads}", time.time())

    def close(self) -> None:
        self.closes += 1


def test_an_unexpected_error_closes_and_reopens_the_source_instead_of_ending_capture(
        caplog: pytest.LogCaptureFixture) -> None:
    """Only BadFrame and SourceLost were caught: any other error ended the capture thread, the source
    stayed open, and the daemon idled with status "ok"."""
    slot, stop, source = LatestFrame(), threading.Event(), SurprisingSource()
    thread = CaptureThread(source, slot, stop, backoff_max=0.2)
    with caplog.at_level("ERROR", logger="edge.sources.capture"):
        seen = frames_captured(thread, slot, 4, timeout=10)
    assert len(seen) >= 4 and source.opens >= 2 and source.closes >= 1, (seen, source.opens, source.closes)
    errors = [r for r in caplog.records if "PermissionError" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None  # once, with the traceback
    assert thread.status.reopens >= 1


class QueuingCamera:
    """A live stream at 100 frames a second that queues frames while nobody reads (RTSP, V4L2):
    ``read`` decodes the oldest queued frame, or the one ``grab`` took last."""

    kind = "opencv"
    paced = False
    live = True
    FPS = 100

    def __init__(self) -> None:
        self.started = 0.0
        self.next_frame = 0
        self.grabbed: int | None = None

    def open(self) -> None:
        self.started = time.monotonic()

    def produced(self) -> int:
        return int((time.monotonic() - self.started) * self.FPS)

    def grab(self) -> None:
        while self.next_frame >= self.produced():
            time.sleep(0.002)
        self.grabbed, self.next_frame = self.next_frame, self.next_frame + 1

    def read(self) -> Frame | None:
        if self.grabbed is None:
            self.grab()
        index, self.grabbed = self.grabbed, None
        return Frame(np.zeros((4, 4, 3), np.uint8), str(index), time.time())

    def close(self) -> None:
        pass


def test_max_fps_decodes_the_newest_frame_not_an_old_buffered_one() -> None:
    """The capture thread slept before read(), so a stream returned frames queued long ago, stamped now."""
    slot, stop, camera = LatestFrame(), threading.Event(), QueuingCamera()
    thread = CaptureThread(camera, slot, stop, backoff_max=1, max_fps=5)
    thread.start()
    lags = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        got = slot.take(0.5)
        if got is not None:
            lags.append(camera.produced() - int(got.name))  # frames the camera made since this one
    stop.set()
    thread.join(5)
    # about 200 behind after 2 s before, growing by about 19 a frame; a late wake-up on a loaded machine
    # can leave one frame a few more behind
    assert len(lags) >= 6 and statistics.median(lags) <= 5 and max(lags) <= 40, lags
