"""Make ``data/words/``: 1280x720 frames of words with known text, for measuring reading end to end.

Run once on a workstation (scikit-image for its bundled public-domain/CC0 photos, Pillow, OpenCV,
the DejaVu fonts); the outputs are committed:

    python data/make_words.py

``wordlayout.py`` decides what goes where (texts, fonts, sizes, rotations, blur, exact quads) from a
seed; this script paints it onto crops of the photos, choosing ink colours from the background under
each word (far from it, or 20-40 grey levels from it for low-contrast words, along its whole length). Beside each
``NAME.jpg`` is ``NAME.json`` in the project's ground-truth format, each word with ``height_px``,
``angle_deg``, ``contrast``, ``blur_sigma``, ``font``, ``font_size`` and ``kind``. Deterministic.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import cv2
import numpy as np
from make_images import PHOTOS
from make_smalltext import background
from PIL import Image
from textrender import blend, coverage, ink_colour, least_contrast, luma
from wordlayout import FRAME, SEED, Item, layouts

JPEG_QUALITY = 90
BORDER_INK = (25.0, 25.0, 25.0)
PLATE_INK = (18.0, 18.0, 22.0)
STRETCHES_PER_CHARACTER = 2  # how finely the background under a plain word is sampled for its ink
SHADE_PERCENTILE = 10
OUTLINE_BELOW = 20  # grey levels: a plain word no ink sets this far from all its background gets an outline
OUTLINE_WIDTH = 0.08  # of the ink height
OUTLINE_INKS = ((20.0, 20.0, 20.0), (235.0, 235.0, 235.0))  # (for light ink, for dark ink)
# (panel, unlit segments, lit segments) of each display look
DISPLAYS = {
    "led-red": ((28.0, 24.0, 24.0), (46.0, 36.0, 36.0), (255.0, 70.0, 50.0)),
    "led-green": ((20.0, 28.0, 22.0), (32.0, 48.0, 36.0), (90.0, 255.0, 130.0)),
    "lcd": ((168.0, 182.0, 158.0), (150.0, 164.0, 141.0), (35.0, 40.0, 35.0)),
}


def backgrounds_under(frame: np.ndarray, item: Item) -> np.ndarray:
    """The darker and lighter background colours under each stretch of a plain word's ink
    (``STRETCHES_PER_CHARACTER`` a character, along the word): the mean colour of the pixels at or below
    the stretch's ``SHADE_PERCENTILE``-th luma percentile, and of those at or above the complement. An
    ink far from all of them stands out along the whole word, also where a light and a dark patch meet
    inside a letter."""
    width = item.ink.shape[1]
    count = min(width, STRETCHES_PER_CHARACTER * len(item.words[0].text))
    edges = np.linspace(0, width, count + 1).round().astype(int)
    colours = []
    for start, stop in itertools.pairwise(edges):
        stretch = np.zeros_like(item.ink)
        stretch[:, start:stop] = item.ink[:, start:stop]
        under = frame[coverage(stretch, item.matrix, frame.shape[:2], item.blur_sigma) > 0.5]
        if len(under):
            lumas = luma(under)
            colours.append(under[lumas <= np.percentile(lumas, SHADE_PERCENTILE)].mean(axis=0))
            colours.append(under[lumas >= np.percentile(lumas, 100 - SHADE_PERCENTILE)].mean(axis=0))
    if not colours:  # a thin blurred word covers no pixel past half: the mean under all of it
        alpha = coverage(item.ink, item.matrix, frame.shape[:2], item.blur_sigma)
        colours.append((frame * alpha[..., None]).sum(axis=(0, 1)) / alpha.sum())
    return np.array(colours)


def layer_outline(frame: np.ndarray, item: Item, colour: tuple[float, float, float]) -> None:
    """Paint the word's ink grown by ``OUTLINE_WIDTH`` of its height in ``colour`` (the ink goes on top)."""
    pad = max(1, round(OUTLINE_WIDTH * item.ink.shape[0]))
    grown = cv2.dilate(np.pad(item.ink, pad), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1,) * 2))
    matrix = item.matrix.copy()
    matrix[:, 2] -= matrix[:, :2] @ np.array([pad, pad], dtype=matrix.dtype)
    blend(frame, coverage(grown, matrix, frame.shape[:2], item.blur_sigma), colour)


def paint(frame: np.ndarray, item: Item, rng: random.Random) -> list[dict]:
    """Draw the item into the float frame; its words' labels with their contrast."""
    shape = frame.shape[:2]

    def layer(mask: np.ndarray, colour: tuple[float, float, float]) -> None:
        blend(frame, coverage(mask, item.matrix, shape, item.blur_sigma), colour)

    if item.kind == "plate":
        layer(item.panel, item.style["plate"])
        layer(item.border, BORDER_INK)
        under, ink = item.style["plate"], PLATE_INK
    elif item.kind == "seven_segment":
        under, ghost, ink = DISPLAYS[item.style["display"]]
        layer(item.panel, under)
        layer(item.ghost, ghost)
    else:
        under = backgrounds_under(frame, item)
        ink = ink_colour(under, item.low_contrast, rng)
        if least_contrast(ink, under) < OUTLINE_BELOW:
            # the background spans dark and light under the word, so no ink stands out from all of it:
            # an outline of the opposite shade, as subtitles and signs over photos have
            under = OUTLINE_INKS[0] if luma(ink) >= 128 else OUTLINE_INKS[1]
            layer_outline(frame, item, under)
    layer(item.ink, ink)
    contrast = least_contrast(ink, under)
    return [{**label, "contrast": contrast} for label in item.labels()]


def main() -> None:
    folder = Path(__file__).resolve().parent / "words"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.*"):
        old.unlink()
    rng = random.Random(SEED + 1)  # colours and crops; the layout has its own
    for index, (photo, items) in enumerate(layouts()):
        frame = background(photo, FRAME, rng)
        labels = [label for item in items for label in paint(frame, item, rng)]
        name = f"{photo}_{index:02d}"
        pixels = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.jpg", quality=JPEG_QUALITY)
        record = {"image": f"{name}.jpg", "photo": photo, "licence": PHOTOS[photo][1], "words": labels}
        (folder / f"{name}.json").write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
