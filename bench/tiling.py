"""Tiling modes against one native-scale pass: accuracy, agreement and model time, in one run.

    python bench/tiling.py --coarse-model models/384x640 --tile-model models/288x288 \\
        --native-model models/736x1280 --native-model models/1216x1280 --native-model models/1088x1920 \\
        [--set IMAGES:GT ...] [--variant int8] [--threads 2] [--repeat 3] [--clip data/clip]

For every image: the native single pass (the frame at its own size, in the smallest
``--native-model`` that holds it, black below and right; CRAFT itself pads only to a multiple
of 32), ``off`` (the frame letterboxed into the coarse model), ``full`` (native-scale tiles of the
tile model's size, score maps stitched) and ``adaptive`` (the coarse pass, then only the tiles it
scored).
Reports, per mode: H-mean against the ground truth on the labelled images (ICDAR 2015 protocol),
box agreement with the native pass on all images (H at IoU 0.5, native boxes as the truth; where
the native model is larger than the padded frame, ``full``'s agreement comes from tiling the native
model's own input, the frame on its black canvas, so that both see the same pixels; its other
figures come from the frame) and
the worst single image (and every image under H 0.99, against the native pass and against the
ground truth), model inferences per image and model milliseconds per image (mean; with
``--repeat N`` each image's least model time of N runs, which steadies the ratios).
With ``--clip data/clip``: each tiling mode on the project's clip, every frame against change
gating: model inferences per frame, and how many of the clip's events (a word appears, moves,
vanishes) the boxes of the event's first frame reflect, with and without gating.
Figures are for the machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config.paths import absolute
from edge.detection.benchmark import default_set
from edge.detection.boxes import match_boxes
from edge.detection.detector import Detection, Detector
from edge.detection.evaluation import Summary, Word, evaluate_image, find_ground_truth, read_words
from edge.detection.gating import GateSettings
from edge.detection.preprocess import letterbox
from edge.detection.tiling import CONTEXT, padded
from edge.models.manifest import load_manifest
from edge.models.runtime import CraftModel, find_runtime, load_model
from edge.sources.imageio import list_images, read_rgb


def model_of(folder: Path, variant: str, threads: int) -> CraftModel:
    return load_model(folder / load_manifest(folder).variant(variant).file, find_runtime(), threads)


def image_set(text: str) -> tuple[Path, Path | None]:
    """IMAGES[:GT]: a folder of images and, optionally, the folder of their ground truth."""
    images, _, truth = text.partition(":")
    return absolute(images), absolute(truth) if truth else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coarse-model", type=absolute, required=True, help="model folder for off and adaptive's pass")
    parser.add_argument("--tile-model", type=absolute, required=True, help="model folder whose input is the tile")
    parser.add_argument("--native-model", type=absolute, required=True, action="append",
                        help="model folder that holds frames at their own size; repeat for more sizes")
    parser.add_argument("--set", type=image_set, action="append", metavar="IMAGES[:GT]",
                        help="images, and the folder of their ground truth (only labelled images are scored); "
                             "repeat for more sets (default: ../shared/eval-ic15train, else data/smalltext)")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context", type=int, default=CONTEXT, help="tiles' context in pixels (edge.detection.tiling)")
    parser.add_argument("--repeat", type=int, default=1, choices=range(1, 11), metavar="N",
                        help="run each image N times per mode and keep the least model time (steadier ratios)")
    parser.add_argument("--clip", type=absolute, help="folder with clip.avi and clip.json (data/clip)")
    args = parser.parse_args(argv)
    if not args.set:
        labelled = default_set(Path.cwd())
        if labelled is None:
            sys.exit("bench/tiling.py: give --set IMAGES:GT (no benchmark beside this folder)")
        args.set = [(labelled.images, labelled.truth)]

    coarse_model = model_of(args.coarse_model, args.variant, args.threads)
    tile_model = model_of(args.tile_model, args.variant, args.threads)
    natives = sorted((model_of(folder, args.variant, args.threads) for folder in args.native_model),
                     key=lambda model: model.input_hw[0] * model.input_hw[1])
    print(f"{args.variant}, coarse model {args.coarse_model.name}, tile model {args.tile_model.name} "
          f"(context {args.context} px), native models {', '.join(folder.name for folder in args.native_model)}, "
          f"{args.threads} threads, least model time of {args.repeat} run{'s' if args.repeat > 1 else ''}")
    modes = {"off": Detector(coarse_model),
             "full": Detector(coarse_model, tiling_mode="full", tile_model=tile_model, context=args.context),
             "adaptive": Detector(coarse_model, tiling_mode="adaptive", tile_model=tile_model, context=args.context)}
    for images, _ in args.set:
        if not list_images(images):
            sys.exit(f"bench/tiling.py: {images} holds no images")
        for image in list_images(images):  # every frame must fit a native model, before minutes of work
            holding(natives, read_rgb(image).shape[:2], image.name)
    for images, truth in args.set:
        set_report(images, truth, natives, modes, args.repeat)
    if args.clip:
        clip_report(args.clip, coarse_model, tile_model, args.context)
    return 0


def set_report(images: Path, truth_dir: Path | None, natives: list[CraftModel], modes: dict[str, Detector],
               repeat: int) -> None:
    # native: one tile of a model that holds the whole frame is one pass at the frame's own size
    native_passes = {model.input_hw: Detector(model, tiling_mode="full", tile_model=model) for model in natives}
    names = ["native", *modes]
    labelled: dict[str, list] = {mode: [] for mode in names}
    agreement: dict[str, list] = {mode: [] for mode in names}
    tiles: dict[str, list[int]] = {mode: [] for mode in names}
    model_ms: dict[str, list[float]] = {mode: [] for mode in names}
    labelled_ms: dict[str, list[float]] = {mode: [] for mode in names}
    worst: dict[str, tuple[float, str]] = {mode: (1.0, "") for mode in names}
    below: dict[str, list[str]] = {mode: [] for mode in names}  # images agreeing at H < 0.99
    below_truth: dict[str, list[str]] = {mode: [] for mode in names}  # images under H 0.99 against the GT
    for image in list_images(images):
        rgb = read_rgb(image)
        native_hw = holding(natives, rgb.shape[:2], image.name).input_hw
        detectors = {"native": native_passes[native_hw], **modes}
        results = {mode: fastest(detector, rgb, repeat) for mode, detector in detectors.items()}
        # full's agreement compares its stitch with one pass over the same pixels. A native model larger
        # than the padded frame sees black where tiles at the frame's right and bottom see the
        # convolutions' zero padding (as CRAFT's own pass does), so there full tiles its input again.
        compared = dict(results)
        if native_hw != padded(rgb.shape[:2]):
            compared["full"] = modes["full"].detect(letterbox(rgb, native_hw, scale=1.0).pixels)  # black canvas
        native_words = [Word(box.points, False) for box in results["native"].boxes]
        truth = find_ground_truth(truth_dir, image.name) if truth_dir else None
        for mode, detection in results.items():
            found = [box.points for box in detection.boxes]
            agreed = evaluate_image(image.name, native_words, [box.points for box in compared[mode].boxes])
            agreement[mode].append(agreed)
            score = Summary([agreed]).count.hmean if native_words or compared[mode].boxes else 1.0
            worst[mode] = min(worst[mode], (score, image.name))
            if score < 0.99:
                below[mode].append(f"{image.name} {score:.3f}")
            if truth is not None:
                labelled[mode].append(evaluate_image(image.name, read_words(truth), found))
                count = Summary(labelled[mode][-1:]).count
                against_truth = count.hmean if count.detections or count.references else 1.0  # nothing to find
                if against_truth < 0.99:
                    below_truth[mode].append(f"{image.name} {against_truth:.3f}")
                labelled_ms[mode].append(detection.timing.inference)
            tiles[mode].append(detection.tiles_run)
            model_ms[mode].append(detection.timing.inference)
        print(f"  {image.name}: " + ", ".join(f"{m} {len(r.boxes)} boxes/{r.tiles_run} runs"
                                              for m, r in results.items()), file=sys.stderr, flush=True)

    print(f"\n{images}: {len(model_ms['native'])} images ({len(labelled['native'])} labelled)")
    print("model time: all of a mode's model time over the images against the native pass's, all images and "
          "the labelled ones")
    print(f"{'mode':<8} {'H-mean (GT)':>11} {'P':>5} {'R':>5} {'agree H':>8} {'worst image':>24} {'runs/img':>9} "
          f"{'ms/img':>7} {'vs native':>9} {'labelled':>8}")
    for mode in names:
        against = Summary(labelled[mode]).count if labelled[mode] else None
        hmean, precision, recall = ((f"{against.hmean:.3f}", f"{against.precision:.3f}", f"{against.recall:.3f}")
                                    if against else ("-", "-", "-"))
        ratio = sum(model_ms[mode]) / sum(model_ms["native"])
        ratio_labelled = sum(labelled_ms[mode]) / sum(labelled_ms["native"]) if labelled_ms[mode] else float("nan")
        print(f"{mode:<8} {hmean:>11} {precision:>5} {recall:>5} {Summary(agreement[mode]).count.hmean:>8.3f} "
              f"{worst[mode][0]:>6.3f} {worst[mode][1][:17]:>17} {statistics.mean(tiles[mode]):>9.1f} "
              f"{statistics.mean(model_ms[mode]):>7.0f} {ratio:>8.2f}x {ratio_labelled:>7.2f}x")
    for mode in ("full", "adaptive"):
        print(f"{mode}: {len(below[mode])} images agree below H 0.99: {', '.join(below[mode]) or '-'}", flush=True)
    if truth_dir and labelled["native"]:  # with a reference pass as ground truth (../shared/eval/reference_easyocr)
        for mode in names:
            print(f"{mode} against {truth_dir.name}: {len(below_truth[mode])} images under H 0.99: "
                  f"{', '.join(below_truth[mode]) or '-'}", flush=True)


def fastest(detector: Detector, rgb: np.ndarray, repeat: int) -> Detection:
    """The detection with the least model time of ``repeat`` runs (the same boxes each time: no gating)."""
    return min((detector.detect(rgb) for _ in range(repeat)), key=lambda detection: detection.timing.inference)


def holding(models: list[CraftModel], frame_hw: tuple[int, int], name: str) -> CraftModel:
    """The smallest model whose input holds the frame at its own size (padded to 32)."""
    for model in models:
        if all(side >= frame for side, frame in zip(model.input_hw, padded(frame_hw), strict=True)):
            return model
    sys.exit(f"bench/tiling.py: {name} ({frame_hw[0]}x{frame_hw[1]}, HxW) does not fit any --native-model at its "
             "own size")


def clip_frames(clip: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(clip / "clip.avi"))
    while True:
        ok, bgr = capture.read()
        if not ok:
            capture.release()
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def reflected(event: dict, truth: dict, boxes: list) -> bool:
    """Do ``boxes`` (of the event's frame) show the event: the word found where it is, or gone?"""
    frame = event["frame"]
    if event["kind"] == "vanish":
        before = next(w for w in truth["frames"][frame - 1]["words"] if w["text"] == event["text"])
        return match_boxes(boxes, [np.array(before["poly"])], 0.3).matched == 0
    now = next(w for w in truth["frames"][frame]["words"] if w["text"] == event["text"])
    return match_boxes(boxes, [np.array(now["poly"])]).matched == 1


def clip_report(clip: Path, coarse_model: CraftModel, tile_model: CraftModel, context: int) -> None:
    truth = json.loads((clip / "clip.json").read_text())
    frame_seconds = 1 / truth["fps"]
    print(f"\nclip {clip.name}: {len(truth['frames'])} frames, {len(truth['events'])} events")
    print("runs: model inferences per frame (adaptive's coarse pass included); tiles: tile-model inferences")
    print(f"{'mode':<9} {'runs/frame':>10} {'gated':>7} {'fewer':>6} {'tiles/frame':>11} {'gated':>7} {'fewer':>6} "
          f"{'events shown, every frame':>26} {'gated':>6}")
    for mode in ("off", "full", "adaptive"):
        now = [0.0]
        every = Detector(coarse_model, tiling_mode=mode, tile_model=tile_model, context=context)
        gated = Detector(coarse_model, tiling_mode=mode, tile_model=tile_model, context=context,
                         gate=GateSettings(refresh_seconds=3600), clock=lambda now=now: now[0])
        runs = {"every": 0, "gated": 0}
        tiles = {"every": 0, "gated": 0}
        shown = {"every": 0, "gated": 0}
        events = {event["frame"]: event for event in truth["events"]}
        for index, rgb in enumerate(clip_frames(clip)):
            now[0] = index * frame_seconds
            for name, detector in (("every", every), ("gated", gated)):
                detection = detector.detect(rgb)
                runs[name] += detection.tiles_run
                tiles[name] += len(detection.tiles)
                if index in events:
                    shown[name] += reflected(events[index], truth, [b.points for b in detection.boxes])
        frames = len(truth["frames"])
        print(f"{mode:<9} {runs['every'] / frames:>10.2f} {runs['gated'] / frames:>7.2f} "
              f"{runs['every'] / max(1, runs['gated']):>5.1f}x {tiles['every'] / frames:>11.2f} "
              f"{tiles['gated'] / frames:>7.2f} {tiles['every'] / max(1, tiles['gated']):>5.1f}x "
              f"{shown['every']:>22}/{len(events):<3} "
              f"{shown['gated']:>2}/{len(events)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
