"""OpenCV ``VideoCapture``: a device index, /dev/videoN, an RTSP/HTTP URL or a video file.

A camera or a stream is ``live``: it queues frames while nobody reads, so with ``max_fps`` the
capture thread ``grab``s (no decoding) between reads and ``read`` decodes the last frame grabbed,
stamped with the time it was grabbed. A video file is not live: its frames are read in order, at the
file's own frame rate, as the camera that recorded it delivered them (read as fast as it decodes, a
file would take a core from inference and be reopened hundreds of times a second when it loops).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from edge.sources import Frame, SourceLost
from edge.sources.frames import as_rgb_frame


def capture_target(device: str) -> int | str:
    """``"0"`` -> 0 (device index); anything else is passed to OpenCV as a path or URL."""
    return int(device) if device.strip().isdigit() else device


class OpenCvSource:
    kind = "opencv"
    paced = False

    def __init__(self, device: str, name: str, width: int, height: int) -> None:
        self.device = device
        self.name = name
        self.width = width
        self.height = height
        self.live = not Path(device).is_file()  # a camera or a stream, not a video file
        self._capture: cv2.VideoCapture | None = None
        self._grabbed_at: float | None = None  # a grabbed frame not decoded yet: when it was grabbed
        self._frame_interval = 0.0  # a video file's seconds per frame
        self._next_due = 0.0  # time.monotonic() when a video file's next frame is due

    def open(self) -> None:
        capture = cv2.VideoCapture(capture_target(self.device))
        if not capture.isOpened():
            capture.release()
            raise SourceLost(f"cannot open video source {self.device!r}")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a backlog
        if not self.live:
            fps = capture.get(cv2.CAP_PROP_FPS)
            self._frame_interval = 1.0 / fps if 0 < fps < 1000 else 0.0
            self._next_due = time.monotonic()
        self._capture = capture

    def grab(self) -> None:
        """Take the next frame off the source without decoding it."""
        if self._capture is None:
            raise SourceLost("video source is not open")
        if not self._capture.grab():
            raise SourceLost(f"video source {self.device!r} stopped delivering frames")
        self._grabbed_at = time.time()

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceLost("video source is not open")
        if self._grabbed_at is not None:
            captured, self._grabbed_at = self._grabbed_at, None
            ok, image = self._capture.retrieve()
        else:
            if self._frame_interval:
                time.sleep(max(0.0, self._next_due - time.monotonic()))
                self._next_due = max(self._next_due, time.monotonic()) + self._frame_interval
            captured = time.time()
            ok, image = self._capture.read()
        if not ok or image is None:
            raise SourceLost(f"video source {self.device!r} stopped delivering frames")
        return Frame(rgb=as_rgb_frame(image, "BGR"), name=self.name, captured=captured)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._grabbed_at = None
