"""Polygon IoU and one-to-one matching."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detection.boxes import MatchCount, match_boxes, polygon_iou


def square(x: float, y: float, size: float = 10) -> np.ndarray:
    return np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=np.float32)


def test_iou_values() -> None:
    assert polygon_iou(square(0, 0), square(0, 0)) == pytest.approx(1.0)
    assert polygon_iou(square(0, 0), square(20, 20)) == 0.0
    assert polygon_iou(square(0, 0), square(5, 0)) == pytest.approx(50 / 150)


def test_matching_is_one_to_one() -> None:
    references = [square(0, 0)]
    detections = [square(0, 0), square(1, 0)]  # both overlap the one reference
    count = match_boxes(detections, references)
    assert count == MatchCount(1, 2, 1)
    assert count.precision == 0.5 and count.recall == 1.0
    assert count.hmean == pytest.approx(2 / 3)


def test_below_threshold_does_not_match_and_counts_add() -> None:
    count = match_boxes([square(0, 0)], [square(6, 0)]) + match_boxes([], [square(0, 0)])
    assert count == MatchCount(0, 1, 2)
    assert count.precision == 0.0 and count.recall == 0.0 and count.hmean == 0.0
