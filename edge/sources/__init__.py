"""Frame sources behind one interface: picamera2, OpenCV ``VideoCapture``, image files.

A source is opened, read frame by frame, and closed. ``read()`` returns a ``Frame`` (RGB), or
None at the end of a finite source (files without ``loop``). It raises ``SourceLost`` when the
camera or stream goes away; the capture loop then reopens it with backoff. ``paced`` sources have
no clock of their own (files): capture waits for inference instead of dropping frames.

A new kind of source is one module with a class like ``OpenCvSource``, one entry in ``FACTORIES``,
and its name and settings in ``edge.config.settings`` (``SOURCE_KINDS``, ``SourceConfig``).

This part (frames in: the sources, the capture thread, image files) imports ``edge.config`` only.
Imported by ``edge.service`` and ``edge.commands``; never by ``edge.models``, ``edge.detection`` or
``edge.messaging``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from edge.config.settings import SourceConfig


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
    paced: bool

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Buffered(Protocol):
    """A source that queues frames while nobody reads (RTSP, V4L2). When ``live``, capture with ``max_fps``
    calls ``grab`` between reads to take frames without decoding them, so ``read`` decodes the newest."""

    live: bool

    def grab(self) -> None: ...


def _files(config: SourceConfig) -> FrameSource:
    from edge.sources.files import FileSource

    return FileSource(config.path, loop=config.loop)


def _opencv(config: SourceConfig) -> FrameSource:
    from edge.sources.opencv import OpenCvSource

    return OpenCvSource(config.device, config.name, config.width, config.height)


def _picamera2(config: SourceConfig) -> FrameSource:
    from edge.sources.picamera2 import Picamera2Source  # needs libcamera: imported only when asked for

    return Picamera2Source(config.name, config.width, config.height, config.picamera2_format)


# one entry per kind in edge.config.settings.SOURCE_KINDS (the names config.yaml accepts)
FACTORIES: dict[str, Callable[[SourceConfig], FrameSource]] = {
    "picamera2": _picamera2, "opencv": _opencv, "files": _files,
}


def make_source(config: SourceConfig) -> FrameSource:
    """The source ``config.kind`` names."""
    return FACTORIES[config.kind](config)
