"""Image files as a frame source: a file, a folder (sorted) or a glob pattern; loops optionally."""

from __future__ import annotations

import glob
import time
from pathlib import Path

import cv2
import numpy as np

from edge.imageio import IMAGE_SUFFIXES
from edge.sources import BadFrame, Frame, SourceLost
from edge.sources.frames import to_rgb


def expand(pattern: str) -> list[Path]:
    path = Path(pattern)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file():
        return [path]
    return sorted(Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES)


class FileSource:
    kind = "files"

    def __init__(self, pattern: str, loop: bool = False) -> None:
        self.pattern = pattern
        self.loop = loop
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> None:
        self._files = expand(self.pattern)
        self._next = 0
        if not self._files:
            raise SourceLost(f"no image files at {self.pattern}")

    def read(self) -> Frame | None:
        if self._next >= len(self._files):
            if not self.loop:
                return None
            self.open()  # the folder may have changed; re-list it
        path = self._files[self._next]
        self._next += 1
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            raise SourceLost(f"{path}: {exc.strerror or exc}") from exc
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        try:
            rgb = to_rgb(image, "BGR")
        except BadFrame as exc:
            raise BadFrame(f"{path}: {exc}") from exc
        return Frame(rgb=rgb, name=path.name, captured=time.time())

    def close(self) -> None:
        self._files = []
