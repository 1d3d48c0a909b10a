"""What a pattern that knows a word's format, or a list of the words to expect, gains: the project's
rendered words read with and without patterns steering the reading.

    python bench/patterns.py --model models [--variant dynamic] [--words data/words]

Each labelled word of ``--words`` is cut out at its ground-truth box (``word_crop``, the daemon's margin)
and read once with the bundle's recognizer. Then, for each word, the pattern a user who knows the format
would write is its own shape: digits ``\\d``, letters ``[A-Za-z]``, anything else as written (``19:40``
gives ``^\\d\\d:\\d\\d$``). Then, as a known list does (plates allowed in, a building's room names), one
pattern for all: every distinct word of the set, ``^(word|word|...)$``. Per kind of word (numbers,
displays and plates apart from plain words) and per ``min_score`` this prints how many are read
exactly, how many keep a wrong reading and how many are left null, with the pattern only filtering (a
reading that does not match is dropped) and with it steering (``FrameReader.kept``: the likeliest
reading that matches). Words that the shape patterns steered and still missed are listed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.commands.common import thread_count
from edge.config.paths import absolute
from edge.config.reading import RecognitionConfig
from edge.models.recognizer import load_reader
from edge.models.runtime import default_threads
from edge.recognition.crops import MARGIN, word_crop
from edge.recognition.reader import Reading
from edge.recognition.words import FrameReader

REPO = Path(__file__).resolve().parent.parent
GROUPS = {"numbers, displays, plates": ("number", "seven_segment", "plate"), "words": ("word",)}
MIN_SCORES = (0.3, 0.1, 0.0)


def shape(text: str) -> str:
    """The pattern of ``text``'s format: ``B-1340`` -> ``^[A-Za-z]\\-\\d\\d\\d\\d$``."""
    parts = (r"\d" if c.isdigit() else "[A-Za-z]" if c.isalpha() else re.escape(c) for c in text)
    return "^" + "".join(parts) + "$"


def tally(reader, rows: list[tuple[str, Reading]], pattern_of: Callable[[str], str], min_score: float,
          steer: bool) -> tuple[int, int, list[str]]:
    """(right, wrong kept, missed lines) for ``rows`` of (truth, reading), each under ``pattern_of(truth)``."""
    right, wrong, missed = 0, 0, []
    for truth, reading in rows:
        rules = FrameReader(reader, RecognitionConfig(min_score=min_score, patterns=[pattern_of(truth)]))
        kept = rules.kept(reading if steer else Reading(reading.text, reading.score))  # no steps: no steering
        right += kept.text == truth
        wrong += kept.text is not None and kept.text != truth
        if kept.text != truth:
            missed.append(f"{truth!r} read {reading.text!r} ({reading.score:.2f}) -> {kept.text!r}")
    return right, wrong, missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, required=True, help="a bundle with a recognizer")
    parser.add_argument("--variant", default="dynamic", help="recognizer variant (default dynamic, auto's CPU choice)")
    parser.add_argument("--words", type=absolute, default=REPO / "data" / "words", help="frames with word JSON")
    parser.add_argument("--threads", type=thread_count, default=0, help="CPU threads (default 0: one per core)")
    args = parser.parse_args()
    reader = load_reader(args.model, args.variant, args.threads or default_threads())
    if reader is None:
        parser.error(f"{args.model} has no recognizer")
    rows: dict[str, list[tuple[str, Reading]]] = {group: [] for group in GROUPS}
    for labels in sorted(args.words.glob("*.json")):
        rgb = cv2.cvtColor(cv2.imread(str(labels.with_suffix(".jpg"))), cv2.COLOR_BGR2RGB)
        words = [w for w in json.loads(labels.read_text())["words"] if not w["ignore"]]
        readings = reader.read([word_crop(rgb, np.array(w["poly"]), MARGIN) for w in words])
        for word, reading in zip(words, readings, strict=True):
            group = next(g for g, kinds in GROUPS.items() if word["kind"] in kinds)
            rows[group].append((word["text"], reading))
    known = sorted({truth for group_rows in rows.values() for truth, _ in group_rows})
    known_list = "^(" + "|".join(map(re.escape, known)) + ")$"
    kinds = {"each word's shape": shape, f"a known list of the set's {len(known)} words": lambda truth: known_list}
    print(f"recognizer {reader.variant}; right / wrong kept / null")
    for group, group_rows in rows.items():
        print(f"\n{group}: {len(group_rows)} words, "
              f"{sum(r.text == t for t, r in group_rows)} read exactly without a pattern")
        for kind, pattern_of in kinds.items():
            print(f"  pattern: {kind}")
            for min_score in MIN_SCORES:
                cells = []
                for steer in (False, True):
                    right, wrong, _ = tally(reader, group_rows, pattern_of, min_score, steer)
                    null = len(group_rows) - right - wrong
                    cells.append(f"{'steering' if steer else 'filtering'} {right} / {wrong} / {null}")
                print(f"    min_score {min_score}: " + ";  ".join(cells))
        for line in tally(reader, group_rows, shape, 0.0, True)[2]:
            print(f"    missed with its shape at min_score 0, steering: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
