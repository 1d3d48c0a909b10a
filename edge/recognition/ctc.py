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
STEER_CLASSES = 4  # the likeliest classes of a step tried (at most)
STEER_FLOOR = 1e-3  # classes less likely than this at a step are not tried (greedy's best never is below)


def likeliest_accepted(probs: np.ndarray, charset: str, accept: Callable[[str], bool],
                       beam: int = STEER_BEAM) -> tuple[str, float] | None:
    """The likeliest reading of ``(T, C)`` probabilities that ``accept`` takes, and its score; None when none of
    the ``beam`` likeliest is taken.

    A beam search over alignments in which each reading counts by its likeliest alignment, the one greedy
    decoding takes for its own reading: so the first reading is greedy's, and each scores as greedy would
    score it (``confidence`` of its kept steps). A display's "19:40" read "19.40" is found here when the
    colon was second at its step. Only each step's STEER_CLASSES likeliest classes are tried: at most
    T x beam x STEER_CLASSES extensions, about 1 ms for a word, 10 ms for a 1024 px crop of noise (x86).
    """
    if not np.isfinite(probs).all():  # a model gone wrong: nothing to steer towards
        return None
    # (text, last class) -> (log probability of the alignment, log probability of its kept steps, kept steps)
    hypotheses: dict[tuple[str, int], tuple[float, float, int]] = {("", BLANK): (0.0, 0.0, 0)}
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(probs.astype(np.float64))
    for step, row in enumerate(probs):
        likeliest = np.argsort(-row, kind="stable")[:STEER_CLASSES]  # ties: the lowest class first, as argmax
        tried = [int(index) for index in likeliest if row[index] >= STEER_FLOOR]
        extended: dict[tuple[str, int], tuple[float, float, int]] = {}
        for (text, last), (log_prob, kept_log, kept) in hypotheses.items():
            for index in tried:
                gain = float(logs[step, index])
                if index == BLANK:
                    key, now = (text, BLANK), (log_prob + gain, kept_log, kept)
                elif index == last:  # a repeat: the same character, one step longer
                    key, now = (text, index), (log_prob + gain, kept_log + gain, kept + 1)
                else:
                    key, now = (text + charset[index - 1], index), (log_prob + gain, kept_log + gain, kept + 1)
                if key not in extended or extended[key][0] < now[0]:
                    extended[key] = now
        hypotheses = dict(sorted(extended.items(), key=lambda item: -item[1][0])[:beam])
    tried_texts = set()  # a text reached by two alignments is tried once (a pattern can be slow)
    for (text, _), (_, kept_log, kept) in sorted(hypotheses.items(), key=lambda item: -item[1][0]):
        if text in tried_texts:
            continue
        tried_texts.add(text)
        if accept(text):
            return text, float(np.exp(kept_log * 2.0 / np.sqrt(kept))) if kept else 0.0
    return None
