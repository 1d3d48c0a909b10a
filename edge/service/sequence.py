"""``frame.seq``: rising across restarts, crashes and a damaged spool, and never given out twice.

A seq leaves the process in a detections message and in a snapshot's user properties, whether or
not the detections message is published (``publish: on_change``), so the spool's record of the
last spooled seq is not enough. The daemon reserves seqs in blocks instead: before it hands out a
seq above the reserved mark, it writes a new mark, ``BLOCK`` higher, to ``<state>/seq.reserved``
(written aside, fsync'd, renamed: a crash leaves the old mark or the new one). After a restart the
first seq is above the mark, so a crash skips at most ``BLOCK`` seqs and reuses none; at 10 frames
a second that is one small write every 100 s on an SD card. A clean stop writes the last seq
handed out as the mark, so after ``systemctl restart`` the seqs go on without a gap.

When no record survives (the mark missing or unreadable and the spool kept aside as damaged), the
seq restarts at the current time in milliseconds since 1970: above any count of frames a device
could have processed. A mark that cannot be written (full disk, read-only folder) is logged and
retried with the next seq; ``failing`` says so in status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MARK_FILE = "seq.reserved"
BLOCK = 1000


def read_mark(path: Path) -> int | None:
    """The reserved mark in ``path``; None when there is none or it cannot be read as one."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def write_mark(path: Path, mark: int) -> None:
    """Durably replace the mark: a crash at any point leaves the old value or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(f"{mark}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class Sequence:
    """Hands out ``frame.seq`` values, reserving them on disk ``block`` at a time."""

    def __init__(self, folder: Path, spooled: int, spool_lost: bool, block: int = BLOCK,
                 clock: Callable[[], float] = time.time) -> None:
        """``spooled``: the last seq the spool recorded; ``spool_lost``: the spool was kept aside as damaged,
        so seqs above any surviving record may have been issued."""
        self.path = folder / MARK_FILE
        self.block = block
        self.failing = ""  # why the last reservation could not be written
        mark = read_mark(self.path)
        self.recovered_from_clock = mark is None and (spool_lost or self.path.exists())
        start = max(mark or 0, spooled)
        if self.recovered_from_clock:
            start = max(start, int(clock() * 1000))
            log.warning("no record of the last frame.seq survived (%s); seq continues from the clock, at %d",
                        "the spool was damaged" if spool_lost else f"{self.path} unreadable", start)
        self.last = start  # the last seq that may have been handed out
        self._reserved = start

    def next(self) -> int:
        seq = self.last + 1
        if seq > self._reserved:
            self._reserve(seq + self.block - 1)
        self.last = seq
        return seq

    def close(self) -> None:
        """A clean stop: the mark comes down to the last seq handed out (the next start goes on from it)."""
        if self._reserved > self.last:
            self._reserve(self.last)

    def _reserve(self, mark: int) -> None:
        try:
            write_mark(self.path, mark)
        except OSError as exc:
            if not self.failing:
                log.error("cannot reserve frame.seq values in %s (%s): a crash now could hand some out again; "
                          "retrying with the next frame", self.path, exc.strerror or exc)
            self.failing = f"{self.path}: {exc.strerror or exc}"
            with contextlib.suppress(OSError):
                self.path.with_name(self.path.name + ".tmp").unlink()
            return
        if self.failing:
            log.info("frame.seq reservations are written again (%s)", self.path)
        self.failing = ""
        self._reserved = mark
