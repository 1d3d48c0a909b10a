"""Greedy CTC decoding: the most likely class of each time step, repeats merged, blanks dropped."""

from __future__ import annotations

import numpy as np

BLANK = 0  # class 0 is the CTC blank; class i > 0 is charset[i - 1]


def confidence(step_probs: np.ndarray) -> float:
    """EasyOCR's score of a reading: the product of the kept steps' probabilities, to the power 2/sqrt(n).

    The exponent makes long words comparable with short ones (a plain product falls with every step).
    No kept step (nothing read) scores 0.
    """
    if step_probs.size == 0:
        return 0.0
    return float(np.prod(step_probs.astype(np.float64)) ** (2.0 / np.sqrt(step_probs.size)))


def greedy_decode(probs: np.ndarray, charset: str) -> tuple[str, float]:
    """``(T, C)`` softmax probabilities (blank = class 0, ``C == len(charset) + 1``) -> (text, score 0..1).

    The score takes every step whose best class is not blank, repeats included (as EasyOCR does).
    """
    if probs.ndim != 2 or probs.shape[1] != len(charset) + 1:
        raise ValueError(f"probabilities are {probs.shape}, expected (T, {len(charset) + 1}) for the charset")
    best = probs.argmax(axis=1)
    kept = best != BLANK
    first_of_run = np.ones_like(kept)
    first_of_run[1:] = best[1:] != best[:-1]
    text = "".join(charset[i - 1] for i in best[kept & first_of_run])
    return text, confidence(probs[np.arange(len(best)), best][kept])
