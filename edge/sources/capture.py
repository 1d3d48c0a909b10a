"""Capture side of the pipeline: a thread that keeps the newest frame in a one-frame slot.

Capture never waits for inference: each new frame replaces the one in the slot, and a frame that
is replaced before inference took it is dropped and counted. A lost source is reopened with
exponential backoff while the daemon keeps running; its state is reported in status. A run of
bad frames (a camera sending garbage) is read with a growing pause between frames, and logged at
most LOG_LINES_PER_MINUTE times a minute, so it neither spins a core nor floods the journal; so are
the lines for a source lost and back (a looping video file, a stream that drops every few frames). Any
other error a source raises (a folder it may not read, an OpenCV error) is logged with its cause,
once per kind, and handled like a lost source: closed, reopened with backoff, said in status.

With ``max_fps``, a live source that queues frames (``Buffered``: RTSP, V4L2) is drained between
reads, grabbing without decoding, so the frame decoded is the newest and is stamped with the time it
was grabbed, not an old buffered one stamped now. ``stuck_for`` tells how long the thread has been
inside one call into the source (a driver that never returns), for the daemon to act on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from edge.sources import BadFrame, Buffered, Frame, FrameSource, SourceLost

log = logging.getLogger(__name__)
T = TypeVar("T")

BAD_FRAME_PAUSE_FIRST = 0.01  # seconds after the 2nd bad frame in a row, doubling up to the next
BAD_FRAME_PAUSE_MAX = 1.0
LOG_LINES_PER_MINUTE = 10


class RateLimitedLog:
    """At most ``per_minute`` lines a minute; the next line allowed says how many were held back."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._window_start = -60.0
        self._lines = 0
        self.suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def info(self, message: str, *args: object) -> None:
        self.log(logging.INFO, message, *args)

    def log(self, level: int, message: str, *args: object) -> None:
        now = self.clock()
        if now - self._window_start >= 60:
            self._window_start, self._lines = now, 0
        if self._lines >= self.per_minute:
            self.suppressed += 1
            return
        self._lines += 1
        if self.suppressed:
            message += f" ({self.suppressed} similar lines held back)"
            self.suppressed = 0
        log.log(level, message, *args)


class LatestFrame:
    """A slot holding at most one frame; ``put`` replaces, ``take`` waits for a new one."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._condition = threading.Condition()
        self.dropped = 0
        self.finished = False

    def put(self, frame: Frame) -> None:
        with self._condition:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._condition.notify_all()

    def finish(self) -> None:
        """No more frames will come (a finite source ended)."""
        with self._condition:
            self.finished = True
            self._condition.notify_all()

    def take(self, timeout: float) -> Frame | None:
        with self._condition:
            if self._frame is None and not self.finished:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            self._condition.notify_all()  # a paced producer may be waiting for the slot to empty
            return frame

    def wait_until_empty(self, timeout: float) -> bool:
        """For finite sources: block the producer until inference has taken the frame."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._frame is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True


@dataclass
class SourceState:
    state: str = "starting"  # starting, ok, lost, ended
    detail: str = ""
    reopens: int = 0  # open attempts after the first one
    bad_frames: int = 0
    frames: int = 0
    call: str = ""  # the call into the source under way ("open", "read", "grab"), for the stuck check


class CaptureThread(threading.Thread):
    """Reads ``source`` into ``slot`` until ``stop`` is set or a finite source ends."""

    def __init__(self, source: FrameSource, slot: LatestFrame, stop: threading.Event, backoff_max: float,
                 max_fps: float = 0.0, pace_to_consumer: bool = False) -> None:
        super().__init__(name="capture", daemon=True)
        self.source = source
        self.slot = slot
        self.stop_event = stop
        self.backoff_max = backoff_max
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        # File sources have no real-time clock: wait for inference instead of dropping frames.
        self.pace_to_consumer = pace_to_consumer
        self.status = SourceState()
        self._opened_before = False
        self._bad_log = RateLimitedLog(LOG_LINES_PER_MINUTE)
        self._lost_log = RateLimitedLog(LOG_LINES_PER_MINUTE)  # lost and back again
        self._call_started: float | None = None
        self._unexpected_logged: set[str] = set()

    def stuck_for(self) -> float:
        """Seconds spent so far inside the current call into the source (0 outside one)."""
        started = self._call_started
        return 0.0 if started is None else time.monotonic() - started

    def _in_source(self, call: str, work: Callable[[], T]) -> T:
        self.status.call, self._call_started = call, time.monotonic()
        try:
            return work()
        finally:
            self._call_started = None

    def _unexpected(self, exc: Exception) -> str:
        """An error no source should raise: logged with its traceback once per kind; the detail for status."""
        detail = f"unexpected {type(exc).__name__}: {exc}"
        if type(exc).__name__ not in self._unexpected_logged:
            self._unexpected_logged.add(type(exc).__name__)
            log.error("source %s failed: %s; closing and reopening it with backoff", self.source.kind, detail,
                      exc_info=exc)
        return detail

    def _open_with_backoff(self) -> bool:
        delay = 0.5
        while not self.stop_event.is_set():
            if self._opened_before:
                self.status.reopens += 1
            self._opened_before = True
            try:
                self._in_source("open", self.source.open)
                if self.status.state == "lost":
                    self._lost_log.info("source %s back after %d reopen attempts", self.source.kind,
                                        self.status.reopens)
                self.status.state, self.status.detail = "ok", ""
                return True
            except SourceLost as exc:
                self._lost(str(exc))
            except Exception as exc:  # never let the capture thread die: the daemon would idle, "ok"
                self._lost(self._unexpected(exc))
                self._close()
            self.stop_event.wait(delay)
            delay = min(delay * 2, self.backoff_max)
        return False

    def _lost(self, detail: str) -> None:
        if self.status.state != "lost" or self.status.detail != detail:
            self._lost_log.warning("source %s lost: %s; reopening with backoff", self.source.kind, detail)
        self.status.state, self.status.detail = "lost", detail

    def _close(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # closing a failed source may fail too; reopening is what matters
            log.debug("closing source %s: %s", self.source.kind, exc)

    def _wait_for_due(self, due: float, drains: bool) -> bool:
        """Until ``due``: a buffered live source is drained meanwhile (newest frame kept). False when stopping."""
        if not drains:
            wait = due - time.monotonic()
            return not (wait > 0 and self.stop_event.wait(wait))
        assert isinstance(self.source, Buffered)
        while time.monotonic() < due:
            if self.stop_event.is_set():
                return False
            self._in_source("grab", self.source.grab)
        return True

    def run(self) -> None:
        if not self._open_with_backoff():
            return
        last = 0.0
        bad_in_a_row = lost_in_a_row = 0
        drains = isinstance(self.source, Buffered) and self.source.live
        while not self.stop_event.is_set():
            try:
                if self.min_interval and not self._wait_for_due(last + self.min_interval, drains):
                    break
                frame = self._in_source("read", self.source.read)
            except BadFrame as exc:
                self.status.bad_frames += 1
                bad_in_a_row += 1
                self._bad_log.warning("skipped a frame: %s", exc)
                if bad_in_a_row > 1:
                    pause = min(BAD_FRAME_PAUSE_FIRST * 2 ** (bad_in_a_row - 2), BAD_FRAME_PAUSE_MAX)
                    self.stop_event.wait(pause)
                continue
            except Exception as exc:  # SourceLost, or anything a source should not raise
                self._lost(str(exc) if isinstance(exc, SourceLost) else self._unexpected(exc))
                self._close()
                # A stream that was delivering is reopened at once; one that opens but fails its
                # first read again (a dead stream) must not spin: wait, longer each time.
                lost_in_a_row += 1
                if lost_in_a_row > 1 and self.stop_event.wait(min(0.5 * 2 ** (lost_in_a_row - 2), self.backoff_max)):
                    break
                if not self._open_with_backoff():
                    break
                continue
            bad_in_a_row = lost_in_a_row = 0
            if frame is None:
                self.status.state = "ended"
                self.slot.finish()
                break
            last = time.monotonic()
            self.status.frames += 1
            if self.pace_to_consumer:
                while not self.slot.wait_until_empty(0.5) and not self.stop_event.is_set():
                    pass
            self.slot.put(frame)
        self._close()
