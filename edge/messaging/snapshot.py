"""Snapshots: the frame with its boxes drawn, as JPEG, published without ever delaying detections.

People setting up a camera, and Home Assistant dashboards, want to see what the device sees. A
snapshot is opt-in (``mqtt.snapshot``), because it is the camera's view. It is due when the boxes
changed since the last one (at most one per ``min_interval_seconds``) or ``interval_seconds`` have
passed, so a still scene costs one picture per interval, not one per frame.

The inference thread only decides whether a snapshot is due and hands the frame over (``offer``):
drawing, scaling and JPEG encoding run on this module's own thread, which holds at most one
waiting frame (a newer one replaces it: drop-oldest). A snapshot goes out at QoS 0 and is never
spooled. Snapshots share the connection with detections, so one sent into a slow link delays the
detections behind it: while the broker is away, or the previous snapshot is still in paho's
buffer, or the kernel still holds more than BACKLOG_BYTES for the broker (Linux tells), a due
snapshot is dropped instead. Drops are counted in stats.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
from paho.mqtt.client import MQTT_ERR_SUCCESS

from edge.config.settings import SnapshotConfig
from edge.messaging.payload import BoxLike, DetectionLike, utc_iso

if TYPE_CHECKING:
    from paho.mqtt.client import MQTTMessageInfo

    from edge.messaging.publisher import Publisher

log = logging.getLogger(__name__)

BOX_BGR = (255, 0, 255)  # magenta: rare in scenes, and still magenta after JPEG
TILE_BGR = (255, 255, 0)  # cyan, blended in faintly
TILE_OPACITY = 0.35
BACKLOG_BYTES = 16 * 1024  # a few detections' worth still on its way to the broker: the link keeps up
Tile = tuple[int, int, int, int]  # (x0, y0, x1, y1) in source-frame pixels
# whether a frame's boxes differ from the last snapshot's (edge.detection.boxes.boxes_changed, handed in
# by the daemon: this part never imports the pipeline)
BoxesChanged = Callable[[Sequence[BoxLike], Sequence[BoxLike] | None], bool]


class FrameLike(Protocol):
    """A captured frame as a snapshot reads it (edge.sources.Frame)."""

    @property
    def rgb(self) -> np.ndarray: ...

    @property
    def captured(self) -> float: ...


def annotate(rgb: np.ndarray, boxes: Sequence[BoxLike], tiles: Sequence[Tile] = (), max_width: int = 0,
             texts: Sequence[str | None] = ()) -> np.ndarray:
    """BGR picture of ``rgb`` scaled down to ``max_width`` (0: full size), tiles faint, boxes on top, each box's
    text (``texts``, one per box; None: none) written above it."""
    height, width = rgb.shape[:2]
    scale = max_width / width if 0 < max_width < width else 1.0
    if scale < 1.0:
        size = (max_width, max(1, round(height * scale)))
        picture = cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    else:
        picture = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    thickness = max(2, round(picture.shape[1] / 640))
    if tiles:
        overlay = picture.copy()
        for x0, y0, x1, y1 in tiles:
            corners = np.round(np.array([x0, y0, x1 - 1, y1 - 1]) * scale).astype(int)
            cv2.rectangle(overlay, tuple(corners[:2]), tuple(corners[2:]), TILE_BGR, thickness)
        cv2.addWeighted(overlay, TILE_OPACITY, picture, 1 - TILE_OPACITY, 0, dst=picture)
    polygons = [np.round(box.points * scale).astype(np.int32) for box in boxes]
    cv2.polylines(picture, polygons, True, BOX_BGR, thickness)
    for polygon, text in zip(polygons, texts, strict=False):
        if text:
            write(picture, text, (int(polygon[:, 0].min()), int(polygon[:, 1].min()) - thickness), thickness)
    return picture


def write(picture: np.ndarray, text: str, bottom_left: tuple[int, int], thickness: int) -> None:
    """``text`` in white on a box-coloured band whose bottom-left corner is ``bottom_left`` (kept inside)."""
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness
    (width, height), baseline = cv2.getTextSize(text, font, size, max(1, thickness // 2))
    x = min(max(0, bottom_left[0]), max(0, picture.shape[1] - width))
    y = max(height + baseline, bottom_left[1])
    cv2.rectangle(picture, (x, y - height - baseline), (x + width, y), BOX_BGR, cv2.FILLED)
    cv2.putText(picture, text, (x, y - baseline), font, size, (255, 255, 255), max(1, thickness // 2), cv2.LINE_AA)


def encode_jpeg(picture: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


class Schedule:
    """When a snapshot is due: ``interval`` s after the last one, or sooner (but not within
    ``min_interval`` s of it) when the boxes changed. Comparing boxes costs time with many of them,
    so an unchanged scene is compared at most once per ``min_interval``."""

    def __init__(self, settings: SnapshotConfig, changed: BoxesChanged,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.changed = changed
        self.clock = clock
        self._last: float | None = None
        self._last_compared = 0.0
        self._boxes: Sequence[BoxLike] = []

    def due(self, boxes: Sequence[BoxLike]) -> bool:
        """True when a snapshot of the frame with ``boxes`` is due; it then counts as taken."""
        now = self.clock()
        if self._last is not None and now - self._last < self.settings.interval_seconds:
            if now - self._last_compared < self.settings.min_interval_seconds:  # compared or taken lately
                return False
            self._last_compared = now
            if not self.changed(boxes, self._boxes):
                return False
        self._last = self._last_compared = now
        self._boxes = boxes
        return True


@dataclass(frozen=True)
class Job:
    frame: FrameLike
    boxes: Sequence[BoxLike]
    tiles: tuple[Tile, ...]
    seq: int
    texts: Sequence[str | None]


class SnapshotStream(threading.Thread):
    """Draws, encodes and publishes due snapshots on its own thread; ``offer`` never waits."""

    def __init__(self, settings: SnapshotConfig, publisher: Callable[[], Publisher], changed: BoxesChanged) -> None:
        super().__init__(name="snapshots", daemon=True)
        self.publisher = publisher  # the current one: a reload may replace it
        self.schedule = Schedule(settings, changed)
        self.published = 0
        self.dropped = 0
        self._too_large_logged = False
        self._job: Job | None = None
        self._wake = threading.Condition()
        self._stopping = False
        self._failures = 0
        self._sent: tuple[Publisher, int, MQTTMessageInfo] | None = None  # the last snapshot handed to paho

    @property
    def settings(self) -> SnapshotConfig:
        return self.schedule.settings

    def configure(self, settings: SnapshotConfig) -> None:
        """New settings (reload); they apply from the next frame."""
        self.schedule.settings = settings

    # -- the inference thread --------------------------------------------------------------
    def offer(self, frame: FrameLike, detection: DetectionLike, seq: int,
              texts: Sequence[str | None] | None = None) -> None:
        """Hand over a processed frame (``texts``: its boxes' readings, None when not reading); kept for
        drawing only when a snapshot is due."""
        if not self.settings.enabled or not self.schedule.due(detection.boxes):
            return
        tiles = detection.tiles
        with self._wake:
            if self._job is not None:
                self.dropped += 1  # the thread is behind: the newer frame wins
            self._job = Job(frame, detection.boxes, tiles, seq, texts or ())
            self._wake.notify()

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped}

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self.is_alive():
            self.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self._wake:
                while self._job is None and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job, self._job = self._job, None
            try:
                self._send(job)
            except Exception:  # a snapshot must never take the daemon down
                self._drop()
                self._failures += 1
                if self._failures == 1 or self._failures % 100 == 0:
                    log.exception("snapshot of frame %d failed (%d failures so far)", job.seq, self._failures)

    def _drop(self) -> None:
        with self._wake:  # offer() counts under the same lock, from the inference thread
            self.dropped += 1

    def _send(self, job: Job) -> None:
        settings, publisher = self.settings, self.publisher()
        if not settings.enabled:  # turned off by a reload since: the new connection has emptied the topic
            return
        if not publisher.connected.is_set() or self._busy(publisher):
            self._drop()
            return
        picture = annotate(job.frame.rgb, job.boxes, job.tiles, settings.max_width, job.texts)
        jpeg = encode_jpeg(picture, settings.jpeg_quality)
        if not publisher.fits(jpeg):  # the broker would close the connection: lower max_width or jpeg_quality
            self._drop()
            if not self._too_large_logged:
                self._too_large_logged = True
                log.error("a %d-byte snapshot is over the broker's maximum packet size (%s bytes): not sent; "
                          "lower mqtt.snapshot.max_width or jpeg_quality", len(jpeg), publisher.max_packet_bytes)
            return
        info = publisher.publish_snapshot(jpeg, job.seq, utc_iso(job.frame.captured))
        if info.rc != MQTT_ERR_SUCCESS:  # the connection went away meanwhile
            self._drop()
            return
        self._sent = (publisher, publisher.connections, info)
        self.published += 1

    def _busy(self, publisher: Publisher) -> bool:
        """A slow link: the last snapshot still waits in paho's buffer on this connection, or the kernel
        still holds more than BACKLOG_BYTES for the broker. A snapshot sent now would queue in front of
        the detections that follow it."""
        if publisher.unsent_bytes() > BACKLOG_BYTES:
            return True
        if self._sent is None:
            return False
        sent_by, connection, info = self._sent
        return sent_by is publisher and connection == publisher.connections and not info.is_published()


def save_snapshot(folder: Path, topic: str, payload: bytes, properties: Any) -> Path | None:
    """The subscriber's side (``craft-edge watch --snapshots``): write a received snapshot as
    ``<device>_<seq>.jpg`` (the topic level above ``snapshot``, and the frame's seq from the MQTT v5
    user properties); None for an empty payload, which clears a retained snapshot."""
    if not payload:
        return None
    seq = dict(getattr(properties, "UserProperty", None) or []).get("seq", "")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", topic.split("/")[-2])
    path = folder / (f"{name}_{int(seq):08d}.jpg" if seq.isdigit() else f"{name}_{time.time_ns()}.jpg")
    path.write_bytes(payload)
    return path
