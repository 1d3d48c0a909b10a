"""Frames for int8 calibration and for validation, letterboxed to the model's input size.

The default calibration set (``converter/calibration_frames/``) is scene text the project made:
words in DejaVu fonts rendered onto public-domain/CC0 photos (see ``data/README.md``). Frames from
the user's own camera (``--calibration DIR``) are better: they match the light and text the device
will actually see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.imageio import ImageError, list_images, read_rgb
from edge.preprocess import letterbox

DEFAULT_CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration_frames"
DEFAULT_VALIDATION_DIR = Path(__file__).resolve().parent.parent / "edge" / "samples"


class FramesError(ValueError):
    """A calibration or validation folder is missing, empty or holds an unreadable image."""


@dataclass(frozen=True)
class Frame:
    name: str
    rgb: np.ndarray  # the image as read, (H, W, 3) uint8


def read_frames(folder: Path, purpose: str) -> list[Frame]:
    """Every image in ``folder``; one unreadable file fails the whole set, naming the file."""
    try:
        paths = list_images(folder)
        if not paths:
            raise FramesError(f"{purpose} folder {folder} holds no images (.jpg, .png, ...)")
        return [Frame(name=path.name, rgb=read_rgb(path)) for path in paths]
    except ImageError as exc:
        raise FramesError(f"{purpose}: {exc}") from exc


def model_inputs(frames: list[Frame], input_hw: tuple[int, int]) -> list[np.ndarray]:
    """Each frame letterboxed to ``input_hw``: (H, W, 3) uint8 pixels, what the model takes."""
    return [letterbox(frame.rgb, input_hw).pixels for frame in frames]
