"""A frame's boxes read in one batch, with the config's rules, reusing what an unchanged region said.

``FrameReader`` cuts each box out of the source frame and reads them together (``spotting.read_boxes``),
and keeps a reading when it scores at least ``min_score`` and matches one of ``patterns`` (when any);
patterns also steer: a reading that matches none is replaced by the likeliest that does, if the model
had it among its likeliest readings (``ctc.likeliest_accepted``), which must then score ``min_score``.
``allow`` restricts the characters before decoding, as EasyOCR's allow-list does. Only the
``max_words`` largest boxes are read. With change gating the daemon says which rectangles of the
frame changed: a box outside all of them, at the same place as a box of the last frame, keeps that
box's reading without running the recognizer.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from edge.config.reading import PATTERN_MAX_CHARS, RecognitionConfig
from edge.recognition.ctc import likeliest_accepted
from edge.recognition.reader import Reader, Reading, SequenceModel
from edge.recognition.spotting import cut, read_boxes

log = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # left, top, right, bottom in source-frame pixels
SAME_PLACE_PX = 0.5  # corners this close: the same box as in the last frame
# steering a frame's readings stops once it has taken this long (each word may try STEER_BEAM readings against
# patterns that the load check lets take up to PROBE_LIMIT_SECONDS a search): the rest are left unsteered
# this frame. The boxes (the rules' patterns) and the regions (their own) each have this much, so that many
# boxes do not leave a region, which is what patterns are most for, unsteered.
STEER_SECONDS_PER_FRAME = 0.5


@dataclass(frozen=True)
class WordReading:
    """What the payload says of one box: text and score, both None when not read or not kept."""

    text: str | None
    score: float | None


NOT_READ = WordReading(None, None)


@dataclass(frozen=True)
class FrameReading:
    words: list[WordReading]  # one per box, in the boxes' order
    raw: list[Reading | None]  # the same boxes' readings before the rules (None: past max_words)
    read: int  # boxes (and whole regions) read afresh
    reused: int  # boxes that kept the last frame's reading
    ms: float  # time spent cutting out and reading


class AllowedModel:
    """A sequence model whose characters outside ``allow`` have probability 0 (renormalised)."""

    def __init__(self, model: SequenceModel, charset: str, allow: str) -> None:
        self.model = model
        self.height, self.widths, self.lanes = model.height, model.widths, model.lanes
        self._barred = np.array([i + 1 for i, character in enumerate(charset) if character not in allow], dtype=int)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        probs = np.array(self.model(pixels), dtype=np.float32)
        probs[..., self._barred] = 0.0
        return probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-12)


def restricted(reader: Reader, allow: str) -> Reader:
    """``reader`` reading only the characters of ``allow`` ("": all of them)."""
    if not allow:
        return reader
    unknown = sorted(set(allow) - set(reader.charset))
    if len(unknown) == len(set(allow)):
        raise ValueError(f"recognition.allow {allow!r} holds none of the recognizer's characters")
    if unknown:
        log.warning("recognition.allow: the recognizer cannot read %s; they are ignored", "".join(unknown))
    return Reader(AllowedModel(reader.model, reader.charset, allow), reader.charset, reader.variant)


def matches(text: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    """Whether ``text`` matches one of ``patterns``; only readings up to PATTERN_MAX_CHARS are tried: a
    pattern that backtracks badly takes time doubling with every character, and a meter or a plate is short."""
    if not patterns:
        return True
    return len(text) <= PATTERN_MAX_CHARS and any(pattern.search(text) for pattern in patterns)


def bounds(quad: np.ndarray) -> tuple[float, float, float, float]:
    return float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())


def overlaps(quad: np.ndarray, rects: Sequence[Rect]) -> bool:
    left, top, right, bottom = bounds(quad)
    return any(left < r_right and r_left < right and top < r_bottom and r_top < bottom
               for r_left, r_top, r_right, r_bottom in rects)


def area(quad: np.ndarray) -> float:
    x, y = quad[:, 0], quad[:, 1]
    return abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2


class FrameReader:
    """Reads frames' boxes with ``reader`` under ``settings``; remembers the last frame's raw readings."""

    def __init__(self, reader: Reader, settings: RecognitionConfig) -> None:
        self.reader = restricted(reader, settings.allow)
        self.variant = reader.variant
        self.min_score = settings.min_score
        self.patterns = [re.compile(pattern) for pattern in settings.patterns]
        self.max_words = settings.max_words
        self._last: list[tuple[np.ndarray, Reading]] = []
        # (id of a reading, a region's patterns) -> (that reading, kept alive so the id stays its own; steered)
        self._steered: dict[tuple[int, tuple[str, ...]], tuple[Reading, Reading]] = {}
        self._steering_seconds = {False: 0.0, True: 0.0}  # spent this frame steering boxes / regions' words
        self._steering_cut = False  # said once in the log

    def fits(self, text: str, also: Sequence[re.Pattern[str]] = ()) -> bool:
        """Whether ``text`` matches the patterns, and a region's own (``also``) when it has any."""
        return matches(text, self.patterns) and matches(text, also)

    def steered(self, reading: Reading, also: Sequence[re.Pattern[str]] = ()) -> Reading:
        """``reading``, or when it does not fit the patterns the likeliest reading the model had that does,
        scored at most as ``reading`` was: the model preferred that one (a steered reading that drops an
        uncertain character would otherwise score higher, and pass a ``min_score`` the original did not)."""
        if reading.steps is None or not math.isfinite(reading.score) or self.fits(reading.text, also):
            return reading
        key = (id(reading), tuple(pattern.pattern for pattern in also))
        if key in self._steered:  # a reused reading is steered once, also when nothing matched
            return self._steered[key][1]
        if self._steering_seconds[bool(also)] > STEER_SECONDS_PER_FRAME:
            if not self._steering_cut:
                self._steering_cut = True
                log.warning("steering readings by the patterns took over %.1f s in a frame: the rest of that frame's "
                            "readings were left as read (tried again next frame); is a pattern slow?",
                            STEER_SECONDS_PER_FRAME)
            return reading  # not remembered: tried again in the next frame
        started = time.perf_counter()
        found = likeliest_accepted(reading.steps, self.reader.charset, lambda text: self.fits(text, also))
        self._steering_seconds[bool(also)] += time.perf_counter() - started
        steered = reading if found is None else Reading(found[0], min(found[1], reading.score), reading.steps)
        self._steered[key] = (reading, steered)
        return steered

    def kept(self, reading: Reading | None, also: Sequence[re.Pattern[str]] = ()) -> WordReading:
        """The payload's view of a raw reading under the rules (score, patterns), steered by the patterns; a
        region's view when ``also`` holds its patterns."""
        if reading is None or not math.isfinite(reading.score):  # NaN: a model gone wrong
            return NOT_READ
        reading = self.steered(reading, also)
        if not reading.text or reading.score < self.min_score or not self.fits(reading.text, also):
            return NOT_READ
        return WordReading(reading.text, round(reading.score, 3))

    def new_frame(self) -> None:
        """The steering budget (STEER_SECONDS_PER_FRAME) anew: ``read`` calls it, and so does a caller that
        steers readings of its own."""
        self._steering_seconds = {False: 0.0, True: 0.0}

    def forget(self) -> None:
        """Nothing of the last frame is reused: the next frame reads every box afresh (after a failed frame)."""
        self._last = []

    @staticmethod
    def _remembered(quad: np.ndarray, last: Sequence[tuple[np.ndarray, Reading]]) -> Reading | None:
        for points, reading in last:
            if np.abs(points - quad).max() <= SAME_PLACE_PX:
                return reading
        return None

    def read(self, rgb: np.ndarray, quads: Sequence[np.ndarray], changed: Sequence[Rect] | None,
             extra: Sequence[np.ndarray] = (), first: Collection[int] = ()) -> tuple[FrameReading, list[Reading]]:
        """Readings of ``quads`` (boxes, source pixels) and, always read afresh, of ``extra`` quads (fixed
        regions). ``changed``: the rectangles that changed since the last frame (None: all of it). Past
        ``max_words``, the boxes ``first`` names (those in named regions) go before the largest of the rest."""
        start = time.perf_counter()
        last = self._last
        self.forget()  # a frame that fails leaves nothing to reuse: the next reads afresh
        self.new_frame()
        quads = [np.asarray(q, dtype=np.float64).reshape(4, 2) for q in quads]
        largest = sorted(range(len(quads)), key=lambda i: (i in first, area(quads[i])), reverse=True)[:self.max_words]
        raw: dict[int, Reading] = {}
        to_read: list[int] = []
        for index in largest:
            unchanged = changed is not None and not overlaps(quads[index], changed)
            previous = self._remembered(quads[index], last) if unchanged else None
            if previous is None:
                to_read.append(index)
            else:
                raw[index] = previous
        fresh = read_boxes(self.reader, rgb, [quads[i] for i in to_read])
        raw.update(zip(to_read, map(self.steered, fresh), strict=True))  # steered once, not on every reuse
        whole = self.reader.read(cut(rgb, extra, margin=0.0)) if extra else []  # a region's rectangle as it is
        self._last = [(quads[i], reading) for i, reading in raw.items()]
        alive = {id(reading) for _, reading in self._last}
        self._steered = {key: value for key, value in self._steered.items() if key[0] in alive}
        raws = [raw.get(i) for i in range(len(quads))]
        words = [self.kept(r) for r in raws]
        ms = (time.perf_counter() - start) * 1e3
        return FrameReading(words, raws, len(to_read) + len(extra), len(largest) - len(to_read), ms), whole
