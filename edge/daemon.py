"""The daemon: capture thread -> latest-frame slot -> inference + post-processing -> publish thread.

Signals: SIGTERM/SIGINT stop cleanly (offline published, queued messages flushed, exit 0);
SIGHUP reloads the configuration and the model. Under systemd it sends READY=1 once camera,
model and broker are up, WATCHDOG=1 while frames are processed, and STATUS= lines.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge import __version__
from edge.capture import CaptureThread, LatestFrame
from edge.config import Config, mqtt_password, state_dir
from edge.delivery import Delivery
from edge.detector import Detector
from edge.inference import ModelRunner, build_runner
from edge.notify import Watchdog, notify
from edge.payload import boxes_changed, detection_message, utc_iso
from edge.postprocess import Box, Thresholds
from edge.publisher import Publisher
from edge.sources import Frame, make_source
from edge.spool import Spool
from edge.stats import RollingStats

log = logging.getLogger(__name__)

ACK_TIMEOUT_SECONDS = 60.0


@dataclass
class Components:
    """What a (re)load builds from a configuration."""

    config: Config
    runner: ModelRunner
    detector: Detector
    slot: LatestFrame
    capture: CaptureThread
    capture_stop: threading.Event


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
        self._last_boxes: list[Box] | None = None
        self._last_published = 0.0
        self._last_stats = time.monotonic()
        self._ready_sent = False
        self._status_text = ""
        self._last_summary: tuple | None = None
        self.delivery: Delivery | None = None

    # -- building --------------------------------------------------------------------------
    def _build(self, config: Config) -> Components:
        runner = build_runner(config.model, state_dir(config))
        detection = config.detection
        detector = Detector(runner, Thresholds(detection.text_threshold, detection.link_threshold, detection.low_text))
        slot = LatestFrame()
        stop = threading.Event()
        source = make_source(config.source)
        capture = CaptureThread(source, slot, stop, config.source.reopen_backoff_max_seconds,
                                max_fps=config.source.max_fps, pace_to_consumer=source.paced)
        return Components(config, runner, detector, slot, capture, stop)

    # -- main loop -------------------------------------------------------------------------
    def _start_delivery(self, config: Config, spool: Spool) -> tuple[Publisher, Delivery]:
        publisher = Publisher(config, mqtt_password(config.mqtt))
        delivery = self.delivery = Delivery(publisher, spool, memory_limit=config.mqtt.spool_max_messages)
        delivery.start()
        publisher.start()
        return publisher, delivery

    def run(self) -> int:
        config = self.load()
        logging.getLogger().setLevel(config.log_level.upper())
        parts = self._build(config)
        spool = Spool(state_dir(config), config.mqtt.spool_max_messages, config.mqtt.spool_full_policy)
        self.seq = spool.last_seq()
        if spool.count():
            log.info("spool holds %d detections from an earlier run; sending them first", spool.count())
        publisher, _ = self._start_delivery(config, spool)
        parts.capture.start()
        self._install_signals()
        self._publish_status(parts, publisher)
        exit_code = 0
        source_ended = False
        try:
            while not self.stop_event.is_set():
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
                self._process(frame, parts, publisher)
                self._periodic(parts, publisher)
                if self.max_frames is not None and self.stats.frames >= self.max_frames:
                    log.info("processed %d frames (--max-frames)", self.stats.frames)
                    break
        finally:
            parts.capture_stop.set()
            delivery = self.delivery
            assert delivery is not None
            publisher = delivery.publisher
            # A finished run (--max-frames, or a finite source) delivers everything before it exits.
            finished = self.max_frames is not None or source_ended
            if finished and not delivery.wait_until_delivered(ACK_TIMEOUT_SECONDS):
                log.error("%d detections not acknowledged by the broker (kept in the spool)", delivery.undelivered())
                exit_code = 1
            delivery.stop()
            notify("STOPPING=1")
            publisher.stop()
            spool.close()
            parts.capture.join(timeout=5)
        return exit_code

    def _process(self, frame: Frame, parts: Components, publisher: Publisher) -> None:
        config = parts.config
        detection = parts.detector.detect(frame.rgb)
        boxes, timing = detection.boxes, detection.timing
        self.seq += 1
        self.stats.record(timing.inference)
        self.watchdog.alive()
        choice = parts.runner.choice
        assert choice is not None
        heartbeat_due = time.monotonic() - self._last_published >= config.mqtt.heartbeat_seconds
        if config.mqtt.publish == "every_frame" or heartbeat_due or boxes_changed(boxes, self._last_boxes):
            message = detection_message(
                device_id=config.device_id, source_kind=config.source.kind,
                source_name=frame.name, seq=self.seq, captured=frame.captured, frame_hw=frame.rgb.shape[:2],
                variant=choice.variant, backend=choice.backend, runtime=parts.runner.runtime.name,
                input_hw=parts.runner.input_hw, timing=timing, boxes=boxes,
            )
            assert self.delivery is not None
            self.delivery.submit(message, self.seq)
            self._last_published = time.monotonic()
            self._last_boxes = boxes
        if not self._ready_sent and publisher.connected.is_set():
            notify("READY=1")
            self._ready_sent = True
            log.info("ready: camera, model and broker are up")

    # -- status and stats ------------------------------------------------------------------
    def _status(self, parts: Components) -> dict:
        capture = parts.capture.status
        return {
            "state": "running", "version": __version__, "device_id": parts.config.device_id,
            **parts.runner.status(), "tpu": tpu_state(parts.runner),
            "source": {"kind": parts.config.source.kind, "name": parts.config.source.name, "state": capture.state,
                       "detail": capture.detail, "reopens": capture.reopens},
            "since": utc_iso(time.time()),
        }

    def _publish_status(self, parts: Components, publisher: Publisher) -> None:
        status = self._status(parts)
        publisher.publish_status(status)
        text = f"{status['variant']} on {status['backend']}, source {status['source']['state']}"
        if text != self._status_text:
            self._status_text = text
            notify(f"STATUS={text}")

    def _periodic(self, parts: Components, publisher: Publisher) -> None:
        if parts.capture.status.state == "lost" and parts.capture.is_alive():
            self.watchdog.alive()  # not stuck: waiting for the camera, reopening with backoff
        summary = (parts.runner.choice, parts.capture.status.state, dict(parts.runner.states))
        if summary != self._last_summary:
            self._last_summary = summary
            self._publish_status(parts, publisher)
        if time.monotonic() - self._last_stats >= parts.config.mqtt.stats_interval_seconds:
            self._last_stats = time.monotonic()
            publisher.publish_stats(self._stats(parts, publisher))

    def _stats(self, parts: Components, publisher: Publisher) -> dict:
        model = parts.runner.status()
        return {
            "version": __version__, "uptime_s": self.stats.uptime(), "frames": self.stats.frames,
            "fps": round(self.stats.fps(), 2), "inference_ms": self.stats.inference_ms(),
            "frames_dropped": parts.slot.dropped, "bad_frames": parts.capture.status.bad_frames,
            "backend": model["backend"], "variant": model["variant"], "runtime": model["runtime"],
            "source_state": parts.capture.status.state, "tpu_state": tpu_state(parts.runner),
            "ignored_messages": publisher.ignored_messages, "rejected_by_broker": publisher.rejected,
            "broker": "connected" if publisher.connected.is_set() else f"disconnected: {publisher.last_error}",
            "spool": self._spool_stats(),
        }

    def _spool_stats(self) -> dict:
        delivery = self.delivery
        if delivery is None:
            return {}
        return {"pending": delivery.undelivered(), "dropped": delivery.spool.dropped + delivery.memory_dropped,
                "write_failures": delivery.spool.write_failures}

    # -- signals and reload ----------------------------------------------------------------
    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())

    def _reload(self, parts: Components, publisher: Publisher) -> tuple[Components, Publisher]:
        notify("RELOADING=1")
        try:
            config = self.load()
            fresh = self._build(config)
        except Exception as exc:  # a bad edit must not take the running daemon down
            log.error("reload failed, keeping the running configuration: %s", exc)
            notify("READY=1")
            return parts, publisher
        parts.capture_stop.set()
        parts.capture.join(timeout=5)
        mqtt_changed = config.mqtt != parts.config.mqtt or config.topic_prefix != parts.config.topic_prefix
        if mqtt_changed or mqtt_password(config.mqtt) != publisher.password:
            assert self.delivery is not None
            spool = self.delivery.spool
            self.delivery.stop()
            publisher.stop()
            publisher, _ = self._start_delivery(config, spool)
        fresh.capture.start()
        logging.getLogger().setLevel(config.log_level.upper())
        log.info("reloaded configuration and model")
        notify("READY=1")
        self._publish_status(fresh, publisher)
        return fresh, publisher
