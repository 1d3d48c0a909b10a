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


def repeats_a_repeat(items: list, inside: bool = False) -> bool:
    r"""Whether a parsed expression repeats a variable-length repeat, as in ``(\d+)+`` or ``(\d+\.?\d*)+``:
    on a reading that almost matches, Python's ``re`` tries every way to split it, time doubling with each
    character (20 characters: up to a minute, past the watchdog). Possessive repeats and atomic groups
    give nothing back, so they end the search (``(\d++)+`` is fine)."""
    for op, av in items:
        if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT):
            low, high, body = av
            if inside and high > 1 and low != high:
                return True
            children, deeper = [body], inside or high > REPEATS_MANY
        elif op is _constants.POSSESSIVE_REPEAT:
            children, deeper = [av[2]], False
        elif op is _constants.ATOMIC_GROUP:
            children, deeper = [av], False
        elif op in (_constants.SUBPATTERN, _constants.ASSERT, _constants.ASSERT_NOT):
            children, deeper = [av[-1]], inside
        elif op is _constants.BRANCH:
            children, deeper = av[1], inside
        elif op is _constants.GROUPREF_EXISTS:  # (?(1)yes|no)
            children, deeper = [branch for branch in av[1:] if branch is not None], inside
        else:
            continue
        if any(repeats_a_repeat(child, deeper) for child in children):
            return True
    return False


def check_patterns(patterns: list[str], key: str) -> None:
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{key}[{index}] {pattern!r} is not a regular expression ({exc})") from exc
        if repeats_a_repeat(_parser.parse(pattern).data):
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
