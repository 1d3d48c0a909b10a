"""config.yaml's ``recognition`` and ``regions`` sections: reading the words the detector finds.

Checked on load like every section (one line naming the key): a pattern that is no regular
expression, a region without area, two regions of one name (also in other case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from re import _constants, _parser  # type: ignore[attr-defined]  # sre's parser: 3.11+

from edge.models.variants import AUTO, RECOGNIZER_VARIANTS

REGION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a topic level and a Home Assistant object id as it is


@dataclass
class RecognitionConfig:
    """Reading the text of every box (edge.recognition); needs a bundle with a recognizer."""

    enabled: bool = False
    variant: str = field(default=AUTO, metadata={"choices": (AUTO, *RECOGNIZER_VARIANTS)})
    min_score: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})  # readings scored lower: text null
    allow: str = ""  # the only characters a reading may hold ("": every character the recognizer knows)
    patterns: list[str] = field(default_factory=list)  # a reading must match one (re.search) to be kept
    max_words: int = field(default=50, metadata={"min": 1, "max": 1000})  # per frame, the largest boxes first


@dataclass
class RegionConfig:
    """A named rectangle of the frame whose words are published together on ``<prefix>/regions/<name>``."""

    name: str
    rect: list[int]  # [left, top, right, bottom] in source-frame pixels
    patterns: list[str] = field(default_factory=list)  # only words matching one (re.search) count here
    detect: bool = True  # false: the rectangle is read whole as one word, without detection


REPEATS_MANY = 4  # a repeat allowed more times than this counts as repeating (polynomial past it, then exponential)
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT)
_ZERO_WIDTH = (_constants.AT, _constants.ASSERT, _constants.ASSERT_NOT)


def _flat(items: list) -> list:
    r"""The items of a sequence with groups opened: ``(\d+)\.?`` is the sequence ``\d+``, ``\.?``."""
    return [item for op, av in items
            for item in (_flat(av[-1]) if op is _constants.SUBPATTERN else [(op, av)])]


def _may_be_empty(op: object, av: object) -> bool:
    if op in _REPEATS or op is _constants.POSSESSIVE_REPEAT:
        return av[0] == 0 or all(_may_be_empty(*item) for item in av[2])  # type: ignore[index]
    if op is _constants.SUBPATTERN:
        return all(_may_be_empty(*item) for item in av[-1])  # type: ignore[index]
    if op is _constants.ATOMIC_GROUP:
        return all(_may_be_empty(*item) for item in av)  # type: ignore[union-attr]
    if op is _constants.BRANCH:
        return any(all(_may_be_empty(*item) for item in branch) for branch in av[1])  # type: ignore[index]
    return op in _ZERO_WIDTH


def _splits_ambiguously(body: list) -> bool:
    r"""Whether one pass of a repeated ``body`` can take a run of any length that the next pass could take
    too: a variable-length repeat beside nothing but what may match empty (``\d+``, ``\d+\.?\d*``), or a
    branch that is such a body. A required separator (``\d+,``, ``\w+ ``) settles each split."""
    flat = _flat(body)
    if len(flat) == 1 and flat[0][0] is _constants.BRANCH:
        return any(_splits_ambiguously(branch) for branch in flat[0][1][1])
    return any(op in _REPEATS and av[0] != av[1] and av[1] > 1
               and all(_may_be_empty(*other) for j, other in enumerate(flat) if j != k)
               for k, (op, av) in enumerate(flat))


def repeats_a_repeat(items: list) -> bool:
    r"""Whether a parsed expression repeats a body that splits ambiguously, as ``(\d+)+`` and
    ``(\d+\.?\d*)+`` do: on a reading that almost matches, Python's ``re`` tries every way to split it, time
    doubling with each character (20 characters: up to a minute, past the watchdog). Possessive repeats
    and atomic groups give nothing back, so they end the search (``(\d++)+`` is fine)."""
    for op, av in items:
        if op in _REPEATS:
            if av[1] > REPEATS_MANY and _splits_ambiguously(av[2]):
                return True
            children = [av[2]]
        elif op is _constants.POSSESSIVE_REPEAT:
            children = [av[2]]
        elif op is _constants.ATOMIC_GROUP:
            children = [av]
        elif op is _constants.SUBPATTERN or op in (_constants.ASSERT, _constants.ASSERT_NOT):
            children = [av[-1]]
        elif op is _constants.BRANCH:
            children = av[1]
        elif op is _constants.GROUPREF_EXISTS:  # (?(1)yes|no)
            children = [branch for branch in av[1:] if branch is not None]
        else:
            continue
        if any(repeats_a_repeat(child) for child in children):
            return True
    return False


def check_patterns(patterns: list[str], key: str) -> None:
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{key}[{index}] {pattern!r} is not a regular expression ({exc})") from exc
        try:
            slow = repeats_a_repeat(_parser.parse(pattern).data)
        except RecursionError:
            raise ValueError(f"{key}[{index}] {pattern!r} nests too deeply to be checked") from None
        if slow:
            raise ValueError(f"{key}[{index}] {pattern!r} repeats a repeat, which can take a minute per word in "
                             "Python's re; make the inner one possessive (\\d++) or atomic ((?>...)), or unroll it")


def check_reading(recognition: RecognitionConfig, regions: list[RegionConfig]) -> None:
    """ValueError naming the key when the two sections cannot work."""
    check_patterns(recognition.patterns, "recognition.patterns")
    if not recognition.allow.isprintable():
        raise ValueError(f"recognition.allow {recognition.allow!r} must be printable characters")
    seen: dict[str, str] = {}  # lower case -> the name as first written
    for index, region in enumerate(regions):
        key = f"regions[{index}]"
        if not REGION_NAME.fullmatch(region.name):
            raise ValueError(f"{key}.name {region.name!r} must be 1-64 of A-Z a-z 0-9 _ - "
                             "(it is a topic level)")
        earlier = seen.get(region.name.lower())
        if earlier == region.name:
            raise ValueError(f"{key}.name {region.name!r} is used twice")
        if earlier is not None:
            raise ValueError(f"{key}.name {region.name!r} differs from {earlier!r} only in case (a typo? Home "
                             "Assistant would tell their sensors apart only by a _2)")
        seen[region.name.lower()] = region.name
        rect = region.rect
        if len(rect) != 4 or min(rect) < 0 or rect[0] >= rect[2] or rect[1] >= rect[3]:
            raise ValueError(f"{key}.rect {rect} must be [left, top, right, bottom] in frame pixels, "
                             "0 or more, left < right and top < bottom")
        check_patterns(region.patterns, f"{key}.patterns")
    if regions and not recognition.enabled:
        raise ValueError("regions need recognition.enabled: true")
