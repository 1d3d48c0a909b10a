"""Running ``craft-edge run`` as a real process in tests: its config file, its environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_config(path: Path, port: int, model_dir: Path, frames: Path, **sections: Any) -> Path:
    """A config for a files source looping over ``frames``, the broker on ``port``; ``sections`` override."""
    config = {
        "device_id": "test",
        "source": {"kind": "files", "path": str(frames), "loop": True},
        "model": {"dir": str(model_dir), "prefer": "int8"},
        "mqtt": {"host": "127.0.0.1", "port": port, "stats_interval_seconds": 1, "reconnect_max_seconds": 2},
        "state_dir": str(path.parent / "state"),
    }
    path.write_text(yaml.safe_dump(merge(config, sections)))
    return path


def start_daemon(config: Path, *args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    command = [sys.executable, "-m", "edge.commands", "run", "--config", str(config), *args]
    environment = {**os.environ, "NOTIFY_SOCKET": "", **(env or {})}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen(command, cwd=REPO, env=environment, text=True, **streams)


def craft_edge(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """One ``craft-edge`` command, run to completion, output captured."""
    return subprocess.run([sys.executable, "-m", "edge.commands", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def seqs(messages: list) -> list[int]:
    return [json.loads(m.payload)["frame"]["seq"] for m in messages]


class NotifySocket:
    """systemd's end of $NOTIFY_SOCKET: every datagram (``received``) and when it arrived (``arrived``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.log: list[tuple[float, str]] = []  # (when it arrived, the message), in order
        # read all the time, as systemd does: a queue left full makes the daemon's sends wait
        threading.Thread(target=self._read, name="notify-socket", daemon=True).start()

    @property
    def received(self) -> list[str]:
        return [message for _, message in list(self.log)]

    def _read(self) -> None:
        while True:
            try:
                message = self.sock.recv(4096).decode()
            except OSError:  # closed
                return
            self.log.append((time.monotonic(), message))

    def collect(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait_for(self, text: str, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in message for message in self.received):
                return True
            self.collect(0.1)
        return False
