"""Named regions of the frame: the words whose box centre falls in one, in reading order.

A region with ``detect: false`` has no boxes: its rectangle is read whole, as one word. Reading
order is top to bottom by lines (a box joins a line when its centre is within half a height of the
line's), then left to right within each line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge.config.reading import RegionConfig
from edge.recognition.reader import Reading
from edge.recognition.words import WordReading

Keep = Callable[[Reading | None, Sequence[re.Pattern[str]]], WordReading]  # FrameReader.kept

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionReading:
    text: str  # the region's words joined by spaces in reading order ("" when none)
    words: tuple[WordReading, ...]
    unavailable: str | None = None  # why the region cannot be read in this frame at all


def reading_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``quads`` top to bottom by lines, left to right within a line."""
    centres = [np.asarray(q, dtype=np.float64).reshape(4, 2).mean(axis=0) for q in quads]
    heights = [float(np.ptp(np.asarray(q, dtype=np.float64).reshape(4, 2)[:, 1])) for q in quads]
    lines: list[list[int]] = []
    for index in sorted(range(len(quads)), key=lambda i: centres[i][1]):
        if lines:
            line = lines[-1]
            line_y = float(np.mean([centres[i][1] for i in line]))
            line_h = max(heights[i] for i in line)
            if abs(centres[index][1] - line_y) <= max(line_h, heights[index]) / 2:
                line.append(index)
                continue
        lines.append([index])
    return [index for line in lines for index in sorted(line, key=lambda i: centres[i][0])]


def joined(quads: Sequence[np.ndarray], words: Sequence[WordReading]) -> tuple[str, tuple[WordReading, ...]]:
    """The kept words (text not None) in reading order, and their text joined by spaces."""
    order = [i for i in reading_order(quads) if words[i].text is not None]
    return " ".join(str(words[i].text) for i in order), tuple(words[i] for i in order)


class Regions:
    """The configured regions: which quads to read whole, and each region's reading of a frame."""

    def __init__(self, regions: Sequence[RegionConfig]) -> None:
        self.regions = list(regions)
        self._patterns = {r.name: [re.compile(p) for p in r.patterns] for r in self.regions}
        self.fixed = [r for r in self.regions if not r.detect]
        self._checked: set[tuple[int, int]] = set()  # frame sizes the rectangles were checked against

    def check_fit(self, frame_hw: tuple[int, int]) -> None:
        """Warn once per frame size about regions reaching past the frame: a rect written for another
        resolution, or a camera that delivers less than source.width asks, reads nothing there."""
        if frame_hw in self._checked:
            return
        self._checked.add(frame_hw)
        height, width = frame_hw
        outside = [f"{r.name} {r.rect}" for r in self.regions if r.rect[2] > width or r.rect[3] > height]
        if outside:
            log.warning("regions reaching past the %dx%d frame (rect in its pixels: [left, top, right, bottom]), "
                        "read only where they overlap it (none: published as unavailable): %s", width, height,
                        "; ".join(outside))

    def fixed_quads(self, frame_hw: tuple[int, int]) -> list[np.ndarray]:
        """The ``detect: false`` rectangles as quads, clipped to the frame (those outside it left out)."""
        return [quad for quad in (self._clipped(r, frame_hw) for r in self.fixed) if quad is not None]

    @staticmethod
    def _clipped(region: RegionConfig, frame_hw: tuple[int, int]) -> np.ndarray | None:
        left, top, right, bottom = region.rect
        right, bottom = min(right, frame_hw[1]), min(bottom, frame_hw[0])
        if left >= right - 1 or top >= bottom - 1:
            return None
        return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float64)

    @staticmethod
    def _members(region: RegionConfig, quads: Sequence[np.ndarray]) -> list[int]:
        """The quads whose centre lies inside ``region``'s rectangle."""
        left, top, right, bottom = region.rect
        return [i for i, quad in enumerate(quads)
                if left <= (centre := np.asarray(quad).reshape(4, 2).mean(axis=0))[0] < right
                and top <= centre[1] < bottom]

    def boxes_inside(self, quads: Sequence[np.ndarray]) -> set[int]:
        """The quads some detect-true region takes its words from: read before the rest past max_words."""
        return {i for region in self.regions if region.detect for i in self._members(region, quads)}

    def read(self, frame_hw: tuple[int, int], quads: Sequence[np.ndarray], raws: Sequence[Reading | None],
             fixed_raws: Sequence[Reading], keep: Keep) -> dict[str, RegionReading]:
        """Each region's reading: the words of ``quads`` whose centre lies inside (detect: true) or the reading
        of its whole rectangle (``fixed_raws``, in ``fixed_quads``' order), each kept (``keep``: the rules,
        then the region's own patterns, which steer the reading as the rules' do)."""
        self.check_fit(frame_hw)
        fixed = iter(fixed_raws)
        result = {}
        for region in self.regions:
            patterns = self._patterns[region.name]
            if self._clipped(region, frame_hw) is None:  # "" would look like a region with nothing written in it
                outside = f"rect {region.rect} lies outside the {frame_hw[1]}x{frame_hw[0]} frame"
                result[region.name] = RegionReading("", (), outside)
                continue
            if not region.detect:
                word = keep(next(fixed), patterns)
                kept = (word,) if word.text is not None else ()
                result[region.name] = RegionReading(" ".join(str(w.text) for w in kept), kept)
                continue
            members = self._members(region, quads)
            unread = sum(raws[i] is None for i in members)
            if unread:  # its text without them would be a wrong reading, not a missing one ('04712' of '04712 5')
                result[region.name] = RegionReading("", (), f"{unread} of its {len(members)} boxes not read: past "
                                                            "recognition.max_words")
                continue
            words = {i: keep(raws[i], patterns) for i in members}
            inside = [i for i, word in words.items() if word.text is not None]
            text, kept = joined([quads[i] for i in inside], [words[i] for i in inside])
            result[region.name] = RegionReading(text, kept)
        return result
