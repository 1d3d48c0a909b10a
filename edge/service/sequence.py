"""``frame.seq``: rising across restarts, crashes and a damaged spool, and never given out twice.

A seq leaves the process in a detections message and in a snapshot's user properties, whether or
not the detections message is published (``publish: on_change``), so the spool's record of the
last spooled seq is not enough. The daemon reserves seqs in blocks instead: before it hands out a
seq above the reserved mark, it writes a new mark, ``BLOCK`` higher, to ``<state>/seq.reserved``
and fsyncs it. After a restart the first seq is above the mark, so a crash skips at most ``BLOCK``
seqs and reuses none; at 10 frames a second that is one small write every 100 s on an SD card. A
clean stop writes the last seq handed out as the mark, so after ``systemctl restart`` the seqs go
on without a gap.

The file is written in place, never grown or replaced, so a full disk cannot stop a reservation
(a temporary file and a rename would need room, and a full disk is exactly when the spool may fail
and a crash is likeliest). It holds two fixed-size records, each with a generation number and a
checksum, written alternately: a write torn by a power cut spoils only the newer record, and the
older one, plus a block for what the torn one may have reserved, is taken instead.

When no record survives (the file missing or unreadable and the spool kept aside as damaged), the
seq restarts at the current time in milliseconds since 1970: above any count of frames a device
could have processed. A mark that cannot be written (an I/O error, a read-only folder) is logged
and retried with the next seq; ``failing`` says so in status.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MARK_FILE = "seq.reserved"
BLOCK = 1000
SLOT_BYTES = 64  # one record: "<generation> <mark> <crc32>\n", space-padded


def record(generation: int, mark: int) -> bytes:
    body = f"{generation:012d} {mark:020d}"
    return f"{body} {zlib.crc32(body.encode()):08x}\n".encode().ljust(SLOT_BYTES, b" ")


def parse(slot: bytes) -> tuple[int, int] | None:
    """(generation, mark) of one record; None when it is torn or not a record."""
    try:
        body, crc = slot.decode("ascii").strip().rsplit(" ", 1)
        generation, mark = (int(field) for field in body.split(" "))
    except ValueError:  # UnicodeDecodeError included
        return None
    return (generation, mark) if f"{zlib.crc32(body.encode()):08x}" == crc else None


def read_mark(path: Path, block: int = BLOCK) -> tuple[int, int] | None:
    """(generation, reserved mark) in ``path``; None when there is no file or no record in it survived.
    A torn newer record costs a block: what it may have reserved is taken as given out."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    slots = [data[i:i + SLOT_BYTES] for i in range(0, 2 * SLOT_BYTES, SLOT_BYTES)]
    records = [parsed for slot in slots if (parsed := parse(slot)) is not None]
    if not records:
        return None
    generation, mark = max(records)
    return (generation, mark) if len(records) == 2 else (generation, mark + block)


class Sequence:
    """Hands out ``frame.seq`` values, reserving them on disk ``block`` at a time."""

    def __init__(self, folder: Path, spooled: int, spool_lost: bool, block: int = BLOCK,
                 clock: Callable[[], float] = time.time) -> None:
        """``spooled``: the last seq the spool recorded; ``spool_lost``: the spool was kept aside as damaged,
        so seqs above any surviving record may have been issued."""
        self.path = folder / MARK_FILE
        self.block = block
        self.failing = ""  # why the last reservation could not be written
        found = read_mark(self.path, block)
        self.generation = found[0] if found else 0
        from_clock = found is None and (spool_lost or self.path.exists())
        start = max(found[1] if found else 0, spooled)
        if from_clock:
            start = max(start, int(clock() * 1000))
            log.warning("no record of the last frame.seq survived (%s); seq continues from the clock, at %d",
                        "the spool was damaged" if spool_lost else f"{self.path} unreadable", start)
        self.last = start  # the last seq that may have been handed out
        self._reserved = start
        self._fd: int | None = None

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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _write(self, mark: int) -> None:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if os.fstat(fd).st_size < 2 * SLOT_BYTES:  # a new file: both records, so it never grows again
                    os.pwrite(fd, record(self.generation, self._reserved) * 2, 0)
                    os.fsync(fd)
                    folder = os.open(self.path.parent, os.O_RDONLY)  # and its name survives a power cut
                    try:
                        os.fsync(folder)
                    finally:
                        os.close(folder)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        generation = self.generation + 1
        os.pwrite(self._fd, record(generation, mark), (generation % 2) * SLOT_BYTES)
        os.fsync(self._fd)
        self.generation = generation

    def _reserve(self, mark: int) -> None:
        try:
            self._write(mark)
        except OSError as exc:
            if not self.failing:
                log.error("cannot reserve frame.seq values in %s (%s): a crash now could hand some out again; "
                          "retrying with the next frame", self.path, exc.strerror or exc)
            self.failing = f"{self.path}: {exc.strerror or exc}"
            return
        if self.failing:
            log.info("frame.seq reservations are written again (%s)", self.path)
        self.failing = ""
        self._reserved = mark
