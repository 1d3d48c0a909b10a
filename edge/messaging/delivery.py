"""Delivery of detections: spool on disk -> MQTT, deleted on PUBACK.

``submit`` runs on the inference thread and returns once the detection is in the spool, committed
and fsync'd, so nothing the daemon has processed waits in memory where a SIGKILL or a power cut
would lose it. This thread publishes the spooled messages in order whenever the broker is
connected, a window at a time. PUBACKs arrive on paho's network thread; they are handed over
through a queue, because calling into our own locks from inside paho's callback could deadlock
against paho's mutexes. Each publisher gets its own generation number, so an acknowledgement
from a publisher that was replaced (reload) can never delete a message sent by the new one.

Messages the spool could not store (disk full under drop_newest, a damaged database) are kept in
memory, bounded, and published too; they are the only ones a crash can lose.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque

from edge.messaging.publisher import Publisher
from edge.messaging.spool import Spool

log = logging.getLogger(__name__)

WINDOW = 50  # messages handed to paho and not yet acknowledged
IDLE_SECONDS = 0.1


class Delivery(threading.Thread):
    def __init__(self, publisher: Publisher, spool: Spool, memory_limit: int) -> None:
        super().__init__(name="delivery", daemon=True)
        self.spool = spool
        self.memory_dropped = 0
        self._lock = threading.Lock()  # guards everything below: submit, undelivered and the thread share it
        self._wake = threading.Event()
        self._stopping = False
        self._acks: queue.Queue[tuple[int, int]] = queue.Queue()  # (publisher generation, paho mid)
        self._generation = 0
        self._in_flight: dict[int, int | None] = {}  # paho mid -> spool id (None: memory-only)
        self._last_sent = 0
        self._memory: deque[str] = deque(maxlen=memory_limit)
        self._memory_payloads: dict[int, str] = {}  # in flight, not spooled: resent after a reconnect
        self._connection_seen = 0
        self.publisher = publisher
        self._attach(publisher)

    def _attach(self, publisher: Publisher) -> None:
        generation = self._generation = self._generation + 1
        self.publisher = publisher
        self._connection_seen = -1  # first pump on this publisher's connection resends what is in flight
        publisher.on_ack = lambda mid: self._acks.put((generation, mid))

    # -- called from other threads ---------------------------------------------------------
    def submit(self, message: dict, seq: int) -> bool:
        """Store one detection; True once it is durable in the spool, False if it is kept in memory only."""
        payload = json.dumps(message, separators=(",", ":"))
        stored = self.spool.put(payload, seq) is not None
        if not stored:
            with self._lock:
                if len(self._memory) == self._memory.maxlen:
                    self.memory_dropped += 1
                self._memory.append(payload)
        self._wake.set()
        return stored

    def use(self, publisher: Publisher) -> Publisher:
        """Publish through ``publisher`` from now on (reload); returns the previous one, for stopping."""
        with self._lock:
            previous = self.publisher
            self._attach(publisher)
        self._wake.set()
        return previous

    def undelivered(self) -> int:
        with self._lock:
            in_memory = len(self._memory) + sum(1 for v in self._in_flight.values() if v is None)
        return self.spool.count() + in_memory

    def memory_only(self) -> int:
        """Detections held only in memory (not spooled), in flight or waiting."""
        with self._lock:
            return len(self._memory) + len(self._memory_payloads)

    def wait_until_delivered(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.undelivered():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        self.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def run(self) -> None:
        while not self._stopping:
            self._wake.wait(IDLE_SECONDS)
            self._wake.clear()
            with self._lock:
                self._pump()

    def _pump(self) -> None:
        while True:
            try:
                generation, mid = self._acks.get_nowait()
            except queue.Empty:
                break
            if generation != self._generation or mid not in self._in_flight:
                continue  # availability, status or stats, or a message from an earlier connection or publisher
            spool_id = self._in_flight.pop(mid)
            self._memory_payloads.pop(mid, None)
            if spool_id is not None:
                self.spool.ack(spool_id)
        publisher = self.publisher
        if not publisher.connected.is_set():
            return
        if self._connection_seen != publisher.connections:
            # A new connection: send everything still spooled again, in order. Messages that were
            # in flight may arrive twice (QoS 1 allows it; frame.seq identifies them).
            self._connection_seen = publisher.connections
            self._memory.extendleft(reversed([self._memory_payloads.pop(m) for m in list(self._memory_payloads)]))
            self._in_flight.clear()
            self._last_sent = 0
        room = WINDOW - len(self._in_flight)
        for spool_id, payload in self.spool.pending(self._last_sent, max(room, 0)):
            self._in_flight[publisher.publish_detection(payload)] = spool_id
            self._last_sent = spool_id
        while self._memory and len(self._in_flight) < WINDOW:
            payload = self._memory.popleft()
            mid = publisher.publish_detection(payload)
            self._in_flight[mid] = None
            self._memory_payloads[mid] = payload
