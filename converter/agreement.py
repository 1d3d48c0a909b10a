"""How closely a converted variant reproduces PyTorch: score-map differences and box agreement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.detection.boxes import MatchCount, match_boxes
from edge.detection.detector import ScoreFn
from edge.detection.postprocess import Thresholds, detect_boxes
from edge.models.manifest import Agreement

MIN_IOU = 0.5


@dataclass(frozen=True)
class Reference:
    """The PyTorch model's output on one validation input."""

    pixels: np.ndarray  # (H, W, 3) uint8, the model input
    scores: np.ndarray  # (H/2, W/2, 2) float32
    boxes: list[np.ndarray]  # (4, 2) corners in score-map pixels


def make_reference(pixels: np.ndarray, scores: np.ndarray, thresholds: Thresholds) -> Reference:
    boxes = [box.points for box in detect_boxes(scores[..., 0], scores[..., 1], thresholds)]
    return Reference(pixels=pixels, scores=scores, boxes=boxes)


@dataclass(frozen=True)
class Measured:
    agreement: Agreement
    boxes: list[list[np.ndarray]]  # per reference input, in score-map pixels


def measure_agreement(score_fn: ScoreFn, references: list[Reference], thresholds: Thresholds) -> Measured:
    """Run ``score_fn`` on every reference input and compare maps and boxes with PyTorch's."""
    all_boxes = []
    max_diff = np.zeros(2)
    sum_diff = np.zeros(2)
    count = MatchCount(0, 0, 0)
    for reference in references:
        scores = score_fn(reference.pixels)
        diff = np.abs(scores - reference.scores).reshape(-1, 2)
        max_diff = np.maximum(max_diff, diff.max(axis=0))
        sum_diff += diff.mean(axis=0)
        boxes = [box.points for box in detect_boxes(scores[..., 0], scores[..., 1], thresholds)]
        count = count + match_boxes(boxes, reference.boxes, MIN_IOU)
        all_boxes.append(boxes)
    mean_diff = sum_diff / max(len(references), 1)
    agreement = Agreement(
        reference="pytorch-fp32",
        images=len(references),
        region_max_abs_diff=float(max_diff[0]),
        region_mean_abs_diff=float(mean_diff[0]),
        affinity_max_abs_diff=float(max_diff[1]),
        affinity_mean_abs_diff=float(mean_diff[1]),
        min_iou=MIN_IOU,
        boxes_reference=count.references,
        boxes_variant=count.detections,
        box_precision=round(count.precision, 4),
        box_recall=round(count.recall, 4),
    )
    return Measured(agreement=agreement, boxes=all_boxes)
