"""CRAFT score maps -> word boxes, with the semantics of the official ``getDetBoxes_core``.

The official code thresholds the region map at ``low_text`` and the affinity map at
``link_threshold``, labels the union with 4-connectivity, drops components under 10 pixels or whose
peak region score is under ``text_threshold``, removes pure-link pixels, dilates each component
by a size-dependent square, and fits a minimum-area rectangle (axis-aligned when it is nearly
square), ordered clockwise from the corner with the smallest x+y.

The official code allocates a full-size map for every component, so its cost grows with
components x pixels. Everything it does to a component happens inside the component's bounding box
grown by the dilation margin, so we do the same work on that crop only: identical boxes, cost
proportional to the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MIN_COMPONENT_PIXELS = 10


@dataclass(frozen=True)
class Thresholds:
    """CRAFT's three thresholds, official defaults."""

    text: float = 0.7
    link: float = 0.4
    low_text: float = 0.4


@dataclass(frozen=True)
class Box:
    """A word box: four (x, y) corners clockwise from top-left, and its peak region score."""

    points: np.ndarray  # (4, 2) float32
    score: float

    def scaled(self, factor: float) -> Box:
        return Box(points=self.points * np.float32(factor), score=self.score)


def _oriented_box(points: np.ndarray) -> np.ndarray:
    box = cv2.boxPoints(cv2.minAreaRect(points))
    side_a = np.linalg.norm(box[0] - box[1])
    side_b = np.linalg.norm(box[1] - box[2])
    if abs(1 - max(side_a, side_b) / (min(side_a, side_b) + 1e-5)) <= 0.1:
        left, top = points.min(axis=0)
        right, bottom = points.max(axis=0)
        box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32)
    start = int(box.sum(axis=1).argmin())
    return np.roll(box, 4 - start, axis=0).astype(np.float32)


def detect_boxes(region: np.ndarray, affinity: np.ndarray, thresholds: Thresholds = Thresholds()) -> list[Box]:
    """Word boxes in score-map pixels from the (H, W) float region and affinity maps."""
    text_mask = region > thresholds.low_text
    link_mask = affinity > thresholds.link
    link_only = link_mask & ~text_mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (text_mask | link_mask).astype(np.uint8), connectivity=4
    )
    map_h, map_w = region.shape
    boxes: list[Box] = []
    for label in range(1, count):
        x, y, w, h, size = (int(v) for v in stats[label])
        if size < MIN_COMPONENT_PIXELS:
            continue
        in_component = labels[y : y + h, x : x + w] == label
        peak = float(region[y : y + h, x : x + w][in_component].max())
        if peak < thresholds.text:
            continue
        margin = int(math.sqrt(size * min(w, h) / (w * h)) * 2)
        top, left = max(y - margin, 0), max(x - margin, 0)
        bottom, right = min(y + h + margin + 1, map_h), min(x + w + margin + 1, map_w)
        segment = (labels[top:bottom, left:right] == label) & ~link_only[top:bottom, left:right]
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + margin, 1 + margin))
        segment = cv2.dilate(segment.astype(np.uint8), kernel)
        rows, cols = np.nonzero(segment)
        points = np.stack([cols + left, rows + top], axis=1).astype(np.int32)
        boxes.append(Box(points=_oriented_box(points), score=peak))
    return boxes
