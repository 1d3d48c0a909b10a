"""Raspberry Pi camera through picamera2 (imported lazily: it needs libcamera, only on a Pi).

picamera2 names formats after libcamera/DRM fourccs, which describe a little-endian word, so
the byte order in memory is the reverse of the name: ``RGB888`` arrays hold B, G, R per pixel;
``BGR888`` hold R, G, B; ``XRGB8888`` hold B, G, R, X; ``XBGR8888`` hold R, G, B, X. Rows may be
padded to an aligned stride; the padding is cropped.

A camera that fails to configure or start is closed again (else libcamera keeps it busy and every
reopen fails). ``capture_array`` can block forever on a stalled camera; it runs in a helper thread
and a frame that does not come within ``capture_timeout`` seconds makes the source lost, so the
capture thread closes and reopens the camera instead of waiting for systemd's watchdog.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np

from edge.sources import BadFrame, Frame, SourceLost

# format -> indices of R, G, B in each pixel as laid out in memory
CAPTURE_TIMEOUT_SECONDS = 5.0
CHANNEL_ORDER = {"RGB888": (2, 1, 0), "BGR888": (0, 1, 2), "XRGB8888": (2, 1, 0), "XBGR8888": (0, 1, 2)}


def to_rgb(array: np.ndarray, fmt: str, width: int) -> np.ndarray:
    """A picamera2 ``capture_array`` result in ``fmt`` -> (H, width, 3) RGB, stride padding removed."""
    channels = 4 if fmt.startswith("X") else 3
    if array.ndim != 3 or array.shape[2] != channels:
        raise BadFrame(f"picamera2 {fmt} frame has shape {array.shape}, expected (H, W, {channels})")
    if array.shape[1] < width:
        raise BadFrame(f"picamera2 frame is {array.shape[1]} px wide, configured {width}")
    return np.ascontiguousarray(array[:, :width, list(CHANNEL_ORDER[fmt])])


class Picamera2Source:
    kind = "picamera2"
    paced = False

    def __init__(self, name: str, width: int, height: int, fmt: str, camera_factory: Any = None,
                 capture_timeout: float = CAPTURE_TIMEOUT_SECONDS) -> None:
        self.name = name
        self.capture_timeout = capture_timeout
        self.width = width
        self.height = height
        self.format = fmt
        self._factory = camera_factory
        self._camera: Any = None

    def open(self) -> None:
        factory = self._factory
        if factory is None:
            try:
                from picamera2 import Picamera2
            except ImportError as exc:
                raise SourceLost(
                    f"picamera2 is not installed ({exc}); on a Pi: sudo apt install python3-picamera2"
                ) from exc
            factory = Picamera2
        try:
            camera = factory()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError/OSError for absent cameras
            raise SourceLost(f"cannot start the Pi camera ({exc})") from exc
        try:
            config = camera.create_video_configuration(main={"size": (self.width, self.height), "format": self.format})
            camera.configure(config)
            camera.start()
        except Exception as exc:
            self._close(camera)
            raise SourceLost(f"cannot start the Pi camera ({exc})") from exc
        self._camera = camera

    def read(self) -> Frame | None:
        if self._camera is None:
            raise SourceLost("Pi camera is not open")
        array = self._capture(self._camera)
        return Frame(rgb=to_rgb(array, self.format, self.width), name=self.name, captured=time.time())

    def _capture(self, camera: Any) -> np.ndarray:
        """``capture_array`` with a timeout (a daemon thread: one stuck on a dead camera cannot block exit)."""
        result: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                result["array"] = camera.capture_array("main")
            except Exception as exc:
                result["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="picamera2-capture", daemon=True).start()
        if not done.wait(self.capture_timeout):
            raise SourceLost(f"Pi camera gave no frame in {self.capture_timeout:g} s (stalled)")
        if "error" in result:
            raise SourceLost(f"Pi camera stopped delivering frames ({result['error']})") from result["error"]
        return result["array"]

    @staticmethod
    def _close(camera: Any) -> None:
        with contextlib.suppress(Exception):  # stopping a camera that never started, or already vanished
            camera.stop()
        with contextlib.suppress(Exception):
            camera.close()

    def close(self) -> None:
        if self._camera is not None:
            self._close(self._camera)
            self._camera = None
