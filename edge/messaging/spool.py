"""On-disk spool of detections the broker has not acknowledged yet (SQLite in WAL mode).

Every detection is written here before the daemon moves on to the next frame, and deleted when
the broker's PUBACK arrives, so messages survive a broker outage, a daemon crash and a power cut:
``synchronous=FULL`` makes each commit durable (the WAL is fsync'd) before ``put`` returns. After
a restart the spool is replayed in order. The last frame sequence number is kept here too, in the
same transaction, so ``frame.seq`` keeps rising across restarts and is never handed out twice for
a spooled detection; subscribers recognise QoS 1 duplicates by it.

The spool is bounded: when it holds ``max_messages``, the policy drops the oldest or the newest
(counted, logged). Only a full disk (SQLITE_FULL, ENOSPC) may drop anything else, and only under
``drop_oldest``: the oldest tenth goes to make room (counted, logged). Even a DELETE needs room
in the WAL, so a small reserve file (``spool.reserve``) is kept beside the spool and given up to let
that DELETE through on a completely full disk, then made again when there is room. Any other error
(a busy or damaged database) drops nothing: ``put`` returns None and the caller keeps the message in
memory.

A spool that is damaged when it is opened (not a database, or failing SQLite's quick check) is kept
aside, renamed ``spool.sqlite3.damaged-<UTC time>`` with its WAL, never deleted, and a fresh one
starts (``kept_aside`` says where the old one went). A spool that cannot be opened at all (a folder
it may not write, a full disk) leaves the daemon running on memory alone: ``unavailable`` says why,
and opening is tried again every REOPEN_SECONDS.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.sqlite3"
RESERVE_FILE = "spool.reserve"
RESERVE_BYTES = 64 * 1024  # room for the WAL frames of one drop_oldest DELETE (4 KiB pages)
BUSY_TIMEOUT_MS = 5000
DELETE_BATCH = 500  # acknowledged ids per DELETE (SQLite's limit on bound parameters is far above)
ACK_FLUSH_SECONDS = 1.0  # acknowledged ids wait at most this long for a put to delete them with
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DAMAGED_CODES = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
REOPEN_SECONDS = 30.0


class DamagedSpool(sqlite3.DatabaseError):
    """The spool file is no sound SQLite database."""


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's SQLITE_FULL and for ENOSPC/EDQUOT, never for BUSY, LOCKED or I/O errors."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


class Spool:
    def __init__(self, folder: Path, max_messages: int, policy: str = "drop_oldest") -> None:
        self.path = folder / SPOOL_FILE
        self.max_messages = max_messages
        self.newest_first = policy == "drop_newest"
        self.dropped = 0  # by the bound (spool_max_messages)
        self.dropped_disk_full = 0  # by drop_oldest on a full disk
        self.write_failures = 0
        self._acked: set[int] = set()  # acknowledged, not deleted yet (with the next put, or a full disk)
        self._acks_flushed = time.monotonic()
        self._count = 0  # the last count read
        self._lock = threading.Lock()
        self.kept_aside = ""  # where a spool found damaged at start was moved
        self.unavailable = ""  # why no spool could be opened (detections then wait in memory)
        self._reserve = folder / RESERVE_FILE
        self._db: sqlite3.Connection | None = None
        self._last_open_attempt = 0.0
        self._open()

    # -- opening ---------------------------------------------------------------------------
    def _open(self) -> None:
        """Open (or create) the spool; a damaged one is kept aside first. Never raises."""
        self._last_open_attempt = time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.newest_first:
                self._make_reserve()
            try:
                self._db = self._connect()
            except DamagedSpool as exc:
                self._keep_aside(exc)
                self._db = self._connect()
        except (OSError, sqlite3.Error) as exc:
            reason = f"cannot open {self.path}: {getattr(exc, 'strerror', None) or exc}"
            if reason != self.unavailable:
                log.error("spool %s; detections wait in memory (bounded) and opening is tried again every %.0f s",
                          reason, REOPEN_SECONDS)
            self.unavailable = reason
            return
        if self.unavailable:
            log.info("spool %s opened; detections are spooled again", self.path)
        self.unavailable = ""

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise DamagedSpool(f"quick check: {check}")
        except sqlite3.DatabaseError as exc:
            db.close()
            if isinstance(exc, DamagedSpool) or getattr(exc, "sqlite_errorcode", None) in DAMAGED_CODES:
                raise DamagedSpool(str(exc)) from exc
            raise
        return db

    def _keep_aside(self, problem: sqlite3.Error) -> None:
        """Rename the damaged spool and its WAL and shared-memory files (never delete them)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                os.replace(source, self.path.with_name(f"{self.path.name}{suffix}.damaged-{stamp}"))
        self.kept_aside = str(self.path.with_name(f"{self.path.name}.damaged-{stamp}"))
        log.error("spool %s is damaged (%s): kept aside as %s, never deleted (the detections in it are not "
                  "sent); starting a fresh spool", self.path, problem, self.kept_aside)

    def _usable(self) -> bool:
        """Is there a database to use? Tries to open one again every REOPEN_SECONDS while there is none."""
        if self._db is None and time.monotonic() - self._last_open_attempt >= REOPEN_SECONDS:
            self._open()
        return self._db is not None

    def configure(self, max_messages: int, policy: str) -> None:
        """A new bound and full-disk policy (reload); they apply from the next ``put``."""
        with self._lock:
            self.max_messages = max_messages
            self.newest_first = policy == "drop_newest"
            if not self.newest_first and self._db is not None:
                self._make_reserve()

    # -- use -------------------------------------------------------------------------------
    def last_seq(self) -> int:
        with self._lock:
            if self._db is None:
                return 0
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            except sqlite3.Error:
                return 0
        return int(row[0]) if row else 0

    def put(self, payload: str, seq: int) -> int | None:
        """Store one message durably; its id, or None if it could not be stored (counted, logged)."""
        with self._lock:
            if not self._usable():
                self.write_failures += 1
                return None
            try:
                return self._insert(payload, seq)
            except sqlite3.Error as exc:
                error: sqlite3.Error = exc
            if is_disk_full(error):
                try:
                    return self._insert_on_full_disk(payload, seq)
                except sqlite3.Error as exc:
                    error = exc
            self.write_failures += 1
            if self.write_failures == 1 or self.write_failures % 100 == 0:
                log.error("spool %s cannot be written (%s); keeping detections in memory (%d failures)",
                          self.path, error, self.write_failures)
            return None

    def _insert(self, payload: str, seq: int) -> int:
        """One transaction: the message, the seq, the acknowledged ids' delete, the bound's trim."""
        acked = set(self._acked)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute("INSERT INTO messages (payload) VALUES (?)", (payload,))
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (seq,))
            if acked:
                self._delete_acked(own_transaction=False)
            self._trim()
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._rollback()
            self._acked |= acked  # their delete was rolled back too
            raise
        return int(cursor.lastrowid)

    def _insert_on_full_disk(self, payload: str, seq: int) -> int:
        """Fold the WAL into the database (frees its space), retry; then, under drop_oldest only, drop."""
        self._checkpoint()
        try:
            return self._insert(payload, seq)
        except sqlite3.Error as exc:
            if self.newest_first or not is_disk_full(exc):
                raise
        # acknowledged ones go first and are no loss; then the oldest tenth of the unacknowledged
        (count,) = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
        drop = max(1, (count - len(self._acked)) // 10)
        oldest = [row_id for (row_id,) in self._db.execute("SELECT id FROM messages ORDER BY id LIMIT ?",
                                                             (drop + len(self._acked),))
                  if row_id not in self._acked][:drop]
        ids = sorted(self._acked) + oldest
        delete = f"DELETE FROM messages WHERE id IN ({','.join('?' * len(ids))})"
        try:
            self._db.execute(delete, ids)
        except sqlite3.Error as exc:  # no room even for the DELETE's WAL frames: give up the reserve
            if not is_disk_full(exc) or not self._release_reserve():
                raise
            self._db.execute(delete, ids)
        self._acked.clear()
        drop = len(oldest)
        self.dropped_disk_full += drop
        if drop:
            log.warning("disk full: dropped the oldest %d spooled detections (drop_oldest; %d so far)", drop,
                        self.dropped_disk_full)
        self._checkpoint()
        self._make_reserve()
        return self._insert(payload, seq)

    def _make_reserve(self) -> None:
        """Best effort: without room now, it is made after the next drop."""
        if self._reserve.exists():
            return
        try:
            with open(self._reserve, "wb") as handle:
                handle.write(bytes(RESERVE_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                self._reserve.unlink()

    def _release_reserve(self) -> bool:
        """Free the reserve's room; False when there was none to free."""
        try:
            self._reserve.unlink()
        except OSError:
            return False
        return True

    def _checkpoint(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def pending(self, after_id: int, limit: int) -> list[tuple[int, str]]:
        """Stored messages with id > ``after_id``, oldest first (acknowledged ones left out)."""
        with self._lock:
            if self._db is None:
                return []
            try:
                rows = self._db.execute(
                    "SELECT id, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit + len(self._acked)),
                ).fetchall()
            except sqlite3.Error:
                return []
        return [row for row in rows if row[0] not in self._acked][:limit]

    def ack(self, message_ids: Iterable[int]) -> None:
        """Mark acknowledged messages for deletion. They are deleted in the transaction of the next ``put``
        (one commit, one fsync per detection instead of two), or on their own once ACK_FLUSH_SECONDS have
        passed or DELETE_BATCH are waiting. Until then they are neither sent again nor counted; a crash
        before the delete sends them once more after the restart (a QoS 1 duplicate, never a loss). On a
        full disk a delete needs room in the WAL too: the ids wait for a later try the same way."""
        with self._lock:
            self._acked.update(message_ids)
            due = time.monotonic() - self._acks_flushed >= ACK_FLUSH_SECONDS or len(self._acked) >= DELETE_BATCH
            if self._acked and due and self._db is not None:
                self._delete_acked(own_transaction=True)

    def _delete_acked(self, own_transaction: bool) -> None:
        """Delete acknowledged ids (inside ``put``'s transaction, or as their own)."""
        self._acks_flushed = time.monotonic()
        ids = sorted(self._acked)[:DELETE_BATCH]
        try:
            self._db.execute(f"DELETE FROM messages WHERE id IN ({','.join('?' * len(ids))})", ids)
        except sqlite3.Error as exc:
            if not own_transaction:
                raise
            if len(self._acked) == 1 or len(self._acked) % 100 == 0:
                log.warning("spool: cannot delete %d acknowledged messages yet (%s)", len(self._acked), exc)
            return
        self._acked.difference_update(ids)

    def count(self) -> int:
        """Messages not acknowledged yet (the last count read when the database cannot be read now)."""
        with self._lock:
            if self._db is not None:
                try:
                    self._count = int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
                except sqlite3.Error as exc:
                    log.debug("spool: cannot count (%s); using the last count", exc)
            return max(self._count - len(self._acked), 0)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                if self._acked:
                    self._delete_acked(own_transaction=True)
                self._db.close()
                self._db = None
