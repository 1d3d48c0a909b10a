"""One daemon per state directory: an exclusive ``flock`` on ``<state dir>/daemon.lock``.

Two daemons on one state directory would share the spool, hand every ``frame.seq`` out twice and
kick each other off the broker with the same client id. The lock is held for the life of the
process; the kernel releases it when the process ends in any way, SIGKILL and power cut included,
so a stale lock file never blocks a restart. The file holds the owner's pid, for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from edge.config.settings import ConfigError

LOCK_FILE = "daemon.lock"


class StateDirBusy(RuntimeError):
    """Another process holds the state directory."""


class StateLock:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``StateDirBusy`` naming the directory and the running process."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:  # e.g. a lock file left by a run as root: a setup error, not worth restarting
            raise ConfigError(f"state directory {self.folder}: cannot use {self.path.name} "
                              f"({exc.strerror or exc}); fix its owner or permissions") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateDirBusy(f"state directory {self.folder} is in use by another craft-edge daemon "
                               f"(pid {owner}); stop it first or give this one its own state_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
