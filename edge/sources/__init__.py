"""Frame sources behind one interface: picamera2, OpenCV ``VideoCapture``, image files.

A source is opened, read frame by frame, and closed. ``read()`` returns a ``Frame`` (RGB), or
None at the end of a finite source (files without ``loop``). It raises ``SourceLost`` when the
camera or stream goes away; the capture loop then reopens it with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.config import SourceConfig


class SourceLost(RuntimeError):
    """The source stopped delivering frames (unplugged camera, dropped stream, deleted files)."""


class BadFrame(ValueError):
    """One frame could not be used (not an image, wrong shape); it is skipped and counted."""


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    name: str  # the camera's configured name, or the file name for file sources
    captured: float  # time.time() at capture


class FrameSource(Protocol):
    kind: str

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def make_source(config: SourceConfig) -> FrameSource:
    """The source ``config.kind`` names. picamera2 is imported only when asked for."""
    if config.kind == "files":
        from edge.sources.files import FileSource

        return FileSource(config.path, loop=config.loop)
    if config.kind == "opencv":
        from edge.sources.opencv import OpenCvSource

        return OpenCvSource(config.device, config.name, config.width, config.height)
    from edge.sources.picamera2 import Picamera2Source

    return Picamera2Source(config.name, config.width, config.height, config.picamera2_format)
