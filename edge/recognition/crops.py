"""A word's four corners -> an upright grey crop, the recognizer's input before resizing."""

from __future__ import annotations

import cv2
import numpy as np

# Context around the quad on every side, as a fraction of the word's height (bench/recognition.py
# --margins measures it on labelled words).
MARGIN = 0.1


def word_crop(rgb: np.ndarray, quad: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """Upright grey uint8 (h, w) crop of a word's four corners (any rotation; perspective warp; small margin;
    the crop's own height decides the scale).

    ``rgb`` may also be the frame already made grey (many words of one frame: convert it once).
    ``quad`` is (4, 2) x, y in ``rgb``'s pixels, clockwise from the word's top-left corner as it reads
    (ICDAR's order): the edge from corner 0 to corner 1 becomes the crop's top, so a word rotated by any
    angle comes out upright. The crop keeps the quad's own size (the mean lengths of its opposite sides),
    so no detail is thrown away before the reader scales it to the model's height. ``margin`` widens the
    quad on every side by that fraction of its height.
    """
    corners = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    if not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got {rgb.shape}")
    if not np.isfinite(corners).all():
        raise ValueError(f"quad {corners.tolist()} has a corner that is not a number")
    top, right, bottom, left = (np.linalg.norm(corners[(i + 1) % 4] - corners[i]) for i in range(4))
    width, height = (top + bottom) / 2, (left + right) / 2
    if width < 1 or height < 1:
        raise ValueError(f"quad {corners.tolist()} encloses no area")
    along = (corners[1] - corners[0] + corners[2] - corners[3]) / (2 * width)  # unit vector of the text line
    down = (corners[3] - corners[0] + corners[2] - corners[1]) / (2 * height)  # unit vector top -> bottom
    pad = margin * height
    grown = corners + pad * np.array([-along - down, along - down, along + down, -along + down])
    out_w, out_h = max(1, round(width + 2 * pad)), max(1, round(height + 2 * pad))
    if max(out_w, out_h) > 2 * sum(rgb.shape[:2]):  # far larger than the picture: no word of it
        raise ValueError(f"quad {corners.tolist()} is far larger than the {rgb.shape[1]}x{rgb.shape[0]} picture")
    target = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(grown.astype(np.float32), target)
    grey = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.warpPerspective(grey, warp, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
