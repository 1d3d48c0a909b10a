"""Delivery of detections: spool on disk -> MQTT, deleted on PUBACK.

``submit`` runs on the inference thread and returns once the detection is in the spool, committed
and fsync'd, so nothing the daemon has processed waits in memory where a SIGKILL or a power cut
would lose it. This thread publishes the spooled messages in order whenever the broker is
connected, a window at a time. PUBACKs arrive on paho's network thread; they are handed over
through a queue, because calling into our own locks from inside paho's callback could deadlock
against paho's mutexes. Each publisher gets its own generation number, so an acknowledgement
from a publisher that was replaced (reload) can never delete a message sent by the new one.

One owner of retransmission per publisher: paho. With a persistent session it keeps every QoS 1
message it was handed until its PUBACK and resends it (DUP) after each reconnect, under the same
message id, so this thread never republishes on a reconnect: it hands paho at most WINDOW
unacknowledged messages, which bounds paho's memory and what a reconnect resends, and its PUBACKs
delete from the spool whenever they come. Only a new publisher (a reload) starts over from the
spool. A message larger than the broker's Maximum Packet Size (MQTT v5) would make the broker drop
the connection, and paho would resend it first after every reconnect: it is trimmed to fit
(``payload.fit_to_size``: the lowest-scoring boxes left out, the PUBLISH's ``boxes_omitted`` user
property says how many) or,
when even that cannot fit, dropped and counted; it never blocks what follows.

Messages the spool could not store (disk full under drop_newest, a damaged database) are kept in
memory, bounded, and published too; they are the only ones a crash can lose. An unexpected error
in this thread is logged (once per kind) and the thread goes on after a pause: it never dies silently.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque

from edge.messaging.payload import fit_to_size
from edge.messaging.publisher import Publisher
from edge.messaging.spool import Spool

log = logging.getLogger(__name__)

WINDOW = 50  # messages handed to paho and not yet acknowledged
IDLE_SECONDS = 0.1
ERROR_PAUSE_SECONDS = 1.0


class Delivery(threading.Thread):
    def __init__(self, publisher: Publisher, spool: Spool, memory_limit: int) -> None:
        super().__init__(name="delivery", daemon=True)
        self.spool = spool
        self.memory_dropped = 0
        self.oversized_trimmed = 0  # sent with boxes left out, to fit the broker's Maximum Packet Size
        self.oversized_dropped = 0  # could not fit even without boxes: dropped
        self.errors = 0  # unexpected errors in this thread (logged, survived)
        self._last_error = ""
        self._lock = threading.Lock()  # guards everything below: submit, undelivered and the thread share it
        self._wake = threading.Event()
        self._stopping = False
        self._acks: queue.Queue[tuple[int, int]] = queue.Queue()  # (publisher generation, paho mid)
        self._generation = 0
        self._in_flight: dict[int, int | None] = {}  # paho mid -> spool id (None: memory-only)
        self._last_sent = 0
        self._memory: deque[str] = deque(maxlen=memory_limit)
        self._memory_payloads: dict[int, str] = {}  # in flight, not spooled: sent again by a new publisher
        self.publisher = publisher
        self._attach(publisher)

    def _attach(self, publisher: Publisher) -> None:
        """Send through ``publisher`` from now on: what the previous one held unacknowledged is sent again
        (the spooled from the spool, the memory-only ones first in memory)."""
        generation = self._generation = self._generation + 1
        self.publisher = publisher
        unacknowledged = [self._memory_payloads.pop(mid) for mid in list(self._memory_payloads)]
        room = (self._memory.maxlen or 0) - len(self._memory)
        if len(unacknowledged) > room:  # the newest in memory make way, counted
            for _ in range(len(unacknowledged) - room):
                self._memory.pop()
                self.memory_dropped += 1
        self._memory.extendleft(reversed(unacknowledged))
        self._in_flight.clear()
        self._last_sent = 0
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

    def limit_memory(self, limit: int) -> None:
        """A new bound for memory-only detections (reload); the oldest beyond it are dropped, counted."""
        with self._lock:
            if limit == self._memory.maxlen:
                return
            kept = list(self._memory)[-limit:]
            self.memory_dropped += len(self._memory) - len(kept)
            self._memory = deque(kept, maxlen=limit)

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
            try:
                with self._lock:
                    self._pump()
            except Exception as exc:  # a bug or a surprise must not stop delivery for good
                self.errors += 1
                kind = type(exc).__name__
                if kind != self._last_error:
                    log.exception("delivery: unexpected error (%s); going on in %.0f s", kind, ERROR_PAUSE_SECONDS)
                self._last_error = kind
                time.sleep(ERROR_PAUSE_SECONDS)

    def _pump(self) -> None:
        acked: list[int] = []
        while True:
            try:
                generation, mid = self._acks.get_nowait()
            except queue.Empty:
                break
            if generation != self._generation or mid not in self._in_flight:
                continue  # availability, status or stats, or a message of a publisher replaced since
            spool_id = self._in_flight.pop(mid)
            self._memory_payloads.pop(mid, None)
            if spool_id is not None:
                acked.append(spool_id)
        self.spool.ack(acked)  # deleted with the next put, or on their own within a second
        publisher = self.publisher
        if not publisher.connected.is_set():
            return  # paho holds what is in flight and resends it after the reconnect
        room = WINDOW - len(self._in_flight)
        for spool_id, payload in self.spool.pending(self._last_sent, max(room, 0)):
            self._send(publisher, payload, spool_id)
            self._last_sent = spool_id
        while self._memory and len(self._in_flight) < WINDOW:
            self._send(publisher, self._memory.popleft(), None)

    def _send(self, publisher: Publisher, payload: str, spool_id: int | None) -> None:
        """Hand one message to paho, trimmed to the broker's Maximum Packet Size (or dropped if it cannot fit)."""
        fitted = fit_to_size(payload, publisher.payload_limit())
        if fitted is None:  # not even the message without boxes fits
            self.oversized_dropped += 1
            log.error("a %d-byte detections message cannot fit the broker's maximum packet size (%s bytes) even "
                      "without boxes: dropped (%d so far)", len(payload), publisher.max_packet_bytes,
                      self.oversized_dropped)
            if spool_id is not None:
                self.spool.ack([spool_id])
            return
        text, omitted = fitted
        if omitted:
            self.oversized_trimmed += 1
            if self.oversized_trimmed == 1 or self.oversized_trimmed % 100 == 0:
                log.warning("a %d-byte detections message is over the broker's maximum packet size (%s bytes): "
                            "sent with its lowest-scoring boxes left out (boxes_omitted; %d such so far)",
                            len(payload), publisher.max_packet_bytes, self.oversized_trimmed)
        mid = publisher.publish_detection(text, omitted)
        self._in_flight[mid] = spool_id
        if spool_id is None:
            self._memory_payloads[mid] = payload
