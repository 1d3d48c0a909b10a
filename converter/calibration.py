"""Frames for int8 calibration and for validation: letterboxed to the model's input size, or cut
into crops of it at the frames' own scale (what a tile model sees at work).

The default calibration set (``converter/calibration_frames/``) is scene text the project made:
words in DejaVu fonts rendered onto public-domain/CC0 photos (see ``data/README.md``). Frames from
the user's own camera (``--calibration DIR``) are better: they match the light and text the device
will actually see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.detection.preprocess import letterbox
from edge.detection.tiling import Tile, crop
from edge.sources.imageio import ImageError, list_images, read_rgb

DEFAULT_CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration_frames"
CALIBRATION_CROPS = 48  # twice the default frames: the tile model's calibration takes about a minute
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


def _starts(length: int, side: int) -> list[int]:
    """Crop origins along one axis: side by side, the last one flush with the end."""
    if length <= side:
        return [0]
    return sorted({*range(0, length - side, side), length - side})


def native_crops(frames: list[Frame], input_hw: tuple[int, int], most: int = CALIBRATION_CROPS) -> list[np.ndarray]:
    """Crops of ``input_hw`` cut from the frames at their own scale (black beyond a frame smaller
    than the crop): the pixels a tile model sees, for calibrating it. The frames are covered side
    by side; of more than ``most`` crops, ``most`` evenly spread ones are kept (calibration runs a
    float model slowly: about a second a 288x288 crop here)."""
    crops = []
    for frame in frames:
        height, width = frame.rgb.shape[:2]
        for top in _starts(height, input_hw[0]):
            for left in _starts(width, input_hw[1]):
                crops.append(crop(frame.rgb, Tile.window(top, left, input_hw), input_hw))
    if len(crops) <= most:
        return crops
    return [crops[index] for index in np.linspace(0, len(crops) - 1, most).round().astype(int)]
