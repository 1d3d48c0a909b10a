"""systemd notifications over $NOTIFY_SOCKET (plain socket, no extra dependency).

READY=1 once config and model are loaded (broker and camera may still be down); WATCHDOG=1
while frames are being processed (or a lost camera is being reopened), so a stuck pipeline gets
restarted by systemd; STATUS= lines for ``systemctl status``.
"""

from __future__ import annotations

import os
import socket
import time


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send one notification; False when not running under systemd (no NOTIFY_SOCKET)."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError:
            return False
    return True


class Watchdog:
    """Pings at half of WatchdogSec, and only when ``alive`` says work is progressing.

    The daemon calls ``alive`` for each processed frame, and while a lost camera is being reopened;
    a pipeline that hangs stops calling it, and systemd restarts the service.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = environ if environ is not None else dict(os.environ)
        usec = self.environ.get("WATCHDOG_USEC", "")
        self.interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self._last = 0.0

    def alive(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            notify("WATCHDOG=1", self.environ)
