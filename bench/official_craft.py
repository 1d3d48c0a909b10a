"""CRAFT's official box extraction (``getDetBoxes_core``, craft_utils.py), written out plainly.

It allocates a full-size segmentation map for every component, so its cost grows with
components x pixels. It is the baseline that ``edge.detection.postprocess.detect_boxes`` must reproduce
exactly (tests) and beat on dense text (``bench/postprocess.py``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def official_boxes(textmap: np.ndarray, linkmap: np.ndarray, text_threshold: float = 0.7,
                   link_threshold: float = 0.4, low_text: float = 0.4) -> list[np.ndarray]:
    img_h, img_w = textmap.shape
    _, text_score = cv2.threshold(textmap, low_text, 1, 0)
    _, link_score = cv2.threshold(linkmap, link_threshold, 1, 0)
    text_score_comb = np.clip(text_score + link_score, 0, 1)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(text_score_comb.astype(np.uint8), connectivity=4)
    boxes = []
    for k in range(1, n_labels):
        size = stats[k, cv2.CC_STAT_AREA]
        if size < 10:
            continue
        if np.max(textmap[labels == k]) < text_threshold:
            continue
        segmap = np.zeros(textmap.shape, dtype=np.uint8)
        segmap[labels == k] = 255
        segmap[np.logical_and(link_score == 1, text_score == 0)] = 0
        x, y = stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_TOP]
        w, h = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]
        niter = int(math.sqrt(size * min(w, h) / (w * h)) * 2)
        sx, ex, sy, ey = x - niter, x + w + niter + 1, y - niter, y + h + niter + 1
        sx, sy = max(sx, 0), max(sy, 0)
        ex, ey = min(ex, img_w), min(ey, img_h)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + niter, 1 + niter))
        segmap[sy:ey, sx:ex] = cv2.dilate(segmap[sy:ey, sx:ex], kernel)
        np_contours = np.roll(np.array(np.where(segmap != 0)), 1, axis=0).transpose().reshape(-1, 2)
        rectangle = cv2.minAreaRect(np_contours.astype(np.int32))
        box = cv2.boxPoints(rectangle)
        w, h = np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[1] - box[2])
        box_ratio = max(w, h) / (min(w, h) + 1e-5)
        if abs(1 - box_ratio) <= 0.1:
            left, right = min(np_contours[:, 0]), max(np_contours[:, 0])
            top, bottom = min(np_contours[:, 1]), max(np_contours[:, 1])
            box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32)
        start = box.sum(axis=1).argmin()
        boxes.append(np.roll(box, 4 - start, 0))
    return boxes


def dense_text_maps(height: int, width: int, rows: int, columns: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Score maps of a page of small words: ``rows x columns`` words of 3-6 linked characters."""
    rng = np.random.default_rng(seed)
    region = np.zeros((height, width), np.float32)
    affinity = np.zeros((height, width), np.float32)
    cell_h, cell_w = height // rows, width // columns
    for r in range(rows):
        for c in range(columns):
            top, left = r * cell_h + 2, c * cell_w + 2
            char_w, char_h = max(3, cell_w // 8), max(3, cell_h // 2)
            chars = int(rng.integers(3, 7))
            for i in range(chars):
                x = left + i * (char_w + 1)
                if x + char_w >= left + cell_w - 2:
                    break
                centre = (x + char_w // 2, top + char_h // 2)
                cv2.circle(region, centre, max(1, char_h // 2), float(rng.uniform(0.75, 0.95)), -1)
                if i:
                    affinity[top + char_h // 4: top + 3 * char_h // 4, x - char_w // 2: x + char_w // 2] = 0.6
    return region, affinity
