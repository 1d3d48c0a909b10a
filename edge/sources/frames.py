"""Turning whatever a source delivers into a (H, W, 3) uint8 RGB frame, or refusing it."""

from __future__ import annotations

import cv2
import numpy as np

from edge.sources import BadFrame

MIN_SIDE = 8


def as_rgb_frame(image: np.ndarray | None, order: str = "BGR") -> np.ndarray:
    """Grayscale, BGR/RGB and 4-channel images -> RGB; empty, tiny or odd shapes -> ``BadFrame``."""
    if image is None or not isinstance(image, np.ndarray) or image.size == 0:
        raise BadFrame("empty frame")
    if image.dtype != np.uint8:
        raise BadFrame(f"frame dtype {image.dtype}, expected uint8")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise BadFrame(f"frame shape {image.shape} is not an image")
    if min(image.shape[:2]) < MIN_SIDE:
        raise BadFrame(f"frame {image.shape[1]}x{image.shape[0]} is smaller than {MIN_SIDE} px")
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if order == "BGR" else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if order == "BGR" else np.ascontiguousarray(image)
