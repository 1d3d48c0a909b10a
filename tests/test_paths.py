"""``write_replacing``: a file written beside itself and renamed over, for outputs a reader may hold
open; ``make_folder``: a folder made, or one line why not."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from edge.config.paths import make_folder, write_replacing


def test_the_replaced_file_keeps_its_permissions_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    """A results file kept 600 came back 644 (the umask's)."""
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o600)
    held = path.open("rb")  # a reader of the old file (a daemon's mapped model) keeps it whole
    write_replacing(path, b"new")
    assert path.read_bytes() == b"new" and held.read() == b"old"
    held.close()
    assert path.stat().st_mode & 0o777 == 0o600 and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_two_writers_of_one_path_each_rename_a_whole_file(tmp_path: Path) -> None:
    """With one fixed temporary name, a writer truncated the file the other was renaming: FileNotFoundError,
    and readers saw empty files."""
    path = tmp_path / "drawn.png"
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            for _ in range(200):
                write_replacing(path, data)
        except BaseException as exc:  # any failure is the finding
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(bytes([n]) * 100_000,)) for n in (1, 2)]
    for writer in writers:
        writer.start()
    seen = set()
    while any(writer.is_alive() for writer in writers):
        data = path.read_bytes() if path.exists() else b""
        if data:
            seen.add((len(data), data[0], data[-1]))
    for writer in writers:
        writer.join()
    assert errors == [] and seen <= {(100_000, 1, 1), (100_000, 2, 2)}
    assert [p.name for p in tmp_path.iterdir()] == ["drawn.png"]


def test_a_device_or_a_symlink_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_replacing(link, b"new")
    assert link.is_symlink() and target.read_text() == "new"
    write_replacing(Path(os.devnull), b"discarded")  # once replaced /dev/full itself (as root)
    assert Path(os.devnull).is_char_device()


def test_make_folder_keeps_one_that_is_there_and_says_in_one_line_why_it_cannot_make_one(tmp_path: Path) -> None:
    class Refused(Exception):
        pass

    make_folder(tmp_path / "a" / "b", "the output folder", Refused, parents=True)
    make_folder(tmp_path / "a" / "b", "the output folder", Refused)  # there already: kept
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(Refused, match=r"^cannot make the model folder .*taken \(File exists\)$"):
        make_folder(tmp_path / "taken", "the model folder", Refused)
