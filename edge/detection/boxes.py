"""Comparing sets of quadrilateral boxes: polygon IoU, one-to-one matching, and whether a frame's boxes changed."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.detection.postprocess import Box

UNCHANGED_IOU = 0.7  # boxes matched one-to-one at this IoU count as the same (publish: on_change, snapshots)


def polygon_area(points: np.ndarray) -> float:
    return abs(float(cv2.contourArea(np.asarray(points, dtype=np.float32))))


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two convex quadrilaterals given as (4, 2) point arrays."""
    a32, b32 = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    inter, _ = cv2.intersectConvexConvex(a32, b32)
    union = polygon_area(a32) + polygon_area(b32) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True)
class MatchCount:
    """Matched pairs out of how many detections and how many reference boxes."""

    matched: int
    detections: int
    references: int
    empty: float = 1.0  # precision with no detections, recall with no references

    def __add__(self, other: MatchCount) -> MatchCount:
        return MatchCount(
            self.matched + other.matched, self.detections + other.detections, self.references + other.references,
            self.empty,
        )

    @property
    def precision(self) -> float:
        return self.matched / self.detections if self.detections else self.empty

    @property
    def recall(self) -> float:
        return self.matched / self.references if self.references else self.empty

    @property
    def hmean(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def match_boxes(detections: list[np.ndarray], references: list[np.ndarray], min_iou: float = 0.5) -> MatchCount:
    """One-to-one matching, best IoU first; a pair counts when its IoU is at least ``min_iou``."""
    pairs = []
    for i, det in enumerate(detections):
        for j, ref in enumerate(references):
            iou = polygon_iou(det, ref)
            if iou >= min_iou:
                pairs.append((iou, i, j))
    used_det, used_ref = set(), set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_det and j not in used_ref:
            used_det.add(i)
            used_ref.add(j)
    return MatchCount(len(used_det), len(detections), len(references))


def boxes_changed(new: list[Box], old: list[Box] | None) -> bool:
    """``publish: on_change`` and snapshots: the boxes differ from ``old`` (None: nothing to compare with)."""
    if old is None or len(new) != len(old):
        return True
    return match_boxes([b.points for b in new], [b.points for b in old], UNCHANGED_IOU).matched != len(new)
