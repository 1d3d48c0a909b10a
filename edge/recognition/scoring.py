"""Scoring readings against labelled words: the text comparison, word accuracy on crops, and the
ICDAR 2015 end-to-end rule (which matched detection also reads right).

Pure functions on texts; the geometric one-to-one matching is ``edge.detection.evaluation``'s, which
``craft-edge eval --read`` runs first (this part imports only ``edge.config``).

Normalisation, for both the label and the reading: surrounding whitespace removed, then leading and
trailing ASCII punctuation (Python's ``string.punctuation``), then lower case. Inner characters count
as they are (``A-113`` is not ``A113``). A word whose label has fewer than ``MIN_CHARACTERS``
characters, as labelled, does not count (ICDAR 2015 end to end); nor does a ``###`` word.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass

MIN_CHARACTERS = 3
DONT_CARE_TEXT = "###"


def normalise(text: str) -> str:
    return text.strip().strip(string.punctuation).lower()


def same_text(label: str, reading: str) -> bool:
    """The reading says what the label says, up to case and leading/trailing punctuation."""
    return normalise(label) == normalise(reading)


def counts_end_to_end(label: str) -> bool:
    """A labelled word the end-to-end protocol cares about: not ``###`` and at least 3 characters."""
    return label != DONT_CARE_TEXT and len(label) >= MIN_CHARACTERS


@dataclass(frozen=True)
class Tally:
    """``right`` out of ``total`` (words read right out of words read)."""

    right: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.right + other.right, self.total + other.total)


def word_accuracy(labels: Iterable[str], readings: Iterable[str]) -> Tally:
    """How many readings equal their labels (pairs in order)."""
    pairs = list(zip(labels, readings, strict=True))
    return Tally(sum(same_text(label, reading) for label, reading in pairs), len(pairs))


def read_right(pairs: Iterable[tuple[int, int]], labels: list[str], readings: list[str]) -> int:
    """Matched (word, detection) pairs whose detection reads its word's text; a matched detection that
    reads something else is a miss on both sides, as in ICDAR 2015's end-to-end script."""
    return sum(same_text(labels[word], readings[detection]) for word, detection in pairs)
