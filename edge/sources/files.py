"""Image files as a frame source: a file, a folder (sorted) or a glob pattern; loops optionally."""

from __future__ import annotations

import glob
import time
from pathlib import Path

from edge.sources import BadFrame, Frame, SourceLost
from edge.sources.frames import as_rgb_frame
from edge.sources.imageio import IMAGE_SUFFIXES, ImageError, read_rgb


def expand(pattern: str) -> list[Path]:
    path = Path(pattern)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file():
        return [path]
    return sorted(Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES)


class FileSource:
    kind = "files"
    paced = True

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
        # a file gone since the listing, or not ours to read, is skipped like a broken one: losing the source
        # would list the folder again from its first file, and never reach the files after this one
        try:
            rgb = as_rgb_frame(read_rgb(path), "RGB")  # decoded exactly as `craft-edge detect` decodes it
        except ImageError as exc:
            raise BadFrame(str(exc)) from exc
        except BadFrame as exc:
            raise BadFrame(f"{path}: {exc}") from exc
        return Frame(rgb=rgb, name=path.name, captured=time.time())

    def close(self) -> None:
        self._files = []
