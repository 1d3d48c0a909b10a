"""Make ``data/smalltext/``: 1280x720 and 1920x1080 frames with many small words and exact word quads.

Run once on a workstation (scikit-image for its bundled public-domain/CC0 photos, Pillow, OpenCV,
the DejaVu fonts); the outputs are committed:

    python data/make_smalltext.py

Each frame is a crop of a photo scaled up to the frame size, with 8-20 words whose ink is 8-32 px
high (about half under 16 px), some rotated up to 30 degrees, some in ink close to the background,
some blurred. Beside each ``NAME.jpg`` is ``NAME.json`` in the project's ground-truth format; each
word also carries how it was made: ``height_px`` (ink height), ``angle_deg`` (counter-clockwise),
``contrast`` (grey levels between the ink and the background under it), ``blur_sigma`` (0 = sharp),
``font`` and ``font_size``. Deterministic: a fixed seed gives the same files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
from make_images import FONTS, PHOTOS, WORDS
from PIL import Image
from textrender import blend, bounds, coverage, glyphs_of_height, ink_colour, luma, overlaps, placement, quad_of

FRAMES = [(1280, 720)] * 6 + [(1920, 1080)] * 4  # width, height
FRAME_PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]
SEED = 2026
EDGE_MARGIN = 6  # px between a word and the frame border
WORD_GAP = 6  # px between the boxes of two words
JPEG_QUALITY = 92


def background(photo: str, size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """A random crop of the photo at the frame's aspect ratio, scaled to the frame (float32 RGB)."""
    pixels = np.asarray(Image.fromarray(PHOTOS[photo][0]()).convert("RGB"))
    height, width = pixels.shape[:2]
    crop_w = min(width, round(height * size[0] / size[1]))
    crop_w = rng.randint(int(crop_w * 0.7), crop_w)
    crop_h = round(crop_w * size[1] / size[0])
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    crop = pixels[top : top + crop_h, left : left + crop_w]
    return cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC).astype(np.float32)


def word_style(rng: random.Random) -> dict:
    small = rng.random() < 0.55
    return {
        "height": rng.uniform(8, 15.4) if small else rng.uniform(16, 32),
        "angle": rng.choice([-1, 1]) * rng.uniform(5, 30) if rng.random() < 0.35 else 0.0,
        "low_contrast": rng.random() < 0.25,
        "blur_sigma": round(rng.uniform(0.7, 1.2), 2) if rng.random() < 0.3 else 0.0,
        "font": rng.choice(FONTS),
    }


def place_word(frame: np.ndarray, text: str, style: dict, taken: list, rng: random.Random) -> dict | None:
    """Draw one word where it fits (inside the frame, clear of other words); its label, or None."""
    glyphs = glyphs_of_height(text, style["font"], style["height"])
    ink_height, ink_width = glyphs.mask.shape
    if not 8 <= ink_height <= 32:
        return None
    height, width = frame.shape[:2]
    for _ in range(50):
        top_left = (rng.randint(0, width - ink_width), rng.randint(0, height - ink_height))
        matrix = placement(glyphs.mask.shape, style["angle"], top_left)
        quad = quad_of(glyphs.mask.shape, matrix)
        box = bounds(quad, WORD_GAP / 2)
        inside = quad.min() >= EDGE_MARGIN and quad[:, 0].max() <= width - EDGE_MARGIN \
            and quad[:, 1].max() <= height - EDGE_MARGIN
        if inside and not overlaps(box, taken):
            break
    else:
        return None
    alpha = coverage(glyphs.mask, matrix, (height, width), style["blur_sigma"])
    under = (frame * alpha[..., None]).sum(axis=(0, 1)) / alpha.sum()
    ink = ink_colour(under, style["low_contrast"], rng)
    blend(frame, alpha, ink)
    taken.append(box)
    return {
        "poly": quad.round(2).tolist(), "text": text, "ignore": False,
        "height_px": ink_height, "angle_deg": round(style["angle"], 2),
        "contrast": round(float(abs(luma(ink) - luma(under))), 1), "blur_sigma": style["blur_sigma"],
        "font": style["font"], "font_size": glyphs.font_size,
    }


def make_frame(photo: str, size: tuple[int, int], rng: random.Random) -> tuple[np.ndarray, list[dict]]:
    frame = background(photo, size, rng)
    wanted = rng.randint(8, 20)
    texts = rng.sample(WORDS, len(WORDS))
    taken: list = []
    labels: list[dict] = []
    for text in texts:
        if len(labels) == wanted:
            break
        label = place_word(frame, text, word_style(rng), taken, rng)
        if label is not None:
            labels.append(label)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8), labels


def main() -> None:
    folder = Path(__file__).resolve().parent / "smalltext"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.*"):
        old.unlink()
    rng = random.Random(SEED)
    for index, size in enumerate(FRAMES):
        photo = FRAME_PHOTOS[index % len(FRAME_PHOTOS)]
        pixels, labels = make_frame(photo, size, rng)
        name = f"{photo}_{size[0]}x{size[1]}_{index:02d}"
        Image.fromarray(pixels).save(folder / f"{name}.jpg", quality=JPEG_QUALITY)
        record = {"image": f"{name}.jpg", "photo": photo, "licence": PHOTOS[photo][1], "words": labels}
        (folder / f"{name}.json").write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
