"""Labelled word crops cut from ground truth: every cared word of the ``NAME.json`` files beside
``NAME.jpg`` (``{"image", "words": [{"poly", "text", "ignore"}]}``, the project's samples, calibration
frames and data/smalltext, and ICDAR-style sets), cut with the device's own ``word_crop``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.recognition.crops import MARGIN, word_crop
from edge.sources.imageio import read_rgb


@dataclass(frozen=True)
class Word:
    name: str  # "image.jpg#3": the image and the word's index in its ground truth
    crop: np.ndarray  # grey uint8 (h, w)
    text: str  # the transcription


def labelled_words(folder: Path, margin: float = MARGIN, images: Path | None = None) -> list[Word]:
    """Every cared word (not ``ignore``, not ``###``) of every ground-truth file in ``folder``, in name order;
    the images are beside them or in ``images``."""
    words = []
    for truth_path in sorted(folder.glob("*.json")):
        truth = json.loads(truth_path.read_text())
        if not isinstance(truth, dict) or "words" not in truth:
            continue
        rgb = read_rgb((images or folder) / truth.get("image", truth_path.with_suffix(".jpg").name))
        for index, word in enumerate(truth["words"]):
            if word.get("ignore") or word.get("text") == "###":
                continue
            try:
                crop = word_crop(rgb, np.asarray(word["poly"], dtype=np.float32), margin)
            except ValueError:  # a degenerate quad: nothing to read
                continue
            words.append(Word(f"{truth_path.stem}#{index}", crop, word.get("text", "")))
    return words
