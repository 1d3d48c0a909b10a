"""``craft-edge eval --read`` with the converted recognizer on two frames of data/words (cheap: the test
bundle's small detector and about 20 words)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.conversion
REPO = Path(__file__).resolve().parent.parent
FRAMES = ("chelsea_06", "rocket_07")


def test_eval_read_reads_the_rendered_words(converted: Path, tmp_path: Path) -> None:
    words = REPO / "data" / "words"
    for name in FRAMES:
        (tmp_path / f"{name}.jpg").symlink_to(words / f"{name}.jpg")
    out = tmp_path / "read.json"
    result = subprocess.run(
        [sys.executable, "-m", "edge.commands.main", "eval", "--read", "--model", str(converted), "--threads", "2",
         "--read-variant", "fp32", "--images", str(tmp_path), "--gt", str(words), "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "word accuracy on ground-truth crops" in result.stdout
    report = json.loads(out.read_text())
    crops = report["crops"]
    labelled = sum(len(json.loads((words / f"{name}.json").read_text())["words"]) for name in FRAMES)
    assert crops["words"] == labelled == len(crops["per_word"])
    # measured 19/21 with the fp32 recognizer (a time read with '.' for ':', '50%' as '503')
    assert crops["accuracy"] >= 0.75, [w for w in crops["per_word"] if not w["right"]]
    (detector,) = report["end_to_end"].values()
    assert 0 <= detector["read_right"] <= min(detector["words"], detector["detections"])
    assert sum(w["right"] for w in detector["per_word"]) == detector["read_right"]
