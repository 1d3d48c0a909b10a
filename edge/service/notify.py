"""systemd notifications over $NOTIFY_SOCKET (plain socket, no extra dependency).

READY=1 once config and model are loaded (broker and camera may still be down); STATUS= lines for
``systemctl status``; EXTEND_TIMEOUT_USEC= before long work (the models measured at start and on
reload); WATCHDOG=1 from a thread of its own while the daemon's loop is alive (``Watchdog``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

# a socket whose reader has stopped reading fills its queue, and a send would then wait for ever: with the
# watchdog's pings, a stuck service manager (or a test's socket) hung the daemon, even its SIGTERM shutdown
SEND_TIMEOUT_SECONDS = 1.0


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send one notification; False when not running under systemd (no NOTIFY_SOCKET), or when the socket
    took no message within SEND_TIMEOUT_SECONDS (it is dropped)."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(SEND_TIMEOUT_SECONDS)
        try:
            sock.sendto(message.encode(), address)
        except OSError:
            return False
    return True


class Watchdog:
    """WATCHDOG=1 means "the loop is alive", not "a frame arrived".

    The daemon's loop wakes at least twice a second and calls ``beat``; so does every model inference
    (a slow frame of many tiles keeps beating). A thread pings systemd at half of WatchdogSec while
    the last beat is younger than WatchdogSec, or while announced long work (``long_work``: models
    loaded and measured) is within its own limit. A loop stuck anywhere else (a hung inference, a
    deadlock) stops the pings, and systemd restarts the service. Without WATCHDOG_USEC it does nothing.
    """

    def __init__(self, environ: dict[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.environ = environ if environ is not None else dict(os.environ)
        usec = self.environ.get("WATCHDOG_USEC", "")
        self.timeout = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else None
        self.clock = clock
        self._beat = clock()
        self._busy_until = 0.0
        self._stop = threading.Event()

    def beat(self) -> None:
        self._beat = self.clock()

    @contextlib.contextmanager
    def long_work(self, seconds: float) -> Iterator[None]:
        """Work that may keep the loop away for up to ``seconds``: pings go on meanwhile, and systemd's
        start or reload timeout is extended to match."""
        # systemd hears of the extension before the pinger may count the long work as alive
        notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}", self.environ)
        self._busy_until = self.clock() + seconds
        try:
            yield
        finally:
            self._busy_until = 0.0
            self.beat()

    def alive(self) -> bool:
        now = self.clock()
        return self.timeout is not None and (now - self._beat < self.timeout or now < self._busy_until)

    def start(self) -> None:
        if self.timeout is not None:
            threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        assert self.timeout is not None
        while not self._stop.wait(self.timeout / 2):
            if self.alive():
                notify("WATCHDOG=1", self.environ)
