"""MQTT side: topics, availability (retained + last will), status, stats, region readings, Home Assistant
discovery (the entities: edge.messaging.homeassistant).

paho-mqtt 2.x with ``CallbackAPIVersion.VERSION2`` and MQTT v5. The network loop runs in paho's
own thread with automatic reconnects (exponential backoff); ``publish`` only queues, so
publishing never blocks capture or inference. Incoming messages (Home Assistant's birth message;
the retained region readings and sensor configs, for clearing removed regions) are parsed
defensively: anything unexpected is ignored and counted.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config.settings import Config
from edge.messaging.connection import apply_credentials
from edge.messaging.homeassistant import OFFLINE, ONLINE, discovery_messages
from edge.messaging.leftovers import LeftoverRegions
from edge.messaging.topics import Topics

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 3600
MAX_INCOMING_BYTES = 1024
# MQTT v5 Maximum Packet Size on CONNECT: the broker must not send us anything bigger, so an
# oversized message never reaches paho's memory (the payload limit above is checked after that).
MAX_PACKET_BYTES = 4096
PACKET_OVERHEAD_BYTES = 1024  # a PUBLISH's fixed header, topic and user properties, generously
ACKS_KEPT = 1024  # message ids remembered acknowledged: far more than are ever in flight (Delivery keeps 50)


class Publisher:
    def __init__(self, config: Config, password: str | None) -> None:
        self.config = config
        self.password = password
        self.topics = Topics.for_prefix(config.topic_prefix)
        self.connected = threading.Event()
        self.connections = 0  # successful connections so far
        self.last_error = ""
        self.ignored_messages = 0
        self.rejected = 0  # publishes the broker refused in its PUBACK (e.g. not authorised by its ACL)
        self.max_packet_bytes: int | None = None
        self.on_ack: Callable[[int], None] = lambda mid: None
        self._status: dict[str, Any] = {}  # the latest (the daemon's thread alone touches the status)
        self._status_sent: tuple[bytes, int] | None = None  # the last status sent, and on which connection
        self._oversized: set[str] = set()  # topics whose message was over the broker's limit: logged once each
        self._sent: dict[str, mqtt.MQTTMessageInfo] = {}  # status and region topics -> their last message
        # the last PUBACKs' message ids (paho's thread appends): an info handed over with no connection never
        # says it was acknowledged
        self._acked: collections.deque[int] = collections.deque(maxlen=ACKS_KEPT)
        # paho's network thread alone touches these
        self._subscriptions: dict[int, tuple[str, str]] = {}  # mid -> (filter, what is lost without it)
        self._refused_subscriptions: set[str] = set()
        self._handling_failed = False
        settings = config.mqtt
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=mqtt.MQTTv5)
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=int(settings.reconnect_max_seconds))
        client.max_queued_messages_set(0)
        apply_credentials(client, settings, password)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        self._publish_properties: Properties | None = None
        if settings.message_expiry_seconds:
            self._publish_properties = Properties(PacketTypes.PUBLISH)
            self._publish_properties.MessageExpiryInterval = settings.message_expiry_seconds
        self.client = client
        self.leftovers = LeftoverRegions(config, self.topics,
                                         lambda topic: client.publish(topic, b"", qos=1, retain=True))

    # -- connection ------------------------------------------------------------------------
    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        properties.MaximumPacketSize = MAX_PACKET_BYTES
        self.client.connect_async(
            self.config.mqtt.host, self.config.mqtt.port, keepalive=self.config.mqtt.keepalive,
            clean_start=False, properties=properties,
        )
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._report_failure(f"the broker refused the connection: {reason}")
            return
        log.info("connected to MQTT broker %s:%s", self.config.mqtt.host, self.config.mqtt.port)
        self.last_error = ""
        self.connections += 1
        # MQTT v5: the largest packet this broker takes (a bigger one closes the connection); None: no limit said
        self.max_packet_bytes = getattr(properties, "MaximumPacketSize", None)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        if not self.config.mqtt.snapshot.enabled:  # snapshots off: leave no picture of the view on the broker
            client.publish(self.topics.snapshot, b"", qos=0, retain=True)
        home_assistant = self.config.mqtt.home_assistant.enabled
        if home_assistant:
            self._subscribe(f"{self.config.mqtt.home_assistant.discovery_prefix}/status",
                            "Home Assistant's restarts will not bring its entities back")
            self._publish_discovery()
        # the broker answers these with what it retains (edge.messaging.leftovers); No Local: what this client
        # publishes there is not sent back to it (retained copies still are, whoever published them)
        self.leftovers.new_connection()
        for topic_filter, without in self.leftovers.filters():
            self._subscribe(topic_filter, without, no_local=True)
        self.connected.set()

    def _subscribe(self, topic_filter: str, without: str, no_local: bool = False) -> None:
        _, mid = self.client.subscribe(topic_filter, options=SubscribeOptions(qos=1, noLocal=no_local))
        self._subscriptions[mid] = (topic_filter, without)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list, properties: Any) -> None:
        topic_filter, without = self._subscriptions.pop(mid, ("?", "?"))
        refused = [code for code in reason_codes if code.is_failure]
        if refused and topic_filter not in self._refused_subscriptions:  # once per filter, not per reconnect
            self._refused_subscriptions.add(topic_filter)
            log.warning("the broker refused the subscription to %s (%s; its ACL needs read access): %s",
                        topic_filter, refused[0], without)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if reason is not None and reason.is_failure:
            self.rejected += 1
            if self.rejected == 1 or self.rejected % 100 == 0:
                log.error("the broker refused a message (%s: detections, status, a region's reading); %d refused "
                          "so far; check its ACL", reason, self.rejected)
        self._acked.append(mid)
        self.on_ack(mid)  # refused or not, resending would not help

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` block: the exception says why.
        error = sys.exc_info()[1]
        self._report_failure(f"cannot connect ({type(error).__name__}: {error})" if error else "cannot connect")

    def _report_failure(self, reason: str) -> None:
        """One log line per distinct failure (not per retry); retries go on with backoff."""
        if reason != self.last_error:
            log.error("MQTT %s:%s: %s; retrying with backoff up to %ss", self.config.mqtt.host,
                      self.config.mqtt.port, reason, int(self.config.mqtt.reconnect_max_seconds))
        self.last_error = reason

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        if reason.is_failure and self.last_error == "":
            log.warning("MQTT connection lost (%s); reconnecting with backoff", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._handle(message)
        except Exception:  # paho's network thread ends on an exception from a callback: never from a message
            self.ignored_messages += 1
            if not self._handling_failed:
                self._handling_failed = True
                log.exception("an incoming MQTT message could not be handled; ignored (logged once)")

    def _handle(self, message: mqtt.MQTTMessage) -> None:
        if self.leftovers.handle(message):
            return
        expected = f"{self.config.mqtt.home_assistant.discovery_prefix}/status"
        try:
            if (not self.config.mqtt.home_assistant.enabled or message.topic != expected
                    or len(message.payload) > MAX_INCOMING_BYTES):
                raise ValueError("unexpected topic or size")
            text = message.payload.decode("utf-8").strip()
        except (ValueError, UnicodeDecodeError):
            self.ignored_messages += 1
            return
        if text == ONLINE:
            log.info("Home Assistant is online; republishing discovery")
            self._publish_discovery()
        elif text != OFFLINE:
            self.ignored_messages += 1

    def _publish_discovery(self) -> None:
        """Every entity's config (retained); an entity switched off gets an empty one, which removes it."""
        for topic, payload in discovery_messages(self.config, self.topics):
            self._publish_retained(topic, json.dumps(payload).encode() if payload else b"",
                                   "Home Assistant discovery (that entity is left out)", track=False)

    def _publish_retained(self, topic: str, payload: bytes, what: str, track: bool = True) -> bool:
        """QoS 1, retained, unless over the broker's MaximumPacketSize: then it is not sent, and said once per
        topic (the broker would close the connection on it, and paho send it again after every reconnect).
        False when paho did not take it (a message id still in use): to be offered again."""
        if not self.fits(payload):
            if topic not in self._oversized:
                self._oversized.add(topic)
                log.error("%s on %s: %d bytes, over the broker's maximum packet size (%s bytes with headers): not "
                          "sent", what, topic, len(payload), self.max_packet_bytes)
            return True
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return False
        if track:  # paho's thread publishes discovery untracked: only the daemon's touches _sent
            self._sent[topic] = info
        return True

    def _in_flight(self, topic: str) -> bool:
        """Is the last message on ``topic`` unacknowledged? Across a reconnect too: paho sends it again first,
        and anything newer sent before its PUBACK could arrive before it and be overwritten as the retained one."""
        info = self._sent.get(topic)
        if info is None:
            return False
        try:
            return not info.is_published()
        except RuntimeError:  # handed over with no connection: paho sends it on the next, but its info never says
            return info.mid not in self._acked

    # -- publishing ------------------------------------------------------------------------
    def publish_detection(self, payload: str, boxes_omitted: int = 0) -> int:
        """Queue one detections message with paho; returns its message id (for the PUBACK). ``boxes_omitted``:
        boxes left out to fit the broker's Maximum Packet Size, said in a user property of that name."""
        properties = self._publish_properties
        if boxes_omitted:
            properties = Properties(PacketTypes.PUBLISH)
            if self._publish_properties is not None:
                properties.MessageExpiryInterval = self._publish_properties.MessageExpiryInterval
            properties.UserProperty = [("boxes_omitted", str(boxes_omitted))]
        info = self.client.publish(self.topics.detections, payload, qos=self.config.mqtt.qos, properties=properties)
        return info.mid

    def publish_status(self, status: dict) -> None:
        """Keeps ``status`` as the latest and sends it if it can (``send_status``)."""
        self._status = status
        self.send_status()

    def send_status(self) -> None:
        """The latest status, retained, once per connection (a broker restarted without persistence has lost
        it): only while connected (before the CONNACK the broker's packet limit is unknown, and paho would hold
        each one unchecked for the next connection) and not while the last one is unacknowledged (paho sends
        that one again first after a reconnect). The daemon's periodic step calls it: the latest goes out once
        it can. The daemon's thread only: paho's may call back while holding locks that publish takes."""
        if not self._status or not self.connected.is_set() or self._in_flight(self.topics.status):
            return
        payload = json.dumps(self._status).encode()
        if self._status_sent != (payload, self.connections) and self._publish_retained(
                self.topics.status, payload, "status"):
            self._status_sent = (payload, self.connections)

    def payload_limit(self) -> int | None:
        """The largest payload this broker takes (its MaximumPacketSize less room for topic and headers);
        None when it said no limit."""
        return None if self.max_packet_bytes is None else max(self.max_packet_bytes - PACKET_OVERHEAD_BYTES, 0)

    def fits(self, payload: bytes) -> bool:
        """Is ``payload`` small enough for this broker's MaximumPacketSize (with room for topic and headers)?"""
        limit = self.payload_limit()
        return limit is None or len(payload) <= limit

    def publish_snapshot(self, jpeg: bytes, seq: int, timestamp: str) -> mqtt.MQTTMessageInfo:
        """Queue one snapshot (retained, QoS 0: never spooled); the frame's seq and capture time ride
        along as MQTT v5 user properties, so a subscriber can pair it with its detections message."""
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("seq", str(seq)), ("timestamp", timestamp)]
        return self.client.publish(self.topics.snapshot, jpeg, qos=0, retain=True, properties=properties)

    def unsent_bytes(self) -> int:
        """Bytes the kernel still holds for the broker on this connection (not sent, or not yet acknowledged
        by TCP): how far a slow link is behind. 0 where the system cannot say (Linux can: TIOCOUTQ)."""
        sock = self.client.socket()
        if sock is None or not hasattr(termios, "TIOCOUTQ"):
            return 0
        try:
            return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, bytes(4)))[0]
        except (OSError, ValueError):  # closed meanwhile
            return 0

    def publish_region(self, name: str, reading: dict) -> bool:
        """A region's reading (retained, QoS 1, not spooled: the daemon sends it only when it changes). Over
        the broker's MaximumPacketSize it goes without its words, or, still too large, says the region is
        unavailable: a packet over it closes the connection, and paho would send it again after every reconnect.

        False, sending nothing, while the region's last message is not yet acknowledged (``_in_flight``):
        the caller offers its newest reading again later. A changing region would otherwise pile messages up
        in paho's queue on a slow link, and the detections wait behind them (``Delivery`` keeps its own window).
        """
        topic = self.topics.region(name)
        if self._in_flight(topic):
            return False
        payload = json.dumps(reading).encode()
        if not self.fits(payload):
            payload = json.dumps({**reading, "words": [], "words_dropped": len(reading["words"])}).encode()
        if not self.fits(payload):
            oversized = len(payload)
            payload = json.dumps({"text": None, "words": [], "seq": reading["seq"], "timestamp": reading["timestamp"],
                                  "unavailable": "reading over the broker's maximum packet size"}).encode()
            if topic not in self._oversized:
                self._oversized.add(topic)
                log.error("region %s: a %d-byte reading is over the broker's maximum packet size (%s bytes): %s",
                          name, oversized, self.max_packet_bytes,
                          "published as unavailable" if self.fits(payload) else "not sent")
        return self._publish_retained(topic, payload, f"region {name}")

    def publish_stats(self, stats: dict) -> None:
        self.client.publish(self.topics.stats, json.dumps(stats), qos=0)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline`` (retained), flush what can be flushed, disconnect."""
        if self.connected.is_set():
            deadline = time.monotonic() + timeout  # the newest status first: one made while the last was unacknowledged
            while self._in_flight(self.topics.status) and self.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.send_status()
            info = self.client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
