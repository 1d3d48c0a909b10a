"""Tiling modes against one native-scale pass: accuracy, agreement and model time, in one run.

    python bench/tiling.py --coarse-model models/480x640 --tile-model models/288x288 \\
        --native-model models/736x1280 --images ../shared/eval/images --gt ../shared/eval/gt \\
        [--variant int8] [--threads 2]

For every image: the native single pass (the frame letterboxed into the native model, which
should be the frame's own size rounded up to 32), ``off`` (the frame letterboxed into the coarse
model), ``full`` (tiles of the tile model's size, score maps stitched, at the scale the native
pass resizes the frame to, so both see the same pixels; 1.0 for frames of the native size) and
``adaptive`` (the coarse pass, then only the tiles it scored).
Reports, per mode: H-mean against the ground truth on the labelled images (ICDAR 2015 protocol),
box agreement with the native pass on all images (H at IoU 0.5, native boxes as the truth) and
the worst single image, model inferences per image and model milliseconds per image (median).
Figures are for the machine it runs on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.detector import Detector
from edge.evaluation import Summary, Word, evaluate_image, find_ground_truth, read_words
from edge.imageio import list_images, read_rgb
from edge.manifest import load_manifest
from edge.paths import absolute
from edge.runtime import CraftModel, find_runtime, load_model


def model_of(folder: Path, variant: str, threads: int) -> CraftModel:
    return load_model(folder / load_manifest(folder).variant(variant).file, find_runtime(), threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coarse-model", type=absolute, required=True, help="model folder for off and adaptive's pass")
    parser.add_argument("--tile-model", type=absolute, required=True, help="model folder whose input is the tile")
    parser.add_argument("--native-model", type=absolute, required=True, help="model folder at the frames' size")
    parser.add_argument("--images", type=absolute, required=True)
    parser.add_argument("--gt", type=absolute, help="ground truth folder (labelled images only are scored)")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    coarse_model = model_of(args.coarse_model, args.variant, args.threads)
    tile_model = model_of(args.tile_model, args.variant, args.threads)
    native_model = model_of(args.native_model, args.variant, args.threads)
    detectors = {"native": Detector(native_model), "off": Detector(coarse_model),
                 "full": Detector(coarse_model, tiling_mode="full", tile_model=tile_model),
                 "adaptive": Detector(coarse_model, tiling_mode="adaptive", tile_model=tile_model)}
    native_hw = native_model.input_hw
    labelled: dict[str, list] = {mode: [] for mode in detectors}
    agreement: dict[str, list] = {mode: [] for mode in detectors}
    tiles: dict[str, list[int]] = {mode: [] for mode in detectors}
    model_ms: dict[str, list[float]] = {mode: [] for mode in detectors}
    worst: dict[str, tuple[float, str]] = {mode: (1.0, "") for mode in detectors}
    for image in list_images(args.images):
        rgb = read_rgb(image)
        # `full` sees the pixels the native pass sees: the frame at the native letterbox's scale
        # (1.0 for frames of the native model's size).
        for mode in ("full", "adaptive"):
            detectors[mode].scale = min(native_hw[0] / rgb.shape[0], native_hw[1] / rgb.shape[1])
        results = {mode: detector.detect(rgb) for mode, detector in detectors.items()}
        native_words = [Word(box.points, False) for box in results["native"].boxes]
        truth = find_ground_truth(args.gt, image.name) if args.gt else None
        for mode, detection in results.items():
            found = [box.points for box in detection.boxes]
            agreed = evaluate_image(image.name, native_words, found)
            agreement[mode].append(agreed)
            score = Summary([agreed]).count.hmean if native_words or found else 1.0
            worst[mode] = min(worst[mode], (score, image.name))
            if truth is not None:
                labelled[mode].append(evaluate_image(image.name, read_words(truth), found))
            tiles[mode].append(detection.tiles_run)
            model_ms[mode].append(detection.timing.inference)
        print(f"  {image.name}: " + ", ".join(f"{m} {len(r.boxes)} boxes/{r.tiles_run} runs"
                                              for m, r in results.items()), file=sys.stderr, flush=True)

    print(f"{args.variant}, coarse model {args.coarse_model.name}, tile model {args.tile_model.name}, "
          f"native model {args.native_model.name}, "
          f"{len(model_ms['native'])} images ({len(labelled['native'])} labelled), {args.threads} threads")
    print(f"{'mode':<8} {'H-mean (GT)':>11} {'agree H':>8} {'worst image':>24} {'runs/img':>9} {'model ms':>9} "
          f"{'vs native':>9}")
    native_ms = statistics.median(model_ms["native"])
    for mode in detectors:
        hmean = f"{Summary(labelled[mode]).count.hmean:.3f}" if labelled[mode] else "-"
        median_ms = statistics.median(model_ms[mode])
        print(f"{mode:<8} {hmean:>11} {Summary(agreement[mode]).count.hmean:>8.3f} "
              f"{worst[mode][0]:>6.3f} {worst[mode][1][:17]:>17} {statistics.mean(tiles[mode]):>9.1f} "
              f"{median_ms:>9.1f} {median_ms / native_ms:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
