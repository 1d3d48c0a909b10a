"""A real mosquitto broker per test, and a subscriber that collects what arrives."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A mosquitto process on a fixed port that a test can stop and start again.

    Persistence is on, so sessions and queued QoS 1 messages survive a restart, as on a real
    installation. ``extra_config`` adds listener options (TLS, passwords, ACLs).
    """

    def __init__(self, folder: Path, extra_config: str = "", listener_options: str = "allow_anonymous true",
                 extra_ports: tuple[int, ...] = ()) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        # As root, mosquitto would drop to its own user and could not write its log and persistence
        # file in the test's folder; "user root" keeps it as the invoking user (ignored otherwise).
        self.config.write_text(
            f"user root\nper_listener_settings true\nlistener {self.port} 127.0.0.1\n{listener_options}\n"
            f"persistence true\npersistence_location {folder}/\nlog_dest file {self.log}\n"
            f"log_type error\nlog_type warning\nlog_type notice\nlog_type information\n{extra_config}"
        )
        self.extra_ports = extra_ports  # further listeners in extra_config; start() waits for them too
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen([binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        for port in (self.port, *self.extra_ports):
            while True:
                try:
                    socket.create_connection((self.host, port), timeout=0.2).close()
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        detail = self.process.stderr.read().decode() if self.process.stderr else ""
                        raise RuntimeError(f"mosquitto did not start listening on {port}: {detail}") from None
                    time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def mosquitto(folder: Path, extra_config: str = "", listener_options: str = "allow_anonymous true") -> Iterator[Broker]:
    broker = Broker(folder, extra_config, listener_options)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: dict[str, str] = field(default_factory=dict)  # MQTT v5 user properties


@dataclass
class Subscriber:
    """Subscribes to ``topic`` and keeps every message; ``wait_for`` polls with a deadline."""

    broker: Broker
    topic: str
    client_id: str = ""  # set: a persistent session that survives disconnects and broker restarts
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        properties = None
        if self.client_id:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self.client.connect(self.broker.host, self.broker.port, clean_start=not self.client_id, properties=properties)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber did not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            user = dict(getattr(message.properties, "UserProperty", None) or [])
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain), user))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Link:
    """A TCP proxy on loopback between a client and the broker that a test can cut, like Wi-Fi that
    drops: ``cut`` resets every connection through it at once (what was in transit is lost).
    ``latency`` delays every chunk each way, so that messages are in flight when it drops."""

    def __init__(self, broker: Broker, latency: float = 0.0) -> None:
        self.broker = broker
        self.latency = latency
        self.host = "127.0.0.1"
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        self.cuts = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.broker.host, self.broker.port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(self.latency)
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                    sock.close()
        self.cuts += 1

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.cut()
