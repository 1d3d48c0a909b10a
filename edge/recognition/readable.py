"""Are the words in view large enough to read? Box heights in source-frame pixels, and a verdict.

Reading works on the source frame whatever the detector's input size or tiling: the detector's box
is cut as it is (``spotting.read_boxes``; CRAFT's boxes already reach past the glyphs, as the
labelled crops below do), so a crop is as tall as its box, and the reader scales it to the
recognizer's 64 px, which adds no detail. Measured by
``bench/reading_height.py`` (README, "Reading in the daemon"): labelled IIIT5K and SVT crops shrunk
to a height and read with the dynamic variant; of the words read right at full size, 31 % are read
at a 10 px crop, 55 % at 12, 83 % at 16, 90 % at 20, 94 % at 24 and 95 % at 32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_READ_HEIGHT = 12.0  # box px in the source frame: about half the words are misread
GOOD_READ_HEIGHT = 20.0  # box px: 9 in 10 of the words readable at full size are read
ADVICE = "move the camera closer or zoom in (tiling and the model input do not help reading)"


def reading_verdict(heights: Sequence[float]) -> str:
    """One line on whether words of these box heights (source-frame pixels) are large enough to read."""
    needs = (f"reading needs boxes about {GOOD_READ_HEIGHT:g} px tall in the frame (about half the words "
             f"are misread at {MIN_READ_HEIGHT:g} px)")
    if not heights:
        return f"no words to read; {needs}"
    median, smallest = float(np.median(heights)), min(heights)
    sizes = f"median box height {median:.1f} px, smallest {smallest:.1f} px in the frame"
    if median < MIN_READ_HEIGHT:
        return f"too small to read: {sizes}; {needs}: {ADVICE}"
    if median < GOOD_READ_HEIGHT:
        return f"borderline: {sizes}; many words will be misread; {needs}: {ADVICE}"
    if smallest < MIN_READ_HEIGHT:
        return f"mostly readable: {sizes}; the smallest words will be misread; {needs}"
    return f"readable: {sizes}; {needs}"
