"""Every fatal CLI error: a non-zero exit and one line that names what and where."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from converter.cli import main
from tests.conftest import SAMPLES


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "converter.cli", *args], capture_output=True, text=True, timeout=300)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_help_explains_variants_and_output() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("fp32", "fp16", "dynamic", "int8-tpu", "manifest.json", "--calibration", "--force"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input-size", "480x650"], "must be positive multiples of 32"),
        (["--input-size", "big"], "is not HxW"),
        (["--variants", "fp32,int4"], "unknown variant 'int4'"),
        (["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_argument_errors(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert expected in one_line(result.stderr)


def test_missing_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--weights", str(tmp_path / "craft.pth"), "--out", str(tmp_path / "out")]) == 1
    assert f"{tmp_path / 'craft.pth'}: weights file not found" in one_line(capsys.readouterr().err)


def test_unreadable_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "craft.pth"
    bad.write_bytes(b"\x00garbage")
    assert main(["--weights", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "not a PyTorch checkpoint" in one_line(capsys.readouterr().err)


def test_wrong_architecture(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "resnet.pth"
    torch.save(torch.nn.Conv2d(3, 8, 3).state_dict(), other)
    assert main(["--weights", str(other), "--out", str(tmp_path / "out")]) == 1
    assert "not a CRAFT checkpoint" in one_line(capsys.readouterr().err)


def test_non_empty_output_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["--out", str(tmp_path)]) == 1
    assert "is not empty; use --force" in one_line(capsys.readouterr().err)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_empty_calibration_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "frames"
    empty.mkdir()
    assert main(["--calibration", str(empty), "--out", str(tmp_path / "out")]) == 1
    assert f"calibration folder {empty} holds no images" in one_line(capsys.readouterr().err)


def test_missing_calibration_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--calibration", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 1
    assert "not a folder" in one_line(capsys.readouterr().err)


def test_unreadable_calibration_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "broken.jpg").write_bytes(b"not a jpeg")
    assert main(["--calibration", str(frames), "--out", str(tmp_path / "out")]) == 1
    assert f"calibration: {frames / 'broken.jpg'}: not a readable image" in one_line(capsys.readouterr().err)


def unlabelled_frames(tmp_path: Path) -> Path:
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(SAMPLES / "coffee_01.jpg", frames)
    return frames


def test_no_words_to_check_the_recognizer_on_is_said_before_converting(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    frames = unlabelled_frames(tmp_path)
    out = tmp_path / "out"
    assert main(["--calibration", str(frames), "--validation", str(frames), "--out", str(out)]) == 1
    assert "no labelled words" in one_line(capsys.readouterr().err)
    assert not out.exists()  # nothing converted first


def test_broken_ground_truth_for_the_recognizer_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frames = unlabelled_frames(tmp_path)
    (frames / "coffee_01.json").write_text('{"words": [{"poly": [[10, 10], [60, 10], [60, 30], [10, 30]]}]')
    assert main(["--calibration", str(frames), "--validation", str(frames), "--out", str(tmp_path / "out")]) == 1
    assert "recognizer check words:" in one_line(capsys.readouterr().err)


def test_an_interrupted_conversion_is_one_line_saying_the_output_is_unfinished(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C printed a 20-line KeyboardInterrupt traceback and left no hint that OUT was half written."""
    import converter.cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(converter.cli, "run", interrupted)
    assert main(["--out", str(tmp_path / "out")]) == 130
    assert one_line(capsys.readouterr().err) == (f"convert-for-device: interrupted: {tmp_path / 'out'} is "
                                                 "unfinished; run again with --force")


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_recognizer_the_index_does_not_name_is_removed(tmp_path: Path, kind: str) -> None:
    """``--no-recognizer --force`` over an earlier bundle, or a failed recognizer step, left OUT/recognizer
    beside an index naming none: tens of MB a copy to the device carried, read by nothing."""
    from converter.cli import _remove_unindexed_recognizer

    stale = tmp_path / "recognizer"
    if kind == "folder":
        stale.mkdir()
        (stale / "english_g2_fp32.tflite").write_bytes(b"old")
    else:
        stale.write_text("junk")
    assert _remove_unindexed_recognizer(tmp_path) == f"removed {stale}: the index names no recognizer"
    assert not stale.exists()
    assert _remove_unindexed_recognizer(tmp_path) is None


def test_a_recognizer_folder_that_cannot_be_made_is_a_step_error(tmp_path: Path) -> None:
    """A file named ``recognizer`` in OUT escaped as FileExistsError after minutes of detector work, and the
    detector models were left without an index."""
    import argparse
    import io

    from converter.recognizer_steps import RecognizerStepError, convert_recognizer

    (tmp_path / "recognizer").write_text("junk")
    args = argparse.Namespace(out=tmp_path, recognizer_variants=("fp32",), threads=1)
    with pytest.raises(RecognizerStepError, match=f"cannot make the recognizer's folder {tmp_path / 'recognizer'}"):
        convert_recognizer(args, None, tmp_path / "convert.log", io.StringIO())  # type: ignore[arg-type]
