"""A grey crop -> the recognizer's input: scaled to its height, padded to one of its widths.

As EasyOCR prepares ``english_g2``'s input: bilinear resize to the model's height keeping the aspect
ratio, then padding on the right by repeating the last column (its ``NormalizePAD``). The pixel
normalisation ((x/255 - 0.5)/0.5) is inside the converted model, which takes grey pixels 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def scaled_width(shape: tuple[int, int], height: int) -> int:
    """The width of a (h, w) crop scaled to ``height``, keeping its aspect ratio (at least 1)."""
    crop_h, crop_w = shape
    return max(1, int(height * crop_w / crop_h))


def fit(crop: np.ndarray, height: int, widths: Sequence[int]) -> np.ndarray:
    """``crop`` scaled to ``height`` and padded to the narrowest of ``widths`` (ascending) it fits;
    a crop wider than the widest is squeezed to it."""
    if crop.ndim != 2 or crop.dtype != np.uint8 or min(crop.shape) == 0:
        raise ValueError(f"expected a non-empty grey uint8 (h, w) crop, got {crop.dtype} {crop.shape}")
    width = scaled_width(crop.shape, height)
    target = next((w for w in widths if w >= width), widths[-1])
    width = min(width, target)
    scaled = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    if width == target:
        return scaled
    return np.concatenate([scaled, np.repeat(scaled[:, -1:], target - width, axis=1)], axis=1)


def contrast(crop: np.ndarray) -> tuple[float, float, float]:
    """(contrast, high, low): the 90th and 10th percentiles and their spread relative to their sum."""
    high, low = np.percentile(crop, 90), np.percentile(crop, 10)
    return float((high - low) / max(10.0, high + low)), float(high), float(low)


def stretch_contrast(crop: np.ndarray, target: float) -> np.ndarray:
    """A low-contrast crop stretched so its 10th..90th percentiles span 25..225; a crop already above
    ``target`` contrast is returned as it is. EasyOCR's ``adjust_contrast_grey`` has the same test and
    ratio but adds its 25 before scaling, which sends the 10th percentile of a faint crop (spread
    under about 60 levels) to white with the rest."""
    level, high, low = contrast(crop)
    if level >= target:
        return crop
    ratio = 200.0 / max(10.0, high - low)
    return np.clip((crop.astype(np.float32) - low) * ratio + 25, 0, 255).astype(np.uint8)
