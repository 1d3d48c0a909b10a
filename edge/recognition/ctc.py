"""CTC decoding: greedy (the most likely class of each time step, repeats merged, blanks dropped), and the
likeliest reading a pattern accepts, for patterns that steer the reading."""

from __future__ import annotations

from collections.abc import Callable

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


STEER_BEAM = 16  # readings kept at each step when a pattern steers the decoding
STEER_FLOOR = 1e-3  # classes less likely than this at a step are not tried (greedy's best never is below)


def likeliest_accepted(probs: np.ndarray, charset: str, accept: Callable[[str], bool],
                       beam: int = STEER_BEAM) -> tuple[str, float] | None:
    """The likeliest reading of ``(T, C)`` probabilities that ``accept`` takes, and its score; None when none of
    the ``beam`` likeliest is taken.

    A beam search over alignments in which each reading counts by its likeliest alignment, the one greedy
    decoding takes for its own reading: so the first reading is greedy's, and each scores as greedy would
    score it (``confidence`` of its kept steps). A display's "19:40" read "19.40" is found here when the
    colon was second at its step, and scores lower than "19.40" did. About 1 ms a word (x86).
    """
    hypotheses: dict[tuple[str, int], tuple[float, tuple[float, ...]]] = {("", BLANK): (0.0, ())}
    with np.errstate(divide="ignore"):
        logs = np.log(probs.astype(np.float64))
    for step, row in enumerate(probs):
        tried = np.flatnonzero(row >= STEER_FLOOR)
        extended: dict[tuple[str, int], tuple[float, tuple[float, ...]]] = {}
        for (text, last), (log_prob, kept) in hypotheses.items():
            for index in tried.tolist():
                if index == BLANK:
                    key, now = (text, BLANK), kept
                elif index == last:  # a repeat: the same character, one step longer
                    key, now = (text, index), (*kept, float(row[index]))
                else:
                    key, now = (text + charset[index - 1], index), (*kept, float(row[index]))
                candidate = log_prob + float(logs[step, index])
                if key not in extended or extended[key][0] < candidate:
                    extended[key] = (candidate, now)
        hypotheses = dict(sorted(extended.items(), key=lambda item: -item[1][0])[:beam])
    for (text, _), (_, kept) in sorted(hypotheses.items(), key=lambda item: -item[1][0]):
        if accept(text):
            return text, confidence(np.array(kept))
    return None
