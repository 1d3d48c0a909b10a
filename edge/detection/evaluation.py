"""The ICDAR 2015 (Robust Reading, challenge 4) detection protocol, and reading ground truth.

Per image: a detection that lies more than half inside one don't-care region is dropped (it
counts neither way); don't-care words do not count in recall. Cared-for words and detections are
matched one to one at polygon IoU >= 0.5, in the order of the reference script (each word in
turn takes the first unmatched detection that qualifies). Matches, words and detections are
summed over all images before dividing.

Ground truth comes as ICDAR text (``x1,y1,...,x4,y4,transcription``; ``###`` = don't care) or
as JSON ``{"image", "words": [{"poly", "text", "ignore"}]}``. Detections are convex quadrilaterals
(CRAFT's rectangles); word polygons may be any simple polygon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.detection.boxes import MatchCount

MIN_IOU = 0.5
DONT_CARE_OVERLAP = 0.5
DONT_CARE_TEXT = "###"


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read; the message names the file and line."""


MAX_COORDINATE = 1e6  # a ground-truth corner past this is a damaged file (and would overflow a crop's pixels)


@dataclass(frozen=True)
class Word:
    poly: np.ndarray  # (N, 2)
    ignore: bool
    text: str = ""


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def polygon_area(poly: np.ndarray) -> float:
    return abs(_area(np.asarray(poly, dtype=np.float64)))


def _clip(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: ``subject`` (any simple polygon) clipped by a convex ``clipper``."""
    if _area(clipper) < 0:
        clipper = clipper[::-1]
    output = subject
    for i in range(len(clipper)):
        a, b = clipper[i], clipper[(i + 1) % len(clipper)]
        edge = b - a
        if len(output) == 0:
            break
        points, output = output, []
        for j in range(len(points)):
            p, q = points[j], points[(j + 1) % len(points)]
            p_in = edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]) >= 0
            q_in = edge[0] * (q[1] - a[1]) - edge[1] * (q[0] - a[0]) >= 0
            if p_in:
                output.append(p)
            if p_in != q_in:
                d = q - p
                denominator = edge[0] * d[1] - edge[1] * d[0]
                if denominator != 0:
                    t = (edge[1] * (p[0] - a[0]) - edge[0] * (p[1] - a[1])) / denominator
                    output.append(p + t * d)
        output = np.array(output) if output else np.zeros((0, 2))
    return np.asarray(output, dtype=np.float64).reshape(-1, 2)


def intersection_area(convex: np.ndarray, other: np.ndarray) -> float:
    clipped = _clip(np.asarray(other, dtype=np.float64), np.asarray(convex, dtype=np.float64))
    return polygon_area(clipped) if len(clipped) >= 3 else 0.0


def iou(detection: np.ndarray, word: np.ndarray) -> float:
    inter = intersection_area(detection, word)
    union = polygon_area(detection) + polygon_area(word) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class ImageResult:
    name: str
    matched: int
    words: int  # cared-for words
    detections: int  # detections not dropped as don't care
    dropped: int  # detections inside don't-care regions
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (word index, detection index)


def evaluate_image(name: str, words: list[Word], detections: list[np.ndarray]) -> ImageResult:
    cared = [i for i, w in enumerate(words) if not w.ignore]
    dont_care = [w.poly for w in words if w.ignore]
    kept, dropped = [], 0
    for index, det in enumerate(detections):
        area = polygon_area(det)
        if area > 0 and any(intersection_area(det, region) / area > DONT_CARE_OVERLAP for region in dont_care):
            dropped += 1
        else:
            kept.append(index)
    used_words, used_dets, pairs = set(), set(), []
    for w in cared:
        for d in kept:
            if w in used_words:
                break
            if d not in used_dets and iou(detections[d], words[w].poly) >= MIN_IOU:
                used_words.add(w)
                used_dets.add(d)
                pairs.append((w, d))
    return ImageResult(name, len(pairs), len(cared), len(kept), dropped, pairs)


@dataclass
class Summary:
    images: list[ImageResult]

    @property
    def count(self) -> MatchCount:
        """Sums over all images; as in the reference script, an empty set scores 0, not 1."""
        return MatchCount(sum(r.matched for r in self.images), sum(r.detections for r in self.images),
                          sum(r.words for r in self.images), empty=0.0)

    def to_dict(self) -> dict:
        count = self.count
        return {
            "precision": round(count.precision, 4), "recall": round(count.recall, 4), "hmean": round(count.hmean, 4),
            "matched": count.matched, "words": count.references, "detections": count.detections,
            "images": [{"image": r.name, "matched": r.matched, "words": r.words, "detections": r.detections,
                        "dropped_dont_care": r.dropped} for r in self.images],
        }


def format_table(label: str, results: dict[str, Summary]) -> str:
    """The summary table ``craft-edge eval`` and ``compare-with-pytorch`` print."""
    images = len(next(iter(results.values())).images) if results else 0
    lines = [f"{label}; {images} images",
             f"{'variant':<12} {'words':>6} {'dets':>6} {'matched':>8} {'P':>6} {'R':>6} {'H':>6}"]
    for name, summary in results.items():
        count = summary.count
        lines.append(f"{name:<12} {count.references:>6} {count.detections:>6} {count.matched:>8} "
                     f"{count.precision:>6.3f} {count.recall:>6.3f} {count.hmean:>6.3f}")
    return "\n".join(lines)


def _words_from_text(path: Path) -> list[Word]:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GroundTruthError(f"{path}: not UTF-8 text (byte {exc.start}); ICDAR's files are UTF-8") from None
    words = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            coordinates = [float(v) for v in parts[:8]]
        except ValueError:
            raise GroundTruthError(f"{path}:{number}: expected x1,y1,...,x4,y4,text") from None
        if len(coordinates) < 8:
            raise GroundTruthError(f"{path}:{number}: expected x1,y1,...,x4,y4,text")
        text = ",".join(parts[8:])
        words.append(Word(np.array(coordinates).reshape(4, 2), text == DONT_CARE_TEXT, text))
    return words


def _words_from_json(path: Path) -> list[Word]:
    try:
        data = json.loads(path.read_text())
        return [Word(np.asarray(w["poly"], dtype=np.float64).reshape(-1, 2), bool(w.get("ignore", False)),
                     str(w.get("text") or "")) for w in data["words"]]  # null: untranscribed
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise GroundTruthError(f"{path}: not a ground-truth JSON with words[].poly "
                               f"({' '.join(str(exc).split())})") from None


def find_ground_truth(folder: Path, image: str) -> Path | None:
    stem = Path(image).stem
    for candidate in (f"{stem}.json", f"{stem}.txt", f"gt_{stem}.txt"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def read_words(path: Path) -> list[Word]:
    try:
        words = _words_from_json(path) if path.suffix == ".json" else _words_from_text(path)
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for index, word in enumerate(words, start=1):
        if not word.text.isascii():
            try:  # JSON's "\ud800" decodes to a lone surrogate, which no report could write after the whole run
                word.text.encode("utf-8")
            except UnicodeEncodeError:
                raise GroundTruthError(f"{path}: word {index}'s text {word.text!r} is not valid Unicode (a lone "
                                       "surrogate)") from None
        if not (np.isfinite(word.poly).all() and np.abs(word.poly).max(initial=0) <= MAX_COORDINATE):
            raise GroundTruthError(f"{path}: word {index} has a corner that is not a pixel (coordinates up to "
                                   f"±{MAX_COORDINATE:.0e}): {word.poly.ravel().tolist()}")
    return words
