"""Delivery of detections: bounded queue -> spool on disk -> MQTT, deleted on PUBACK.

The inference thread only puts messages on a bounded queue. This thread writes each one to the
spool, and whenever the broker is connected publishes the spooled messages in order, a window
at a time. PUBACKs arrive on paho's network thread; they are handed over through a queue, because
calling into our own locks from inside paho's callback could deadlock against paho's mutexes.
Messages the spool could not store (disk full) are kept in memory, bounded, and published too.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque

from edge.publisher import Publisher
from edge.spool import Spool

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
WINDOW = 50  # messages handed to paho and not yet acknowledged


class Delivery(threading.Thread):
    def __init__(self, publisher: Publisher, spool: Spool, memory_limit: int) -> None:
        super().__init__(name="delivery", daemon=True)
        self.publisher = publisher
        self.spool = spool
        self.incoming: queue.Queue[tuple[dict, int] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._acks: queue.Queue[int] = queue.Queue()
        self._in_flight: dict[int, int | None] = {}  # paho mid -> spool id (None: memory-only)
        self._last_sent = 0
        self._memory: deque[str] = deque(maxlen=memory_limit)
        self._memory_payloads: dict[int, str] = {}  # in flight, not spooled: resent after a reconnect
        self.memory_dropped = 0
        self._connection_seen = 0
        publisher.on_ack = self._acks.put

    # -- called from other threads ---------------------------------------------------------
    def submit(self, message: dict, seq: int) -> None:
        """Hand over one detection; waits only if the bounded queue is full."""
        self.incoming.put((message, seq))

    def undelivered(self) -> int:
        return self.spool.count() + len(self._memory) + sum(1 for v in self._in_flight.values() if v is None)

    def wait_until_delivered(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.incoming.unfinished_tasks or self.undelivered():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self.incoming.put(None)
        self.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                item = self.incoming.get(timeout=0.1)
            except queue.Empty:
                item = ()
            if item is None:
                self.incoming.task_done()
                self._pump()
                return
            if item:
                message, seq = item
                payload = json.dumps(message, separators=(",", ":"))
                if self.spool.put(payload, seq) is None:
                    if len(self._memory) == self._memory.maxlen:
                        self.memory_dropped += 1
                    self._memory.append(payload)
                self.incoming.task_done()
            self._pump()

    def _pump(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            if mid not in self._in_flight:
                continue  # availability, status or stats, or a message from an earlier connection
            spool_id = self._in_flight.pop(mid)
            self._memory_payloads.pop(mid, None)
            if spool_id is not None:
                self.spool.ack(spool_id)
        if not self.publisher.connected.is_set():
            return
        if self._connection_seen != self.publisher.connections:
            # A new connection: send everything still spooled again, in order. Messages that were
            # in flight may arrive twice (QoS 1 allows it; frame.seq identifies them).
            self._connection_seen = self.publisher.connections
            self._memory.extendleft(reversed([self._memory_payloads.pop(m) for m in list(self._memory_payloads)]))
            self._in_flight.clear()
            self._last_sent = 0
        room = WINDOW - len(self._in_flight)
        for spool_id, payload in self.spool.pending(self._last_sent, max(room, 0)):
            self._in_flight[self.publisher.publish_detection(payload)] = spool_id
            self._last_sent = spool_id
        while self._memory and len(self._in_flight) < WINDOW:
            payload = self._memory.popleft()
            mid = self.publisher.publish_detection(payload)
            self._in_flight[mid] = None
            self._memory_payloads[mid] = payload
