"""A grey crop -> the recognizer's input: scaled to its height, contrast stretched, padded to one of its widths.

As EasyOCR prepares ``english_g2``'s input (bilinear resize to the model's height keeping the aspect
ratio, then padding on the right by repeating the last column: its ``NormalizePAD``), with one step
EasyOCR takes only for words it read with a score under 0.1: every crop's contrast is stretched, its
10th..90th percentile grey levels to 25..225. Stretching every crop reads more words right on each set
measured (dynamic recognizer, case-insensitive alphanumeric accuracy on ground-truth crops, EasyOCR's
second look before -> every crop stretched, ``bench/recognition.py``, 2026-12-06): IIIT5K 0.884 -> 0.888,
SVT 0.556 -> 0.584, ICDAR 2015 train words 0.386 -> 0.411, and 133 -> 138 of the project's 166 rendered
words exactly. Other percentiles (5/95, 2/98, 0/100) and targets (0..255) gained less, and a further
look at low-score words with other stretches or margins gained under a point.
The pixel normalisation ((x/255 - 0.5)/0.5) is inside the converted model, which takes grey pixels 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

STRETCHED = (25, 225)  # where a crop's 10th and 90th percentile grey levels go
MIN_SPREAD = 20.0  # grey levels: a flatter crop is stretched at most 10-fold (10 and 30 read the same)
THIN_INK = 0.3  # 10th..90th spread under this share of the 1st..99th: ink too thin for them


def scaled_width(shape: tuple[int, int], height: int) -> int:
    """The width of a (h, w) crop scaled to ``height``, keeping its aspect ratio (at least 1)."""
    crop_h, crop_w = shape
    return max(1, int(height * crop_w / crop_h))


def fit(crop: np.ndarray, height: int, widths: Sequence[int]) -> np.ndarray:
    """``crop`` scaled to ``height``, its contrast stretched, and padded to the narrowest of ``widths``
    (ascending) it fits; a crop wider than the widest is squeezed to it."""
    if crop.ndim != 2 or crop.dtype != np.uint8 or min(crop.shape) == 0:
        raise ValueError(f"expected a non-empty grey uint8 (h, w) crop, got {crop.dtype} {crop.shape}")
    width = scaled_width(crop.shape, height)
    target = next((w for w in widths if w >= width), widths[-1])
    width = min(width, target)
    scaled = stretch_contrast(cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR))
    if width == target:
        return scaled
    return np.concatenate([scaled, np.repeat(scaled[:, -1:], target - width, axis=1)], axis=1)


def stretch_contrast(crop: np.ndarray) -> np.ndarray:
    """``crop`` with its 10th..90th percentile grey levels stretched linearly to STRETCHED (clipped).

    Those percentiles are ink and background when each covers a tenth of the crop or more. Thinner ink (a
    short word in a wide box, a display's rectangle read whole) leaves both percentiles on the background,
    which would then go dark with the ink: when they span under THIN_INK of the 1st..99th percentiles,
    those are stretched instead. A spread under MIN_SPREAD levels is stretched about its middle as if it
    were MIN_SPREAD, so that a blank crop stays mid-grey and its noise is not blown up to the full range.
    EasyOCR's ``adjust_contrast_grey`` maps the same percentiles but adds 25 before scaling, which sends
    a faint crop (spread under about 60 levels) to white."""
    darkest, low, high, lightest = np.percentile(crop, (1, 10, 90, 99))
    if high - low < THIN_INK * (lightest - darkest):
        low, high = darkest, lightest
    ratio = (STRETCHED[1] - STRETCHED[0]) / max(MIN_SPREAD, high - low)
    middle = (STRETCHED[0] + STRETCHED[1]) / 2
    return np.clip((crop.astype(np.float32) - (low + high) / 2) * ratio + middle, 0, 255).astype(np.uint8)
