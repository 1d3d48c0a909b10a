"""config.yaml's ``recognition`` and ``regions`` sections: reading the words the detector finds.

Checked on load like every section (one line naming the key): a pattern that is no regular
expression or that backtracks catastrophically on readings-like probes, a region without area, two
regions of one name (also in other case).
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field

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


PATTERN_MAX_CHARS = 20  # patterns are tried on readings up to this long (a longer one never matches)
PROBE_UNITS = ("1", "A", "a", " ", ".", "-", "1.", "1 ", "A1", "1,", "1-")  # what readings are made of
PROBE_LENGTHS = (8, 12, 16, PATTERN_MAX_CHARS)
PROBE_LIMIT_SECONDS = 0.05  # a search slower than this on a probe, times up to max_words words a frame: refused


def slowest_probe(compiled: re.Pattern[str]) -> tuple[float, str]:
    """The slowest search of ``compiled`` over probes like readings (runs of one unit, up to the longest reading
    a pattern is tried on, ending in a character no reading holds or not): catastrophic backtracking shows
    on them. Lengths grow and stop at the first slow probe, so a pattern that would take a minute at 20
    characters costs a fraction of a second here; a slow probe is timed twice (a pause is not the pattern)."""
    slowest = (0.0, "")
    for unit, end in itertools.product(PROBE_UNITS, ("", "\x00")):
        for length in PROBE_LENGTHS:
            text = (unit * length)[:length - len(end)] + end
            seconds = search_seconds(compiled, text)
            if seconds > PROBE_LIMIT_SECONDS:
                seconds = min(seconds, search_seconds(compiled, text))
            slowest = max(slowest, (seconds, text))
            if seconds > PROBE_LIMIT_SECONDS:
                return slowest
    return slowest


def search_seconds(compiled: re.Pattern[str], text: str) -> float:
    started = time.perf_counter()
    compiled.search(text)
    return time.perf_counter() - started


def check_patterns(patterns: list[str], key: str) -> None:
    for index, pattern in enumerate(patterns):
        where = f"{key}[{index}] {pattern!r}"
        try:
            compiled = re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ValueError(f"{where} is not a regular expression ({exc or type(exc).__name__})") from None
        seconds, probe = slowest_probe(compiled)
        if seconds > PROBE_LIMIT_SECONDS:
            raise ValueError(f"{where} took {seconds:.2f} s on {probe!r}, more with every character (readings of up "
                             f"to {PATTERN_MAX_CHARS} characters are tried): a repeat inside a repeat can split a run "
                             "many ways; make the inner one possessive (\\d++) or atomic ((?>...)), or unroll it")


def check_reading(recognition: RecognitionConfig, regions: list[RegionConfig]) -> None:
    """ValueError naming the key when the two sections cannot work."""
    check_patterns(recognition.patterns, "recognition.patterns")
    if not recognition.allow.isprintable():
        raise ValueError(f"recognition.allow {recognition.allow!r} must be printable characters")
    seen: dict[str, str] = {}  # as Home Assistant's entity ids tell names apart -> the name as first written
    for index, region in enumerate(regions):
        key = f"regions[{index}]"
        if not REGION_NAME.fullmatch(region.name):
            raise ValueError(f"{key}.name {region.name!r} must be 1-64 of A-Z a-z 0-9 _ - "
                             "(it is a topic level)")
        slug = re.sub(r"[-_]+", "_", region.name.lower()).strip("_")  # Home Assistant's entity id of "Region <name>"
        earlier = seen.get(slug)
        if earlier == region.name:
            raise ValueError(f"{key}.name {region.name!r} is used twice")
        if earlier is not None:
            raise ValueError(f"{key}.name {region.name!r} differs from {earlier!r} only in case or in - and _ "
                             "(a typo? Home Assistant would tell their sensors apart only by a _2)")
        seen[slug] = region.name
        rect = region.rect
        # 2 px at least: a crop narrower has no inside to read (1 px was accepted, then said to be outside)
        if len(rect) != 4 or min(rect) < 0 or rect[0] + 2 > rect[2] or rect[1] + 2 > rect[3]:
            raise ValueError(f"{key}.rect {rect} must be [left, top, right, bottom] in frame pixels, "
                             "0 or more, at least 2 px wide and high")
        check_patterns(region.patterns, f"{key}.patterns")
    if regions and not recognition.enabled:
        raise ValueError("regions need recognition.enabled: true")
