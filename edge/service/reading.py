"""The daemon's reading step: the recognizer loaded (or why not), a frame's boxes and regions read, the
regions' readings published when they change.

Reading never stops the daemon: a bundle without a recognizer, or one that cannot be used, leaves it
detecting without reading, and the status says why (``state``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edge.config.reading import RecognitionConfig
from edge.config.settings import Config
from edge.detection.detector import Detection, Rect
from edge.messaging.payload import TextReading, utc_iso
from edge.messaging.publisher import Publisher
from edge.models.manifest import ManifestError
from edge.models.recognizer import load_reader, no_recognizer
from edge.models.runtime import ModelLoadError, default_threads
from edge.models.selection import NoUsableModel, manifests_written
from edge.recognition.reader import Reader
from edge.recognition.regions import RegionReading, Regions, joined
from edge.recognition.words import FrameReader
from edge.sources.capture import SourceState

log = logging.getLogger(__name__)

FAILURES_BEFORE_GIVING_UP = 3  # frames in a row whose reading raised: then detect without reading
RETRY_SECONDS = 600.0  # then reading is tried again this long after (a passing cause: memory short for a while)
RETRY_MAX_SECONDS = 4 * 3600.0  # twice as long after each retry that failed again, up to this
REASON_CHARS = 200  # of why reading is unavailable, in a region's message and the status (exceptions run long)
# no frame for this long leaves the regions' last readings stale: a lost camera, or one sending only bad
# frames (for a source that is not lost, also three frame intervals of a lower source.max_fps). Shorter gaps
# (a flaky stream's) do not flip every region's sensor to unavailable and back.
NO_FRAME_SECONDS = 30.0
DETAIL_CHARS = 120  # of the source's reason, in the stale reason
FLUSH_SECONDS = 10.0  # a finished run waits this long for its held region readings to go (one PUBACK each)


@dataclass(frozen=True)
class Unavailable:
    """What a region's retained topic last said when it said the region cannot be read."""

    reason: str


@dataclass
class Reading:
    """What a (re)load builds for reading: None readers when reading is off or unavailable."""

    reader: Reader | None  # the recognizer as loaded (kept across reloads that do not touch it)
    frames: FrameReader | None  # the reader under the config's rules, with the last frame's readings
    regions: Regions
    state: str  # "off", "reading", or "unavailable: why"
    key: tuple = ()  # what loading the recognizer depended on
    published: dict[str, str | Unavailable] = field(default_factory=dict)  # each region's last text, or why not
    published_on: int = 0  # the publisher's connection count when ``published`` was last sent
    # readings not taken while the region's last message was unacknowledged: name -> (reading, seq, captured)
    held: dict[str, tuple[RegionReading, int, float]] = field(default_factory=dict)
    failures: int = 0  # frames in a row whose reading failed
    traced: set[str] = field(default_factory=set)  # the errors logged with their traceback (once each)
    given_up_at: float | None = None  # time.monotonic() when reading was given up after failed frames
    retries: int = 0  # retries since reading last worked

    def status(self) -> dict:
        # capped: an exception's text, or every variant's load error, in a status that must fit the broker's packets
        return {"state": self.state[:REASON_CHARS], "variant": self.reader.variant if self.reader else None}


def loading_key(config: Config) -> tuple[tuple, object]:
    """What loading the recognizer depends on, (settings, files): a reload that changes only the detector's
    settings keeps it (one recognizer in memory, with its interpreters); models converted again into the
    folder do not."""
    return ((config.recognition.enabled, config.recognition.variant, config.model.dir, config.model.num_threads),
            manifests_written(Path(config.model.dir)))


def build_reading(config: Config, running: Reading | None = None) -> Reading:
    """The reading parts for ``config``; the running recognizer is kept when nothing it depends on changed."""
    regions = Regions(config.regions)
    settings = config.recognition
    if not settings.enabled:
        return Reading(None, None, regions, "off")
    key = loading_key(config)
    if running is not None and running.key == key and running.reader is not None:
        reader, state = running.reader, "reading"  # it loaded before; given up or refused, it is tried again
    else:  # loaded afresh, also when it could not be before: a reload is the way to try again
        reader, state, absent = load(config)
        if (reader is None and running is not None and running.reader is not None and running.key[0] == key[0]
                and not absent):
            # only the files changed, and they do not load (half copied): reading goes on with the recognizer
            # in memory, and the next reload tries the files again. A bundle that names no recognizer any more
            # (converted again with --no-recognizer) is meant: reading stops, as a restart would stop it
            log.error("the recognizer's files changed but cannot be loaded (%s); reading on with the one loaded "
                      "before", state.removeprefix("unavailable: "))
            reader, state, key = running.reader, "reading", running.key
        elif reader is None:
            log.error("recognition.enabled, but the daemon cannot read: %s; detecting without reading",
                      state.removeprefix("unavailable: "))
    frames = None
    if reader is not None:
        try:
            frames = FrameReader(reader, settings)
        except ValueError as exc:
            log.error("%s; detecting without reading", exc)
            state = f"unavailable: {exc}"
    # regions are published afresh after a reload: the broker or the prefix may be another
    return Reading(reader, frames, regions, state, key)


class Loaded(NamedTuple):
    """What loading the bundle's recognizer gave: it and ``reading``, or None and ``unavailable: why``."""

    reader: Reader | None
    state: str
    absent: bool = False  # the bundle names no recognizer (not: it names one that cannot be loaded)


def load(config: Config) -> Loaded:
    """The bundle's recognizer, or why not (for the caller to log)."""
    variant = None if config.recognition.variant == "auto" else config.recognition.variant
    try:
        reader = load_reader(Path(config.model.dir), variant, config.model.num_threads or default_threads())
    except (ManifestError, NoUsableModel, ModelLoadError, OSError) as exc:
        reason = " ".join(str(exc).split())
    except Exception as exc:  # anything else the files cause: still no reason to stop detecting
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    else:
        if reader is not None:
            log.info("reading text with the recognizer's %s variant", reader.variant)
            return Loaded(reader, "reading")
        return Loaded(None, f"unavailable: {config.model.dir}{no_recognizer(Path(config.model.dir))}", absent=True)
    return Loaded(None, f"unavailable: {reason}")


def changed_rects(detection: Detection, gated: bool) -> list[Rect] | None:
    """Where the frame changed since the last (gating): nothing when no model ran, the tiles that ran, or
    (None) all of it: no gating, tiling off, or adaptive's coarse pass only."""
    if not gated:
        return None
    if detection.tiles_run == 0:
        return []
    return list(detection.tiles) or None


def read_frame(reading: Reading, rgb: np.ndarray, detection: Detection, gated: bool
               ) -> tuple[TextReading | None, dict[str, RegionReading]]:
    """The frame's boxes and fixed regions read (None, {} when not reading) and each region's reading."""
    if reading.frames is None:
        return None, {}
    frame_hw = rgb.shape[:2]
    quads = [box.points for box in detection.boxes]
    fixed = reading.regions.fixed_quads(frame_hw)
    try:
        # past max_words, region boxes first (the regions' centre test again only then)
        first = reading.regions.boxes_inside(quads) if len(quads) > reading.frames.max_words else ()
        result, fixed_raw = reading.frames.read(rgb, quads, changed_rects(detection, gated), fixed, first=first)
        regions = reading.regions.read(frame_hw, quads, result.raw, fixed_raw, reading.frames.kept)
    except Exception as exc:  # the frame is still published, without text; the daemon goes on
        reading.frames.forget()  # also when its regions failed after its boxes were read
        reading.failures += 1
        kind = type(exc).__name__
        log.error("reading a frame failed (%s: %s); published without text", kind, exc,
                  exc_info=kind not in reading.traced)
        reading.traced.add(kind)
        if reading.failures >= FAILURES_BEFORE_GIVING_UP:
            reading.frames, reading.state = None, f"unavailable: failed {reading.failures} frames in a row: {exc}"
            reading.given_up_at = time.monotonic()
            log.error("reading given up after %d failed frames in a row; tried again in %.0f s or on SIGHUP",
                      reading.failures, retry_wait(reading.retries))
        return None, {}
    reading.failures = reading.retries = 0
    text, _ = joined(quads, result.words)
    return TextReading(reading.frames.variant, result.words, text, result.read, result.reused, result.ms), regions


def retry_wait(retries: int) -> float:
    """Seconds from giving up to the next retry, after ``retries`` retries that failed again."""
    return min(RETRY_SECONDS * 2 ** min(retries, 16), RETRY_MAX_SECONDS)


def retry_given_up(reading: Reading, settings: RecognitionConfig, now: float) -> None:
    """Reading given up after failed frames is tried again, with the same recognizer, RETRY_SECONDS after
    (``now``: time.monotonic()); failing again, it waits twice as long each time (up to RETRY_MAX_SECONDS),
    so a recognizer that cannot work fills the log a few times a day, not six times an hour."""
    wait = retry_wait(reading.retries)
    if reading.given_up_at is None or reading.reader is None or now - reading.given_up_at < wait:
        return
    reading.given_up_at = None
    try:
        reading.frames = FrameReader(reading.reader, settings)  # the rules it was built with before
    except ValueError as exc:
        log.error("%s; detecting without reading", exc)
        return
    reading.state, reading.failures, reading.retries = "reading", 0, reading.retries + 1
    log.info("reading text again, %.0f s after it was given up", wait)


def publish_regions(reading: Reading, regions: dict[str, RegionReading], publisher: Publisher, seq: int,
                    captured: float) -> None:
    """Each region's reading on its retained topic, only when its text changed since it was last published.
    While the broker is away, or the region's last message is unacknowledged, its newest reading is held
    (``publish_held``), not queued: a flickering reading would pile up."""
    if not publisher.connected.is_set():
        reading.held.update((name, (region, seq, captured)) for name, region in regions.items())
        return
    forget_after_reconnect(reading, publisher)
    for name, region in regions.items():
        _offer(reading, publisher, name, region, seq, captured)


def _offer(reading: Reading, publisher: Publisher, name: str, region: RegionReading, seq: int,
           captured: float) -> None:
    reading.held.pop(name, None)  # this one is newer
    said: str | Unavailable
    if region.unavailable is not None:  # said again only when the reason changes (a stale one, another size)
        said = unavailable = Unavailable(region.unavailable[:REASON_CHARS])
        message = unavailable_message(unavailable, seq, captured)
    else:
        said = region.text
        message = {"text": region.text, "words": [{"text": word.text, "score": word.score} for word in region.words],
                   "seq": seq, "timestamp": utc_iso(captured)}
    if reading.published.get(name) == said:
        return
    if publisher.publish_region(name, message):
        reading.published[name] = said
    else:
        reading.held[name] = (region, seq, captured)


def publish_held(reading: Reading, publisher: Publisher) -> None:
    """Offers the held region readings again (the daemon's periodic step: also while no frame comes)."""
    for name, (region, seq, captured) in list(reading.held.items()):
        publish_regions(reading, {name: region}, publisher, seq, captured)


def flush_held(reading: Reading, publisher: Publisher, timeout: float = FLUSH_SECONDS) -> None:
    """At the end of a finished run: the held readings go out before it exits, as its detections do (a
    broker away meanwhile is waited for, up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    try:
        while reading.held and time.monotonic() < deadline:
            publish_held(reading, publisher)
            time.sleep(0.05)
    except Exception:  # it runs on the way out: the rest of the shutdown (offline, the lock) must still happen
        log.exception("the regions' last readings could not be sent at exit")


def unavailable_message(said: Unavailable, seq: int, captured: float) -> dict:
    """A region's message saying it cannot be read: text null, no words, and why."""
    return {"text": None, "words": [], "seq": seq, "timestamp": utc_iso(captured), "unavailable": said.reason}


def forget_after_reconnect(reading: Reading, publisher: Publisher) -> None:
    """A new connection: every region is sent again. A broker that restarted without persistence (mosquitto's
    default) has lost the retained readings, and a steady meter would otherwise leave its topic empty."""
    if reading.published_on != publisher.connections:
        reading.published.clear()
        reading.published_on = publisher.connections


def stale_because(reading: Reading, source: SourceState, no_frame_for: float, max_fps: float) -> str | None:
    """Why the regions' last readings no longer hold, or None: reading is unavailable, or no frame has been
    processed for ``no_frame_for`` seconds, past ``NO_FRAME_SECONDS`` (a source that is not lost: also past
    three of its frame intervals). The same words while the cause lasts: it goes into the status."""
    if reading.state.startswith("unavailable"):
        return reading.state[:REASON_CHARS]  # it goes into the status, which must fit the broker's packets
    limit = NO_FRAME_SECONDS if source.state == "lost" or max_fps <= 0 else max(NO_FRAME_SECONDS, 3 / max_fps)
    if no_frame_for >= limit:
        detail = " ".join(source.detail.split())[:DETAIL_CHARS]
        return f"unavailable: no frame for over {limit:.0f} s (source {source.state}{': ' if detail else ''}{detail})"
    return None


def publish_unavailable(reading: Reading, publisher: Publisher, seq: int, captured: float,
                        reason: str | None) -> None:
    """While the regions' readings are stale (``reason``, from ``stale_because``), each region says so once
    (``text`` null, ``unavailable`` why): its last text would look current. The daemon calls this from its
    periodic step, so also while no frame comes; the next reading after it is published whatever its text."""
    if reason is None or not publisher.connected.is_set():
        return
    forget_after_reconnect(reading, publisher)
    said = Unavailable(reason[:REASON_CHARS])
    reading.held.clear()  # readings from before the cause: no longer current
    for config in reading.regions.regions:
        # once while the cause lasts: a lost source's detail may change from one call to the next
        if not isinstance(reading.published.get(config.name), Unavailable) and publisher.publish_region(
                config.name, unavailable_message(said, seq, captured)):
            reading.published[config.name] = said
