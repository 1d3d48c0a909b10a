"""The reading scores without a model: the text comparison, don't-care labels, and ICDAR 2015 end to end on
the detection matching (one to one; a matched detection that reads something else is a miss)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edge.commands.evaluate_read import EndToEnd
from edge.detection.evaluation import Word
from edge.recognition.scoring import Tally, counts_end_to_end, normalise, same_text, word_accuracy

REPO = Path(__file__).resolve().parent.parent


def square(x: float, y: float, size: float = 40.0) -> np.ndarray:
    return np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=np.float64)


def test_texts_compare_ignoring_case_and_surrounding_punctuation_only() -> None:
    assert normalise("  (Exit!) ") == "exit"
    assert same_text("EXIT", "exit.") and same_text("$7.25", "7.25") and same_text("€4.99", "€4.99")
    assert not same_text("A-113", "A113")  # inner punctuation counts
    assert not same_text("12:45", "12.45")
    assert not same_text("€4.99", "4.99")  # the euro sign is a character, not ASCII punctuation
    assert not same_text("Exit", "Exi")


def test_short_and_hash_labels_do_not_count_end_to_end() -> None:
    assert [counts_end_to_end(t) for t in ("###", "No", "42", "Bus", "A-1")] == [False, False, False, True, True]


def test_word_accuracy_counts_pairs_in_order() -> None:
    assert word_accuracy(["EXIT", "Open", "12:45"], ["exit", "0pen", "12:45"]) == Tally(2, 3)
    assert Tally(2, 3) + Tally(1, 1) == Tally(3, 4) and Tally(0, 0).accuracy == 0.0


def test_end_to_end_matches_one_to_one_and_a_wrong_reading_is_a_miss() -> None:
    words = [Word(square(0, 0), False, "EXIT"), Word(square(100, 0), False, "Open"),
             Word(square(200, 0), False, "No"), Word(square(300, 0), True, "###")]
    boxes = [square(0, 0), square(1, 1), square(100, 0), square(200, 0), square(300, 0)]
    readings = ["exit", "exit", "Opem", "No", "whatever"]
    result = EndToEnd()
    result.add("frame.jpg", words, boxes, readings)
    # "No" is too short to count and "###" is don't care: their boxes count neither way; the second box on
    # EXIT finds it taken (one to one) and counts against precision; Open is matched but read wrong
    assert (result.count.matched, result.count.detections, result.count.references) == (1, 3, 2)
    assert [(w["text"], w["matched"], w["right"]) for w in result.words] == [
        ("EXIT", True, True), ("Open", True, False)]


def test_eval_read_scores_precomputed_boxes_with_text(tmp_path: Path) -> None:
    """``--detections`` with text, no model: the ground truth read back as detections scores 1, and one word
    read wrong loses exactly that word."""
    words, folder = REPO / "data" / "words", tmp_path / "dets"
    folder.mkdir()
    names = sorted(words.glob("*.json"))[:2]
    for index, path in enumerate(names):
        record = json.loads(path.read_text())
        if index == 0:
            record["words"][0]["text"] += "x"
        (folder / path.name).write_text(json.dumps(record))
    images = tmp_path / "images"
    images.mkdir()
    for path in names:
        (images / f"{path.stem}.jpg").symlink_to(words / f"{path.stem}.jpg")
    cared = sum(counts_end_to_end(w["text"]) for p in names for w in json.loads(p.read_text())["words"])
    out = tmp_path / "read.json"
    subprocess.run([sys.executable, "-m", "edge.commands.main", "eval", "--read", "--images", str(images),
                    "--gt", str(words), "--detections", str(folder), "--json", str(out)],
                   check=True, cwd=REPO, capture_output=True, timeout=120)
    scores = json.loads(out.read_text())["end_to_end"]["detections"]
    assert (scores["words"], scores["read_right"]) == (cared, cared - 1)
