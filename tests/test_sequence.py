"""frame.seq: reserved on disk in blocks, never given twice, even with the disk full or a record torn."""

from __future__ import annotations

import contextlib
from pathlib import Path

from edge.service.sequence import BLOCK, MARK_FILE, SLOT_BYTES, Sequence, read_mark
from tests.test_durability import small_filesystem


def hand_out(sequence: Sequence, count: int) -> list[int]:
    return [sequence.next() for _ in range(count)]


def test_a_crash_skips_at_most_a_block_and_a_clean_stop_none(tmp_path: Path) -> None:
    first = hand_out(Sequence(tmp_path, spooled=0, spool_lost=False), 1500)  # then a crash: no close()
    assert first == list(range(1, 1501))
    after_crash = Sequence(tmp_path, spooled=0, spool_lost=False)
    second = hand_out(after_crash, 10)
    assert 1500 < second[0] <= 1500 + BLOCK
    after_crash.close()  # a clean stop
    assert hand_out(Sequence(tmp_path, spooled=0, spool_lost=False), 1) == [second[-1] + 1]


def test_reservations_go_on_when_the_disk_is_full(tmp_path: Path) -> None:
    """The mark is rewritten in place: the spool failing on a full disk is when a crash is likeliest,
    and a temporary file and a rename needed room (the fault soak reused 837 seqs after a SIGKILL)."""
    with small_filesystem(tmp_path / "state", "64k") as state:
        sequence = Sequence(state, spooled=0, spool_lost=False)
        hand_out(sequence, 5)
        with open(state / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(bytes(4096))
        issued = hand_out(sequence, 3 * BLOCK)
        assert sequence.failing == ""
        assert Sequence(state, spooled=0, spool_lost=False).next() > issued[-1]


def test_a_torn_record_costs_a_block_never_a_reuse(tmp_path: Path) -> None:
    sequence = Sequence(tmp_path, spooled=0, spool_lost=False)
    issued = hand_out(sequence, 2 * BLOCK + 5)
    generation, mark = read_mark(tmp_path / MARK_FILE)
    path = tmp_path / MARK_FILE
    data = bytearray(path.read_bytes())
    newest = (generation % 2) * SLOT_BYTES
    data[newest + 5:newest + 9] = b"\xff\x00zz"  # a power cut in the middle of the newest record
    path.write_bytes(bytes(data))
    assert read_mark(path)[1] >= mark
    assert Sequence(tmp_path, spooled=0, spool_lost=False).next() > issued[-1]


def test_with_no_record_left_seq_goes_on_from_the_clock(tmp_path: Path) -> None:
    (tmp_path / MARK_FILE).write_bytes(b"garbage")
    assert Sequence(tmp_path, spooled=7, spool_lost=False, clock=lambda: 1_800_000_000.0).next() == 1_800_000_000_001
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert Sequence(fresh, spooled=7, spool_lost=False).next() == 8  # a new install, or the spool's record
    assert Sequence(fresh / "none", spooled=0, spool_lost=True, clock=lambda: 5.0).next() == 5001
