"""Post-processing cost: per-component crops (ours) against the official full-size-map algorithm.

    python bench/postprocess.py

Synthetic score maps at CRAFT's output size for 480x640 and 736x1280 inputs, from sparse (a few
words) to dense (a page of small words). Both are timed in the same run; the ratio shows the
official cost growing with components x pixels while ours grows with pixels.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.official_craft import dense_text_maps, official_boxes
from edge.detection.postprocess import detect_boxes


def median_ms(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


CASES = [
    ("480x640 sparse", (240, 320), (3, 2)),
    ("480x640 dense", (240, 320), (20, 8)),
    ("736x1280 sparse", (368, 640), (3, 2)),
    ("736x1280 dense", (368, 640), (30, 16)),
]


def measure() -> list[tuple[str, int, float, float]]:
    """(case, boxes, official ms, ours ms) for each case, both timed in this run."""
    rows = []
    for label, (height, width), (rows_, columns) in CASES:
        region, affinity = dense_text_maps(height, width, rows_, columns)
        boxes = len(detect_boxes(region, affinity))
        runs = 3 if "dense" in label else 10
        official = median_ms(lambda r=region, a=affinity: official_boxes(r, a), runs)
        ours = median_ms(lambda r=region, a=affinity: detect_boxes(r, a), runs)
        rows.append((label, boxes, official, ours))
    return rows


def main() -> int:
    print(f"{'map':<18} {'boxes':>6} {'official ms':>12} {'ours ms':>8} {'speed-up':>9}")
    for label, boxes, official, ours in measure():
        print(f"{label:<18} {boxes:>6} {official:>12.1f} {ours:>8.1f} {official / ours:>8.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
