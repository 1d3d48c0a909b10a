"""On-disk spool of detections the broker has not acknowledged yet (SQLite in WAL mode).

Every detection is written here before it is published and deleted when the broker's PUBACK
arrives, so messages survive a broker outage and a daemon crash: after a restart the spool is
replayed in order. The spool is bounded; when full it drops the oldest messages (counted). The
last frame sequence number is kept here too, so ``frame.seq`` keeps rising across restarts and
subscribers can recognise QoS 1 duplicates by it.

A spool that cannot be written (disk full) does not stop the daemon: the message is still
published from memory, the failure is counted and reported in stats, and the oldest spooled
messages are dropped to make room.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.sqlite3"


class Spool:
    def __init__(self, folder: Path, max_messages: int, policy: str = "drop_oldest") -> None:
        self.path = folder / SPOOL_FILE
        self.max_messages = max_messages
        self.newest_first = policy == "drop_newest"
        self.dropped = 0
        self.write_failures = 0
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def put(self, payload: str, seq: int) -> int | None:
        """Store one message; returns its id, or None if the disk refused (counted)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    cursor = self._db.execute("INSERT INTO messages (payload) VALUES (?)", (payload,))
                    self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (seq,))
                    self._trim()
                    self._db.execute("COMMIT")
                    return int(cursor.lastrowid)
                except sqlite3.Error as exc:
                    self._rollback()
                    if attempt == 1 and self._make_room():
                        continue
                    self.write_failures += 1
                    if self.write_failures == 1 or self.write_failures % 100 == 0:
                        log.error("spool %s cannot be written (%s); publishing from memory (%d failures)",
                                  self.path, exc, self.write_failures)
                    return None
        return None

    def _trim(self) -> None:
        (count,) = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
        excess = count - self.max_messages
        if excess > 0:
            order = "DESC" if self.newest_first else "ASC"
            self._db.execute(f"DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id {order} LIMIT ?)",
                             (excess,))
            self.dropped += excess
            if self.dropped == excess or self.dropped % 100 < excess:
                log.warning("spool full (%d messages): %d dropped so far (%s)", self.max_messages, self.dropped,
                            "newest" if self.newest_first else "oldest")

    def _make_room(self) -> bool:
        """Disk full: drop the oldest tenth of the spool and try once more."""
        try:
            (count,) = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
            if count == 0:
                return False
            drop = max(1, count // 10)
            self._db.execute("DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)",
                             (drop,))
            self.dropped += drop
            return True
        except sqlite3.Error:
            return False

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def pending(self, after_id: int, limit: int) -> list[tuple[int, str]]:
        """Stored messages with id > ``after_id``, oldest first."""
        with self._lock:
            try:
                return self._db.execute(
                    "SELECT id, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
                ).fetchall()
            except sqlite3.Error:
                return []

    def ack(self, message_id: int) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            except sqlite3.Error as exc:
                log.warning("spool: could not delete acknowledged message %d (%s)", message_id, exc)

    def count(self) -> int:
        with self._lock:
            try:
                return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
            except sqlite3.Error:
                return -1

    def close(self) -> None:
        with self._lock:
            self._db.close()
