"""``craft-edge eval --read``: how well the bundle reads labelled images.

Two numbers: word accuracy on the ground-truth crops (each cared word's quad cut out and read, so the
detector plays no part), and the ICDAR 2015 end-to-end protocol (the detector's boxes, or precomputed
boxes with text, matched one to one at IoU >= 0.5 as ``craft-edge eval`` matches them, and a match
counts only when it also reads the word's text; words labelled with fewer than 3 characters are don't care).
The text comparison is ``edge.recognition.scoring``'s.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.commands.common import Fatal, write_output
from edge.detection.boxes import MatchCount
from edge.detection.evaluation import GroundTruthError, Word, evaluate_image, find_ground_truth, read_words
from edge.recognition.scoring import Tally, counts_end_to_end, read_right, same_text, word_accuracy

if TYPE_CHECKING:
    from edge.detection.detector import Detector
    from edge.recognition.reader import Reader

# an image -> its boxes (4x2 quads, clockwise from the word's top-left) and what each reads
Spotter = Callable[[Path, np.ndarray], tuple[list[np.ndarray], list[str]]]


@dataclass
class EndToEnd:
    """Summed over images: the ICDAR 2015 end-to-end count, and the per-word outcome for --json."""

    count: MatchCount = field(default_factory=lambda: MatchCount(0, 0, 0, empty=0.0))
    words: list[dict] = field(default_factory=list)

    def add(self, image: str, labels: list[Word], boxes: list[np.ndarray], readings: list[str]) -> None:
        words = [Word(w.poly, w.ignore or not counts_end_to_end(w.text), w.text) for w in labels]
        result = evaluate_image(image, words, boxes)
        texts = [w.text for w in words]
        self.count += MatchCount(read_right(result.pairs, texts, readings), result.detections, result.words, 0.0)
        matched = dict(result.pairs)
        self.words += [{"image": image, "text": w.text, "matched": i in matched,
                        "reading": readings[matched[i]] if i in matched else None,
                        "right": i in matched and same_text(w.text, readings[matched[i]])}
                       for i, w in enumerate(words) if not w.ignore]

    def to_dict(self) -> dict:
        c = self.count
        return {"precision": round(c.precision, 4), "recall": round(c.recall, 4), "hmean": round(c.hmean, 4),
                "read_right": c.matched, "words": c.references, "detections": c.detections, "per_word": self.words}


def labelled_crops(rgb: np.ndarray, quads: list[np.ndarray], where: str) -> list[np.ndarray]:
    from edge.recognition.crops import MARGIN
    from edge.recognition.spotting import cut

    if any(len(quad) != 4 for quad in quads):
        raise Fatal(f"{where}: a word polygon has other than four points; reading needs four corners")
    return cut(rgb, quads, MARGIN)


def model_spotter(detector: Detector, reader: Reader) -> Spotter:
    from edge.recognition.spotting import read_boxes

    def spot(image: Path, rgb: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
        boxes = [b.points for b in detector.boxes(rgb)]
        return boxes, [r.text for r in read_boxes(reader, rgb, boxes)]
    return spot


def file_spotter(folder: Path) -> Spotter:
    def spot(image: Path, _rgb: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
        found = find_ground_truth(folder, image.name)
        if found is None:
            return [], []
        words = read_words(found)
        return [w.poly for w in words], [w.text for w in words]
    return spot


def evaluate(images: list[Path], gt: Path, spotters: dict[str, Spotter],
             reader: Reader | None) -> tuple[Tally | None, list, dict]:
    """Crop accuracy (with a reader), its per-word readings, and end to end per spotter."""
    from edge.sources.imageio import ImageError, read_rgb

    tally, per_word, results = Tally(0, 0), [], {name: EndToEnd() for name in spotters}
    for number, image in enumerate(images, start=1):
        if sys.stderr.isatty():
            print(f"\rreading {number}/{len(images)}", end="" if number < len(images) else "\n", file=sys.stderr)
        found = find_ground_truth(gt, image.name)
        if found is None:
            continue
        try:
            labels, rgb = read_words(found), read_rgb(image)
            untranscribed = next((i for i, w in enumerate(labels) if not w.ignore and not w.text), None)
            if untranscribed is not None:
                raise Fatal(f"{found}: word {untranscribed} has no text; reading is scored against each word's text")
            spotted = {name: spot(image, rgb) for name, spot in spotters.items()}  # --detections files too
        except (ImageError, GroundTruthError) as exc:
            raise Fatal(str(exc)) from exc
        if reader is not None:
            cared = [w for w in labels if not w.ignore]
            readings = reader.read(labelled_crops(rgb, [w.poly for w in cared], str(found))) if cared else []
            tally += word_accuracy([w.text for w in cared], [r.text for r in readings])
            per_word += [{"image": image.name, "text": word.text, "reading": reading.text,
                          "score": round(reading.score, 4), "right": same_text(word.text, reading.text)}
                         for word, reading in zip(cared, readings, strict=True)]
        for name, (boxes, texts) in spotted.items():
            results[name].add(image.name, labels, boxes, texts)
    return (tally if reader is not None else None), per_word, results


def format_report(images: int, recognizer: str | None, crops: Tally | None, results: dict[str, EndToEnd]) -> str:
    lines = [f"reading; {images} images" + (f"; recognizer {recognizer}" if recognizer else "")]
    if crops is not None:
        lines.append(f"word accuracy on ground-truth crops: {crops.right}/{crops.total} = {crops.accuracy:.3f}")
    lines += ["end to end (ICDAR 2015: IoU >= 0.5 and the same text; words under 3 characters don't care)",
              f"{'detector':<12} {'words':>6} {'dets':>6} {'right':>6} {'P':>6} {'R':>6} {'H':>6}"]
    for name, result in results.items():
        c = result.count
        lines.append(f"{name:<12} {c.references:>6} {c.detections:>6} {c.matched:>6} "
                     f"{c.precision:>6.3f} {c.recall:>6.3f} {c.hmean:>6.3f}")
    return "\n".join(lines)


def execute(args: argparse.Namespace, images: list[Path], detector_names: list[str],
            build: Callable[[str], Detector]) -> int:
    """``eval --read``: ``build(name)`` makes the detector of a variant name."""
    reader = None
    if args.model is not None:
        from edge.models.recognizer import load_reader, no_recognizer
        from edge.models.runtime import default_threads

        reader = load_reader(args.model, args.read_variant, args.threads or default_threads())
        if reader is None:
            raise Fatal(f"{args.model}{no_recognizer(args.model)}")
    if args.detections is not None:
        spotters = {"detections": file_spotter(args.detections)}
    else:
        spotters = {name: model_spotter(build(name), reader) for name in detector_names}
    crops, per_word, results = evaluate(images, args.gt, spotters, reader)
    counted = sum(1 for image in images if find_ground_truth(args.gt, image.name))
    print(format_report(counted, reader.variant if reader else None, crops, results))
    if counted < len(images):
        print(f"({len(images) - counted} images without ground truth in {args.gt} skipped)")
    if args.json:
        report = {"mode": "read", "recognizer": reader.variant if reader else None,
                  "crops": None if crops is None else {"right": crops.right, "words": crops.total,
                                                       "accuracy": round(crops.accuracy, 4), "per_word": per_word},
                  "end_to_end": {name: result.to_dict() for name, result in results.items()}}
        write_output(args.json, json.dumps(report, indent=2, ensure_ascii=False) + "\n", "--json")
    return 0
