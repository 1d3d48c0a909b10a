"""Render one word into a frame with an exact ground-truth quad (shared by make_smalltext.py and make_clip.py).

A word is drawn as a tight ink mask (a DejaVu font at the size that gives the wanted ink height),
rotated and placed by one affine map, optionally blurred, and blended onto the frame in a flat ink
colour. The ground-truth quad is the ink box of the mask mapped by the same affine map, in pixel-edge
coordinates (a pixel ``i`` spans ``[i, i + 1)``), clockwise from the word's top-left corner.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_REFERENCE_SIZE = 100


@dataclass(frozen=True)
class Glyphs:
    """The tight ink mask of a word (uint8, 255 = full ink) and the font size that drew it."""

    mask: np.ndarray
    font_size: int


def ink_mask(text: str, font_file: str, font_size: int) -> np.ndarray:
    font = ImageFont.truetype(str(FONT_DIR / font_file), font_size)
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=font, fill=255)
    mask = np.asarray(canvas)
    rows, cols = np.nonzero(mask)
    return mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].copy()


def glyphs_of_height(text: str, font_file: str, ink_height: float) -> Glyphs:
    """The word at the font size whose ink is closest to ``ink_height`` pixels high."""
    reference = ink_mask(text, font_file, _REFERENCE_SIZE).shape[0]
    guess = max(4, round(ink_height * _REFERENCE_SIZE / reference))
    candidates = [(size, ink_mask(text, font_file, size)) for size in range(max(4, guess - 2), guess + 3)]
    size, mask = min(candidates, key=lambda c: (abs(c[1].shape[0] - ink_height), c[0]))
    return Glyphs(mask=mask, font_size=size)


def placement(mask_shape: tuple[int, int], angle_deg: float, top_left: tuple[float, float]) -> np.ndarray:
    """Affine map (2x3, pixel-centre coordinates) from the mask to the frame: rotate about the mask's
    centre by ``angle_deg`` (counter-clockwise on screen), then put the unrotated top-left at ``top_left``."""
    height, width = mask_shape
    centre = ((width - 1) / 2, (height - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
    matrix[:, 2] += np.asarray(top_left, dtype=np.float64)
    return matrix


def quad_of(mask_shape: tuple[int, int], matrix: np.ndarray) -> np.ndarray:
    """The mask's ink box under ``matrix``, in pixel-edge coordinates, clockwise from top-left."""
    height, width = mask_shape
    return box_quad((0, 0, width, height), matrix)


def box_quad(box: tuple[int, int, int, int], matrix: np.ndarray) -> np.ndarray:
    """The pixels ``x0 <= x < x1``, ``y0 <= y < y1`` of a mask (``box`` = x0, y0, x1, y1) under ``matrix``,
    in pixel-edge coordinates, clockwise from top-left."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64) - 0.5
    return corners @ matrix[:, :2].T + matrix[:, 2] + 0.5


def coverage(mask: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, int], blur_sigma: float) -> np.ndarray:
    """Ink coverage (0..1, float32) of the placed word over the whole frame."""
    height, width = frame_shape
    alpha = cv2.warpAffine(mask.astype(np.float32) / 255.0, matrix, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    if blur_sigma > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur_sigma)
    return alpha


def blend(frame: np.ndarray, alpha: np.ndarray, ink: tuple[float, float, float]) -> None:
    """Paint ``ink`` (RGB) over the float frame in place, weighted by ``alpha``."""
    weight = alpha[..., None]
    frame *= 1.0 - weight
    frame += weight * np.asarray(ink, dtype=np.float32)


def ink_colour(unders: np.ndarray, low_contrast: bool, rng: random.Random) -> tuple[float, float, float]:
    """Ink for a word over the background colours ``unders`` (RGB, one row per stretch of the word, or
    a single mean): a shade 20-40 grey levels beyond the lightest (or darkest) of them, or far from them
    all. Judged against every stretch, not only their mean, so that a word lying across a light and a
    dark patch stays legible along its whole length; with one colour, the shade of it or far from it."""
    unders = np.atleast_2d(np.asarray(unders, dtype=np.float64))
    lumas = luma(unders)
    lighter = lumas.min() + lumas.max() < 256  # more room above the lightest than below the darkest
    if low_contrast:
        step = rng.uniform(20, 40) * (1 if lighter else -1)
        base = unders[lumas.argmax() if lighter else lumas.argmin()]
        return tuple(float(np.clip(c + step, 0, 255)) for c in base)
    if not lighter:
        return tuple(float(rng.randint(0, 60)) for _ in range(3))
    return tuple(float(rng.randint(200, 255)) for _ in range(3))


def least_contrast(ink: tuple[float, float, float], unders: np.ndarray) -> float:
    """Grey levels (luma) between the ink and the stretch of background closest to it."""
    return round(float(np.abs(luma(ink) - luma(np.atleast_2d(unders))).min()), 1)


def luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def bounds(quad: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Axis-aligned box around the quad, grown by ``margin`` on every side."""
    return (quad[:, 0].min() - margin, quad[:, 1].min() - margin, quad[:, 0].max() + margin,
            quad[:, 1].max() + margin)


def overlaps(box: tuple[float, float, float, float], taken: list[tuple[float, float, float, float]]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken)
