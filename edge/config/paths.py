"""Paths given by people, made absolute once, where they enter the program.

Command-line paths are taken against the working directory, paths inside a config file against
the file's own folder. Below that edge nothing depends on the working directory, so a library
that changes it cannot move a path the program holds.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def absolute(path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """``path`` with ``~`` expanded, made absolute against ``base`` (default: the working directory).

    ``..`` is left for the operating system to follow (collapsing it as text is wrong after a symlink).
    """
    expanded = Path(path).expanduser()
    if not expanded.is_absolute():
        expanded = (base if base is not None else Path.cwd()) / expanded
    return expanded


def is_url(text: str) -> bool:
    return "://" in text


def video_file(device: str, base: Path | None = None) -> Path | None:
    """``source.device`` as an absolute path when it names an existing file (a video), else None:
    a camera index (``0``), ``/dev/videoN`` given absolute, a URL or a GStreamer pipeline stays as written."""
    if device.strip().isdigit() or is_url(device):
        return None
    candidate = absolute(device, base)
    return candidate if candidate.is_file() else None


def make_folder(path: Path, what: str, error: type[Exception], parents: bool = False) -> None:
    """``path`` made, or kept when it is there; a file of that name, a full or read-only disk: ``error`` with one
    line naming ``what`` and the path."""
    try:
        path.mkdir(parents=parents, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot make {what} {path} ({exc.strerror or exc})") from exc


def write_replacing(path: Path, data: bytes) -> None:
    """``data`` into ``path`` by a new file renamed over it: whoever has the old one open or memory-mapped (a
    running daemon's TFLite model) keeps reading it whole, and a full disk leaves the old file, not half of
    the new one. No fsync: the files written so are outputs a crash lets you write again. A path that is not
    a regular file (``/dev/stdout``, a device, a symlink someone placed) is written in place, not replaced."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        path.write_bytes(data)
        return
    # a name of its own: two writers of one path (parallel `detect --draw`) each rename a whole file
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        with open(temporary, "xb") as handle:  # created as any new file is (the umask applies)
            handle.write(data)
        if path.exists():  # the replaced file's permissions, not the umask's (a results file kept 600)
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
