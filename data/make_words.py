"""Make ``data/words/``: 1280x720 frames of words with known text, for measuring reading end to end.

Run once on a workstation (scikit-image for its bundled public-domain/CC0 photos, Pillow, OpenCV,
the DejaVu fonts); the outputs are committed:

    python data/make_words.py

``wordlayout.py`` decides what goes where (texts, fonts, sizes, rotations, blur, exact quads) from a
seed; this script paints it onto crops of the photos, choosing ink colours from the background under
each word (far from it, or 20-40 grey levels from it for low-contrast words). Beside each
``NAME.jpg`` is ``NAME.json`` in the project's ground-truth format, each word with ``height_px``,
``angle_deg``, ``contrast``, ``blur_sigma``, ``font``, ``font_size`` and ``kind``. Deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from make_images import PHOTOS
from make_smalltext import background
from PIL import Image
from textrender import blend, coverage, ink_colour, luma
from wordlayout import FRAME, SEED, Item, layouts

JPEG_QUALITY = 90
BORDER_INK = (25.0, 25.0, 25.0)
PLATE_INK = (18.0, 18.0, 22.0)
# (panel, unlit segments, lit segments) of each display look
DISPLAYS = {
    "led-red": ((28.0, 24.0, 24.0), (46.0, 36.0, 36.0), (255.0, 70.0, 50.0)),
    "led-green": ((20.0, 28.0, 22.0), (32.0, 48.0, 36.0), (90.0, 255.0, 130.0)),
    "lcd": ((168.0, 182.0, 158.0), (150.0, 164.0, 141.0), (35.0, 40.0, 35.0)),
}


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
        alpha = coverage(item.ink, item.matrix, shape, item.blur_sigma)
        under = (frame * alpha[..., None]).sum(axis=(0, 1)) / alpha.sum()
        ink = ink_colour(under, item.low_contrast, rng)
    layer(item.ink, ink)
    contrast = round(float(abs(luma(ink) - luma(under))), 1)
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
