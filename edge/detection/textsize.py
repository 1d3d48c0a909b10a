"""Is the text in view large enough for CRAFT? Box heights in model-input pixels, and a verdict.

CRAFT finds words by their character regions; below a certain height in the model's input it
misses most of them, however sharp the picture. ``craft-edge frame`` uses this to tell someone
setting up a camera whether to move closer, zoom, or use a larger input or tiling.

The two heights are measured by ``bench/text_size.py`` on ``data/smalltext/`` (480x640 int8;
README, "Is the text large enough?"): clean words (upright, sharp, contrasted) are found with
recall >= 0.8 from 7 px of ink height in the model's input, and all words (tilted, blurred and
faint ones too) from 14 px; recall is 0.5 or less below 7 px and 0 below 5 px. CRAFT's boxes are
1.28 times the ink height (median over the words found), which gives the box heights below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_BOX_HEIGHT = 9.0  # px in the model's input: below it CRAFT misses most words, even clean ones
GOOD_BOX_HEIGHT = 18.0  # from here on, tilted, blurred and faint words are found too
ADVICE = "move the camera closer, zoom in, or use a larger model input or tiling"


def box_height(points: np.ndarray) -> float:
    """Height of a word's quad: the mean length of its shorter pair of opposite sides (words are wider
    than tall, and a rotated box may start its corners on either side)."""
    p = np.asarray(points, dtype=np.float64)
    sides = np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1)
    return float(min(sides[0] + sides[2], sides[1] + sides[3]) / 2)


def verdict(heights: Sequence[float], input_hw: tuple[int, int]) -> str:
    """One line on whether text of these box heights (model-input pixels) is large enough for CRAFT."""
    where = f"in the {input_hw[0]}x{input_hw[1]} model input"
    needs = (f"CRAFT needs about {MIN_BOX_HEIGHT:g} px {where} "
             f"({GOOD_BOX_HEIGHT:g} px for tilted, blurred or faint words)")
    if not heights:
        return f"no text found: if there is text in view it is probably too small; {needs}: {ADVICE}"
    median, smallest = float(np.median(heights)), min(heights)
    sizes = f"median box height {median:.1f} px, smallest {smallest:.1f} px {where}"
    if median < MIN_BOX_HEIGHT:
        return f"too small: {sizes}; {needs}: {ADVICE}"
    if smallest < MIN_BOX_HEIGHT:
        return (f"partly too small: {sizes}; words under {MIN_BOX_HEIGHT:g} px are mostly missed; "
                f"{needs}: for those, {ADVICE}")
    if median < GOOD_BOX_HEIGHT:
        return f"borderline: {sizes}; clear words this size are found, tilted, blurred or faint ones often not; " \
               f"{needs}: {ADVICE}"
    if smallest < GOOD_BOX_HEIGHT:
        return f"mostly good: {sizes}; the smallest words are borderline; {needs}"
    return f"good: {sizes}; {needs}"
