"""The detector's boxes in a frame -> what each reads: how the daemon, ``detect --read`` and
``eval --read`` cut and read them.

CRAFT's boxes already reach past the glyphs (its region score spreads beyond them), so they are cut
with no margin; a labelled quad hugs the glyphs and reads best with ``crops.MARGIN`` of context.
A word read with a score under ``SECOND_CROP`` is cut again with that margin and read again, and the
better-scored reading kept. End to end on ../shared/eval-ic15train (200 photos, int8 detector at
736x1280, ICDAR 2015 end-to-end H-mean): fp32 recognizer before every crop's contrast was stretched,
margin 0.1 0.310, 0.05 0.331, none 0.337, none with the second crop 0.352 (63 % of those boxes read
twice); dynamic recognizer with the stretch, none 0.355, none with the second crop 0.369 (README
"Reading text").
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.recognition.crops import MARGIN, word_crop
from edge.recognition.reader import Reader, Reading

BOX_MARGIN = 0.0  # the detector's boxes: cut as they are
SECOND_CROP = 0.5  # under this score a box is cut again with crops.MARGIN and read again
LETTER_ASPECT = 2.5  # a box up to this much taller than long is a letter or two, read as it stands


def cut(rgb: np.ndarray, quads: Sequence[np.ndarray], margin: float) -> list[np.ndarray]:
    """One grey crop per quad; a quad with no area becomes a one-pixel crop, which reads as nothing."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 and len(quads) > 1 else rgb
    crops = []
    for quad in quads:
        try:
            crops.append(word_crop(grey, quad, margin))
        except ValueError:
            crops.append(np.zeros((1, 1), np.uint8))
    return crops


def reading_way(quad: np.ndarray) -> np.ndarray:
    """A detector box's corners from the word's top-left as it reads (``word_crop``'s order).

    The detector starts a box at its corner nearest the picture's top-left, which is the word's
    top-left up to 45 degrees of tilt; past that its first edge is a short side. A box whose first
    edge is much shorter than its second (a word, not a single letter) is turned a quarter, and half
    again if it would then read right to left, so words tilted up to 90 degrees either way read level.
    """
    corners = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    first, second = np.linalg.norm(corners[1] - corners[0]), np.linalg.norm(corners[3] - corners[0])
    if second <= LETTER_ASPECT * first:
        return corners
    turned = np.roll(corners, -1, axis=0)
    return turned if turned[1, 0] >= turned[0, 0] else np.roll(turned, 2, axis=0)


def read_boxes(reader: Reader, rgb: np.ndarray, quads: Sequence[np.ndarray]) -> list[Reading]:
    """What each of the detector's ``quads`` in ``rgb`` reads (one Reading each, in order)."""
    if not quads:
        return []
    quads = [reading_way(quad) for quad in quads]
    readings = reader.read(cut(rgb, quads, BOX_MARGIN))
    again = [i for i, reading in enumerate(readings) if reading.score < SECOND_CROP]
    if again:
        wider = reader.read(cut(rgb, [quads[i] for i in again], MARGIN))
        for i, reading in zip(again, wider, strict=True):
            if reading.score > readings[i].score:
                readings[i] = reading
    return readings
