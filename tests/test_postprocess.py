"""CRAFT box extraction semantics on hand-made score maps."""

from __future__ import annotations

import numpy as np

from edge.detection.postprocess import Thresholds, detect_boxes


def blank(h: int = 60, w: int = 100) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)


def test_two_characters_joined_by_a_link_give_one_word() -> None:
    region, affinity = blank()
    region[20:30, 10:20] = 0.9
    region[20:30, 30:40] = 0.9
    affinity[22:28, 18:32] = 0.8
    boxes = detect_boxes(region, affinity)
    assert len(boxes) == 1
    (left, top), (right, bottom) = boxes[0].points.min(axis=0), boxes[0].points.max(axis=0)
    assert left <= 10 and right >= 39 and top <= 20 and bottom >= 29
    assert boxes[0].score == np.float32(0.9)


def test_without_link_two_words_and_clockwise_from_top_left() -> None:
    region, affinity = blank()
    region[20:30, 10:20] = 0.9
    region[20:30, 50:70] = 0.8
    boxes = sorted(detect_boxes(region, affinity), key=lambda b: b.points[0, 0])
    assert len(boxes) == 2
    for box in boxes:
        assert np.argmin(box.points.sum(axis=1)) == 0  # first corner is the top-left one
        assert box.points[1, 0] > box.points[0, 0] and box.points[2, 1] > box.points[1, 1]


def test_weak_and_tiny_components_are_dropped() -> None:
    region, affinity = blank()
    region[5:15, 5:15] = 0.5  # above low_text but its peak is under text_threshold
    region[40:43, 40:43] = 0.95  # 9 pixels: under the 10-pixel minimum
    assert detect_boxes(region, affinity) == []
    assert len(detect_boxes(region, affinity, Thresholds(text=0.45))) == 1
