"""The outbox: one object that owns the MQTT publisher, the delivery thread and the spool, and the
snapshot thread (which publishes through the same publisher and never touches the spool).

The daemon hands it detections (``submit`` returns once they are durable), status and stats; it
reports its own state (``status``, ``stats``). A reload builds the new publisher first (TLS files,
credentials) and swaps only when that worked, and goes back to the old one if the new one cannot
start, so a bad edit never leaves the daemon without one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edge.config.settings import Config, ConfigError, mqtt_password
from edge.messaging.delivery import Delivery
from edge.messaging.publisher import Publisher
from edge.messaging.snapshot import BoxesChanged, SnapshotStream
from edge.messaging.spool import Spool

log = logging.getLogger(__name__)


def mqtt_settings_changed(new: Config, old: Config) -> bool:
    """A new publisher is needed: its connection, or the Home Assistant entities it announces, changed."""
    return new.mqtt != old.mqtt or new.topic_prefix != old.topic_prefix or new.client_id != old.client_id \
        or new.device_id != old.device_id or new.recognition.enabled != old.recognition.enabled \
        or new.regions != old.regions


class Outbox:
    def __init__(self, config: Config, state: Path, boxes_changed: BoxesChanged) -> None:
        self.config = config
        self.spool = Spool(state, config.mqtt.spool_max_messages, config.mqtt.spool_full_policy)
        self.publisher = Publisher(config, mqtt_password(config.mqtt))
        self.delivery = Delivery(self.publisher, self.spool, memory_limit=config.mqtt.spool_max_messages)
        self.snapshots = SnapshotStream(config.mqtt.snapshot, lambda: self.publisher, boxes_changed)

    def start(self) -> None:
        self.delivery.start()
        self.snapshots.start()
        self.publisher.start()

    def last_seq(self) -> int:
        return self.spool.last_seq()

    def submit(self, message: dict, seq: int) -> bool:
        """Returns once the detection is durable in the spool (True), or kept in memory (False: disk trouble)."""
        durable = self.delivery.submit(message, seq)
        if durable:
            log.debug("seq %d spooled", seq)
        return durable

    def swap(self, config: Config) -> Publisher:
        """Apply ``config`` (SIGHUP). A publisher for changed MQTT settings or password is built first (TLS
        files, credentials): when it cannot be, ConfigError is raised and nothing has changed. The old one
        is stopped before the new one connects (both use one client id: the broker would hand the session
        back and forth, and a snapshot sent through the old one could land after the new one cleared the
        topic); should the new one fail to start, the old one is started again and ConfigError raised.
        The spool's bound and policy apply from the next detection."""
        password = mqtt_password(config.mqtt)
        prepared = None
        if mqtt_settings_changed(config, self.config) or password != self.publisher.password:
            try:
                prepared = Publisher(config, password)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"mqtt: cannot use the new settings ({exc})") from exc
        running = self.config
        self.snapshots.configure(config.mqtt.snapshot)
        if prepared is not None:
            old = self.delivery.use(prepared)
            old.stop()
            try:
                prepared.start()
            except (OSError, ValueError) as exc:  # a host or port paho refuses: back to the running one
                self.snapshots.configure(running.mqtt.snapshot)
                self.delivery.use(old)
                old.start()
                raise ConfigError(f"mqtt: cannot use the new settings ({exc})") from exc
            self.publisher = prepared
            log.info("MQTT settings reloaded")
        self.config = config
        self.spool.configure(config.mqtt.spool_max_messages, config.mqtt.spool_full_policy)
        self.delivery.limit_memory(config.mqtt.spool_max_messages)
        return self.publisher

    def wait_until_delivered(self, timeout: float) -> bool:
        return self.delivery.wait_until_delivered(timeout)

    def stop(self, ack_timeout: float) -> int:
        """Wait up to ``ack_timeout`` s for the broker to acknowledge what was sent (only while connected),
        then publish ``offline`` and disconnect. Returns what is still unacknowledged (it stays spooled)."""
        if self.publisher.connected.is_set() and self.delivery.undelivered():
            started = time.monotonic()
            if self.delivery.wait_until_delivered(ack_timeout):
                log.info("all detections acknowledged by the broker (%.1f s)", time.monotonic() - started)
        left = self.delivery.undelivered()
        lost = self.delivery.memory_only()
        if left:
            log.warning("%d detections not acknowledged by the broker: kept in the spool for the next start%s",
                        left - lost, f"; {lost} held only in memory are lost" if lost else "")
        self.delivery.stop()
        self.snapshots.stop()
        self.publisher.stop()
        self.spool.close()
        return left

    def undelivered(self) -> int:
        return self.delivery.undelivered()

    def status(self) -> dict:
        publisher, spool = self.publisher, self.spool
        return {"broker": "connected" if publisher.connected.is_set() else f"disconnected: {publisher.last_error}",
                "spool": {"state": "unavailable" if spool.unavailable else "ok", "detail": spool.unavailable,
                          "kept_aside": spool.kept_aside}}

    def stats(self) -> dict:
        delivery = self.delivery
        status = self.status()
        return {
            **status, "ignored_messages": self.publisher.ignored_messages,
            "rejected_by_broker": self.publisher.rejected,
            "spool": {**status["spool"], "pending": delivery.undelivered(),
                      "dropped": self.spool.dropped + self.spool.dropped_disk_full + delivery.memory_dropped,
                      "write_failures": self.spool.write_failures},
            "oversized": {"trimmed": delivery.oversized_trimmed, "dropped": delivery.oversized_dropped},
            "delivery_errors": delivery.errors,
            "snapshots": self.snapshots.stats(),
        }
