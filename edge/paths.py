"""Paths given by people, made absolute once, where they enter the program.

Command-line paths are taken against the working directory, paths inside a config file against
the file's own folder. Below that edge nothing depends on the working directory, so a library
that changes it cannot move a path the program holds.
"""

from __future__ import annotations

import os
from pathlib import Path


def absolute(path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """``path`` with ``~`` expanded, made absolute against ``base`` (default: the working directory)."""
    expanded = Path(path).expanduser()
    if not expanded.is_absolute():
        expanded = (base if base is not None else Path.cwd()) / expanded
    return Path(os.path.normpath(expanded))
