"""The daemon: capture thread -> latest-frame slot -> inference + post-processing -> publish thread.

Signals: SIGTERM/SIGINT stop cleanly (waits up to mqtt.shutdown_ack_seconds for the broker's
acknowledgements, publishes offline, exit 0); SIGHUP reloads the configuration and the model.
Under systemd it sends READY=1 once the configuration and the model are loaded (broker and camera
may still be down: STATUS= lines and the status topic say so), and WATCHDOG=1 while its loop is
alive (edge.service.notify.Watchdog). A capture stuck inside the camera driver for
``source.stuck_seconds`` ends the daemon with status 1, so the service manager starts it afresh.
One daemon per state directory (edge.service.statelock); ``frame.seq`` comes from
edge.service.sequence.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edge import __version__
from edge.config.settings import Config, ConfigError, state_dir
from edge.detection.boxes import boxes_changed
from edge.detection.detector import Detector, configured_detector
from edge.detection.postprocess import Box
from edge.detection.tiling import CONTEXT
from edge.messaging.outbox import Outbox
from edge.messaging.payload import TilingSettings, detection_message, utc_iso
from edge.messaging.publisher import Publisher
from edge.models.inference import ModelRunner, Runners, build_runners
from edge.models.recognizer import SequenceRunner
from edge.models.selection import manifests_written
from edge.service.notify import Watchdog, notify
from edge.service.reading import (
    Reading,
    build_reading,
    flush_held,
    publish_held,
    publish_regions,
    publish_unavailable,
    read_frame,
    retry_given_up,
    stale_because,
)
from edge.service.sequence import Sequence
from edge.service.statelock import StateLock
from edge.service.stats import RollingStats
from edge.sources import Frame, make_source
from edge.sources.capture import CaptureThread, LatestFrame

log = logging.getLogger(__name__)

ACK_TIMEOUT_SECONDS = 60.0
MODEL_LOADING_SECONDS = 900.0  # the longest loading and measuring the models may take (start, reload)


@dataclass
class Components:
    """What a (re)load builds from a configuration."""

    config: Config
    runners: Runners  # the coarse model (tiling off: the only one) and the tile model
    detector: Detector
    slot: LatestFrame
    capture: CaptureThread
    capture_stop: threading.Event
    tiling: TilingSettings
    reading: Reading


def loading_key(config: Config) -> tuple:
    """What loading the models depends on: a reload that changes only how frames meet the models (tiling
    on or off excepted: off loads no tile model) keeps them; models replaced in the same folder do not."""
    return (dataclasses.replace(config.model, tiling=config.model.tiling == "off", scale=1.0,
                                context=CONTEXT), state_dir(config),
            manifests_written(Path(config.model.dir)))


def working_runner(parts: Components) -> ModelRunner:
    """The runner that does most of the work: the tile model's when tiling is on."""
    return parts.runners.coarse if parts.tiling.mode == "off" else parts.runners.tile


def tpu_state(runner: ModelRunner) -> str:
    """The Edge TPU's state, for the ``tpu``/``tpu_state`` fields that status and stats had before
    ``accelerators`` (which lists every accelerator) existed."""
    return runner.states.get("edgetpu", "not used")


class Daemon:
    def __init__(self, load: Callable[[], Config], max_frames: int | None = None) -> None:
        self.load = load  # re-run on SIGHUP: reads the file and applies command-line overrides
        self.max_frames = max_frames
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.stats = RollingStats()
        self.watchdog = Watchdog()
        self.seq = 0
        self.sequence: Sequence | None = None
        self.exit_code = 0
        self._last_boxes: list[Box] | None = None
        self._last_text: list[str | None] | None = None
        self._last_published = 0.0
        self._last_stats = time.monotonic()
        self._frame_at = time.monotonic()  # when a frame was last processed (or the capture last started)
        self._stale: str | None = None  # why the regions' readings no longer hold (stale_because)
        self._status_text = ""
        self._last_summary: tuple | None = None
        self.outbox: Outbox | None = None

    # -- building --------------------------------------------------------------------------
    def _build(self, config: Config, running: Components | None = None) -> Components:
        """The parts for ``config``; on reload, the running model is kept when the model settings
        did not change (no second set of models in memory, nothing measured again)."""
        same_model = running is not None and loading_key(running.config) == loading_key(config)
        if same_model:
            runners = running.runners
        else:
            with self.watchdog.long_work(MODEL_LOADING_SECONDS):
                runners = build_runners(config.model, state_dir(config), tile=config.model.tiling != "off")
            runners.coarse.on_inference = runners.tile.on_inference = self.watchdog.beat  # a slow frame is alive
        detector = configured_detector(config, runners.coarse, runners.tile)
        tiling = TilingSettings(config.model.tiling, config.model.scale, config.model.context, runners.tile.input_hw,
                                config.gating.enabled)
        slot = LatestFrame()
        stop = threading.Event()
        source = make_source(config.source)
        capture = CaptureThread(source, slot, stop, config.source.reopen_backoff_max_seconds,
                                max_fps=config.source.max_fps, pace_to_consumer=source.paced)
        with self.watchdog.long_work(MODEL_LOADING_SECONDS):  # the recognizer's automatic choice measures
            reading = build_reading(config, running.reading if running is not None else None)
        if reading.reader is not None and isinstance(reading.reader.model, SequenceRunner):
            reading.reader.model.on_word = self.watchdog.beat  # a frame of many words is alive
        return Components(config, runners, detector, slot, capture, stop, tiling, reading)

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> int:
        config = self.load()
        logging.getLogger().setLevel(config.log_level.upper())
        lock = StateLock(state_dir(config))
        lock.acquire()  # before anything touches the state directory; held until the process ends
        self._install_signals()  # before the models are measured: a SIGHUP then is a reload, not the end
        self.watchdog.start()
        parts = self._build(config)
        try:
            outbox = self.outbox = Outbox(config, state_dir(config), boxes_changed)
            earlier = outbox.spool.count()  # before delivery starts taking them away
            outbox.start()
        except (OSError, ValueError) as exc:  # e.g. a readable file that is no certificate: one line, exit 2
            raise ConfigError(f"mqtt: cannot use the settings ({' '.join(str(exc).split())})") from exc
        spool = outbox.spool
        self.sequence = Sequence(state_dir(config), spool.last_seq(), spool_lost=bool(spool.kept_aside))
        self.seq = self.sequence.last
        if earlier:
            log.info("spool holds %d detections from an earlier run; sending them first", earlier)
        publisher = outbox.publisher
        parts.capture.start()
        self._frame_at = time.monotonic()
        notify("READY=1")
        log.info("ready: configuration and model loaded (broker and camera state: status topic, STATUS=)")
        self._publish_status(parts, publisher)
        source_ended = False
        try:
            while not self.stop_event.is_set():
                self.watchdog.beat()
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    parts, publisher = self._reload(parts, publisher)
                frame = parts.slot.take(timeout=0.5)
                if frame is None:
                    if parts.slot.finished:
                        log.info("source ended after %d frames", self.stats.frames)
                        source_ended = True
                        break
                    self._periodic(parts, publisher)
                    continue
                self._on_frame(frame, parts, publisher)
                if self.max_frames is not None and self.stats.frames >= self.max_frames:
                    log.info("processed %d frames (--max-frames)", self.stats.frames)
                    break
        finally:
            parts.capture_stop.set()
            # A finished run (--max-frames, or a finite source) delivers everything before it exits.
            finished = self.max_frames is not None or source_ended
            if finished:
                flush_held(parts.reading, publisher)
            if finished and not outbox.wait_until_delivered(ACK_TIMEOUT_SECONDS):
                log.error("%d detections not acknowledged by the broker (kept in the spool)", outbox.undelivered())
                self.exit_code = 1
            notify("STOPPING=1")
            self.watchdog.stop()
            if self.sequence is not None:
                self.sequence.close()
            left = outbox.stop(outbox.config.mqtt.shutdown_ack_seconds)
            self._log_summary(outbox, left)
            parts.capture.join(timeout=5)
            lock.release()
        return self.exit_code

    def _on_frame(self, frame: Frame, parts: Components, publisher: Publisher) -> None:
        self._process(frame, parts)
        self._frame_at = time.monotonic()  # after it: a frame slower than the stale limit is not a lost source
        self._periodic(parts, publisher)

    def _log_summary(self, outbox: Outbox, left: int) -> None:
        """One line at exit with the run's counts: the journal keeps it after the stats topic's QoS 0
        messages are gone (or never got through a slow or absent link)."""
        snapshots = outbox.snapshots.stats()
        log.info("stopped after %d frames (%d words read, %d reused); snapshots %d published, %d dropped; "
                 "%d detections unacknowledged", self.stats.frames, self.stats.words_read, self.stats.words_reused,
                 snapshots["published"], snapshots["dropped"], left)

    def _process(self, frame: Frame, parts: Components) -> None:
        config, outbox = parts.config, self.outbox
        assert outbox is not None
        assert self.sequence is not None
        detection = parts.detector.detect(frame.rgb)
        boxes = detection.boxes
        self.seq = self.sequence.next()  # reserved on disk before it is used
        self.stats.record(detection.timing.inference if detection.tiles_run else None, detection.tiles_run,
                          detection.tiles_skipped)
        choice = parts.runners.coarse.choice
        assert choice is not None
        tile_choice = parts.runners.tile.choice or choice
        reading, regions = read_frame(parts.reading, frame.rgb, detection, config.gating.enabled)
        texts = [word.text for word in reading.words] if reading else None
        if reading:
            self.stats.record_reading(reading.read, reading.reused)
        heartbeat_due = time.monotonic() - self._last_published >= config.mqtt.heartbeat_seconds
        if (config.mqtt.publish == "every_frame" or heartbeat_due or boxes_changed(boxes, self._last_boxes)
                or texts != self._last_text):
            message = detection_message(
                device_id=config.device_id, source_kind=config.source.kind,
                source_name=frame.name, seq=self.seq, captured=frame.captured, frame_hw=frame.rgb.shape[:2],
                variant=choice.variant, backend=choice.backend, runtime=parts.runners.coarse.runtime.name,
                input_hw=parts.runners.coarse.input_hw, tiling=parts.tiling,
                tile_variant=tile_choice.variant, tile_backend=tile_choice.backend, detection=detection,
                reading=reading,
            )
            outbox.submit(message, self.seq)  # durable before the next frame
            self._last_published = time.monotonic()
            self._last_boxes = boxes
            self._last_text = texts
        publish_regions(parts.reading, regions, outbox.publisher, self.seq, frame.captured)
        outbox.snapshots.offer(frame, detection, self.seq, texts)  # after the detection; hands over, never waits

    # -- status and stats ------------------------------------------------------------------
    def _status(self, parts: Components) -> dict:
        capture = parts.capture.status
        return {
            "state": "running", "version": __version__, "device_id": parts.config.device_id,
            **parts.runners.coarse.status(), "tpu": tpu_state(working_runner(parts)), "tiling": asdict(parts.tiling),
            "tile_model": None if parts.runners.tile is parts.runners.coarse else parts.runners.tile.status(),
            "source": {"kind": parts.config.source.kind, "name": parts.config.source.name, "state": capture.state,
                       "detail": capture.detail, "reopens": capture.reopens},
            "since": utc_iso(time.time()),
            "seq_reservation": (self.sequence.failing or "ok") if self.sequence else "ok",
            "recognition": {**parts.reading.status(), "regions_stale": self._stale},
            **(self.outbox.status() if self.outbox else {}),
        }

    def _publish_status(self, parts: Components, publisher: Publisher) -> None:
        status = self._status(parts)
        publisher.publish_status(status)
        broker = status.get("broker", "").split(":")[0]
        text = f"{status['variant']} on {status['backend']}, source {status['source']['state']}, broker {broker}"
        if parts.reading.state.startswith("unavailable"):
            text += ", not reading text (see status.recognition)"
        if text != self._status_text:
            self._status_text = text
            notify(f"STATUS={text}")

    def _periodic(self, parts: Components, publisher: Publisher) -> None:
        stuck = parts.capture.stuck_for()
        if stuck > parts.config.source.stuck_seconds:
            log.error("capture stuck in the source's %s for %.0f s (source.stuck_seconds %s): exiting with status 1 "
                      "so that the service manager starts the daemon afresh", parts.capture.status.call, stuck,
                      parts.config.source.stuck_seconds)
            self.exit_code = 1
            self.stop_event.set()
        retry_given_up(parts.reading, parts.config.recognition, time.monotonic())
        broker_up = publisher.connected.is_set()
        coarse, tile = parts.runners.coarse, parts.runners.tile
        self._stale = stale_because(parts.reading, parts.capture.status, time.monotonic() - self._frame_at,
                                    parts.config.source.max_fps) if parts.reading.regions.regions else None
        summary = (coarse.choice, tile.choice, parts.capture.status.state, dict(coarse.states), dict(tile.states),
                   broker_up, self.outbox and self.outbox.spool.unavailable, self.sequence and self.sequence.failing,
                   parts.reading.state, self._stale is None)  # not its text: a source's changing error
        if summary != self._last_summary:
            self._last_summary = summary
            self._publish_status(parts, publisher)
        publish_unavailable(parts.reading, publisher, self.seq, time.time(), self._stale)
        publish_held(parts.reading, publisher)
        publisher.send_status()  # the latest, once the broker has answered and took the last one
        if time.monotonic() - self._last_stats >= parts.config.mqtt.stats_interval_seconds:
            self._last_stats = time.monotonic()
            publisher.publish_stats(self._stats(parts))

    def _stats(self, parts: Components) -> dict:
        model = parts.runners.coarse.status()
        return {
            "version": __version__, "uptime_s": self.stats.uptime(), "frames": self.stats.frames,
            "fps": round(self.stats.fps(), 2), "inference_ms": self.stats.inference_ms(),
            "frames_dropped": parts.slot.dropped, "bad_frames": parts.capture.status.bad_frames,
            "backend": model["backend"], "variant": model["variant"], "runtime": model["runtime"],
            "source_state": parts.capture.status.state, "source_reopens": parts.capture.status.reopens,
            "tpu_state": tpu_state(working_runner(parts)),
            "tiles_run": self.stats.tiles_run, "tiles_skipped": self.stats.tiles_skipped,
            "words_read": self.stats.words_read, "words_reused": self.stats.words_reused,
            **(self.outbox.stats() if self.outbox else {}),
        }

    # -- signals and reload ----------------------------------------------------------------
    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())

    def _reload(self, parts: Components, publisher: Publisher) -> tuple[Components, Publisher]:
        outbox = self.outbox
        assert outbox is not None
        notify("RELOADING=1")
        try:  # build every new part first; swap only when all of them work
            config = self.load()
            if state_dir(config) != state_dir(parts.config):
                raise ConfigError(f"state_dir: {state_dir(config)} differs from the running {state_dir(parts.config)}; "
                                  "moving the spool and the lock takes a restart")
            fresh = self._build(config, running=parts)
            publisher = outbox.swap(config)  # raises, changing nothing, when the new settings cannot work
        except Exception as exc:  # a bad edit must not take the running daemon down
            log.error("reload failed, keeping the running configuration: %s", " ".join(str(exc).split()))
            notify("READY=1")
            return parts, publisher
        parts.capture_stop.set()
        parts.capture.join(timeout=5)
        fresh.capture.start()
        self._frame_at = time.monotonic()  # the reload's own pause is not a lost source
        logging.getLogger().setLevel(config.log_level.upper())
        log.info("reloaded configuration and model")
        notify("READY=1")
        self._publish_status(fresh, publisher)
        return fresh, publisher
