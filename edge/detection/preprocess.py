"""Frame -> model input: letterbox an RGB frame into the model's fixed input size.

CRAFT's official pre-processing resizes keeping the aspect ratio and pads the bottom/right with
black (raw 0) pixels before normalising; our models normalise inside the graph, so the device
only resizes and pads uint8 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """A letterboxed frame and how to map model-input pixels back to the source frame."""

    pixels: np.ndarray  # (H, W, 3) uint8 RGB, the model's input size
    scale: float  # source pixel * scale = model-input pixel
    source_hw: tuple[int, int]


def letterbox(rgb: np.ndarray, input_hw: tuple[int, int], scale: float | None = None) -> Letterbox:
    """Resize ``rgb`` (H, W, 3 uint8) to fit ``input_hw`` keeping its aspect ratio; pad with 0.

    ``scale`` overrides the fitted scale (used to reproduce CRAFT's canvas/mag-ratio rule).
    """
    height, width = rgb.shape[:2]
    in_h, in_w = input_hw
    if scale is None:
        scale = min(in_h / height, in_w / width)
    resized = resize(rgb, scale)[:in_h, :in_w]
    canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
    canvas[:resized.shape[0], :resized.shape[1]] = resized
    return Letterbox(pixels=canvas, scale=scale, source_hw=(height, width))


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    """``rgb`` at ``scale`` times its size, resized as ``letterbox`` resizes (so both see the same pixels).

    Sizes are rounded, not truncated: boxes are mapped back with ``scale``, and a side one pixel short
    would put the far edge's boxes up to 1/scale pixels off."""
    if scale == 1.0:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


def craft_canvas(source_hw: tuple[int, int], canvas_size: int, mag_ratio: float) -> tuple[tuple[int, int], float]:
    """The input size and scale CRAFT's official ``resize_aspect_ratio`` would use for a frame.

    The long side becomes ``mag_ratio * long side`` capped at ``canvas_size``; both sides are then
    padded up to a multiple of 32.
    """
    height, width = source_hw
    long_side = max(height, width)
    scale = min(mag_ratio * long_side, canvas_size) / long_side
    target_h, target_w = int(height * scale), int(width * scale)
    return (-(-target_h // 32) * 32, -(-target_w // 32) * 32), scale
