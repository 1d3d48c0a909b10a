"""How tall must a word be in the model's input for CRAFT to find it? Measured on data/smalltext/.

    python bench/text_size.py --model models/384x640 [--variant int8] [--threads 2]

Every ground-truth word of every frame (8-32 px of ink, exact boxes) is shown to the model at
several zooms: a window of the frame centred on the word, sized so that the letterbox scale is
``zoom`` (the whole frame at its own letterbox scale when the window would not fit), so a word's
ink height in model-input pixels is its height_px times the scale that window actually gets. A word
counts as found when a detected box overlaps its ink box at IoU >= 0.5 (the ICDAR 2015 criterion
``craft-edge eval`` uses). Printed: recall per height bin in model-input pixels, for all words and
for clean ones (upright, sharp, contrast >= 50 grey levels), the height from which recall stays at
or above ``--recall`` in every bin (the size CRAFT needs), and the ratio of CRAFT's box height to
the ink height for found words, which turns that ink height into the box height
``craft-edge frame`` measures. Figures are for the model and variant given; the machine does not
matter (no timing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config.paths import absolute  # noqa: E402
from edge.detection.detector import Detector  # noqa: E402
from edge.detection.evaluation import iou  # noqa: E402
from edge.detection.textsize import box_height  # noqa: E402
from edge.models.manifest import load_manifest  # noqa: E402
from edge.models.runtime import find_runtime, load_model  # noqa: E402
from edge.sources.imageio import read_rgb  # noqa: E402

ZOOMS = (1.0, 0.75, 0.6, 0.5, 0.4, 0.33, 0.25)
BINS = (0, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 20, 24, 32)  # lower edges, model-input pixels
MIN_CONTRAST = 50  # data/README.md: below 50 grey levels counts as low contrast


@dataclass(frozen=True)
class Sample:
    height: float  # ink height in model-input pixels
    found: bool
    clean: bool
    box_ratio: float | None  # CRAFT box height / ink height, for found words


def window(frame_hw: tuple[int, int], centre: np.ndarray, input_hw: tuple[int, int], zoom: float) -> tuple[int, ...]:
    """(x0, y0, x1, y1) of the frame's window around ``centre`` whose letterbox scale is ``zoom``."""
    height, width = frame_hw
    w, h = min(width, round(input_hw[1] / zoom)), min(height, round(input_hw[0] / zoom))
    x0 = int(np.clip(round(centre[0] - w / 2), 0, width - w))
    y0 = int(np.clip(round(centre[1] - h / 2), 0, height - h))
    return x0, y0, x0 + w, y0 + h


def measure(detector: Detector, images: Path) -> list[Sample]:
    input_hw = detector.model.input_hw
    samples = []
    for truth in sorted(images.glob("*.json")):
        words = json.loads(truth.read_text())["words"]
        rgb = read_rgb(images / json.loads(truth.read_text())["image"])
        boxes_of: dict[tuple[int, ...], list[np.ndarray]] = {}
        for word in words:
            poly = np.asarray(word["poly"], dtype=np.float64)
            clean = word["angle_deg"] == 0 and word["blur_sigma"] == 0 and word["contrast"] >= MIN_CONTRAST
            seen: set[tuple[int, ...]] = set()
            for zoom in ZOOMS:
                x0, y0, x1, y1 = rect = window(rgb.shape[:2], poly.mean(axis=0), input_hw, zoom)
                inside = poly[:, 0].min() >= x0 and poly[:, 0].max() <= x1 and poly[:, 1].min() >= y0 \
                    and poly[:, 1].max() <= y1
                if rect in seen or not inside:
                    continue
                seen.add(rect)
                if rect not in boxes_of:
                    found = detector.boxes(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
                    boxes_of[rect] = [box.points + np.array([x0, y0], dtype=np.float32) for box in found]
                scale = min(input_hw[0] / (y1 - y0), input_hw[1] / (x1 - x0))
                overlaps = [iou(points, poly) for points in boxes_of[rect]]
                best = int(np.argmax(overlaps)) if overlaps else -1
                hit = best >= 0 and overlaps[best] >= 0.5
                ratio = box_height(boxes_of[rect][best]) / word["height_px"] if hit else None
                samples.append(Sample(word["height_px"] * scale, hit, clean, ratio))
        print(f"  {truth.stem}: {len(words)} words, {len(boxes_of)} windows", file=sys.stderr, flush=True)
    return samples


def recall(samples: list[Sample]) -> str:
    return f"{sum(s.found for s in samples) / len(samples):.2f}" if samples else "-"


def needed_height(samples: list[Sample], floor: float) -> float:
    """The lowest bin edge from which every bin's recall is at least ``floor``."""
    needed = float(BINS[-1])
    for low, high in reversed(list(zip(BINS, (*BINS[1:], float("inf")), strict=True))):
        inside = [s for s in samples if low <= s.height < high]
        if inside and sum(s.found for s in inside) / len(inside) < floor:
            break
        needed = low
    return needed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, default=REPO / "models" / "384x640")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=absolute, default=REPO / "data" / "smalltext")
    parser.add_argument("--recall", type=float, default=0.8, help="recall a height must reach (default 0.8)")
    args = parser.parse_args()

    model = load_model(args.model / load_manifest(args.model).variant(args.variant).file, find_runtime(),
                       args.threads)
    samples = measure(Detector(model), args.images)
    clean = [s for s in samples if s.clean]
    print(f"{args.variant}, model input {model.input_hw[0]}x{model.input_hw[1]}, {args.images.name}: "
          f"{len(samples)} word views ({len(clean)} clean), zooms {', '.join(map(str, ZOOMS))}")
    print(f"{'ink height (model px)':>22} {'views':>6} {'recall':>7} {'clean':>6} {'recall':>7} {'box/ink':>8}")
    for low, high in zip(BINS, (*BINS[1:], None), strict=True):
        inside = [s for s in samples if low <= s.height and (high is None or s.height < high)]
        tidy = [s for s in inside if s.clean]
        label = f"{low}-{high}" if high is not None else f"{low}+"
        found = [s.box_ratio for s in inside if s.box_ratio is not None]
        ratio = f"{statistics.median(found):.2f}" if found else "-"
        print(f"{label:>22} {len(inside):>6} {recall(inside):>7} {len(tidy):>6} {recall(tidy):>7} {ratio:>8}")
    ratios = [s.box_ratio for s in samples if s.box_ratio is not None]
    ink_all, ink_clean = needed_height(samples, args.recall), needed_height(clean, args.recall)
    ratio = statistics.median(ratios)
    print(f"recall >= {args.recall} from an ink height of {ink_all:g} px (all words), {ink_clean:g} px (clean words)")
    print(f"CRAFT box height / ink height, found words: median {ratio:.2f} "
          f"(quartiles {np.percentile(ratios, 25):.2f}-{np.percentile(ratios, 75):.2f}, {len(ratios)} words)")
    print(f"so CRAFT box heights of about {ink_clean * ratio:.1f} px (clean words) and {ink_all * ratio:.1f} px "
          "(all words) in the model's input")
    return 0


if __name__ == "__main__":
    sys.exit(main())
