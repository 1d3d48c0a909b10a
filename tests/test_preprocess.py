"""Letterboxing: the resized frame keeps its proportions to the pixel, so boxes map back where they were."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detection.preprocess import letterbox


@pytest.mark.parametrize(("width", "input_w"), [(999, 500), (1919, 640), (1283, 640)])
def test_a_mark_at_the_far_edge_maps_back_within_half_a_model_pixel(width: int, input_w: int) -> None:
    """Sizes were truncated: a 999 px frame at scale 0.5 became 499 px, not 500, and boxes near its right
    edge came back up to 1/scale (2) source pixels off."""
    rgb = np.zeros((200, width, 3), np.uint8)
    rgb[:, width - 8:] = 255  # a white band at the right edge
    frame = letterbox(rgb, (200, input_w), scale=input_w / width * 0.9999)
    columns = np.flatnonzero(frame.pixels[10, :, 0] > 127)
    right_edge = (columns.max() + 1) / frame.scale  # the band's right edge, mapped back to the source
    assert abs(right_edge - width) <= 0.5 / frame.scale, (right_edge, width)
