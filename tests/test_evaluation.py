"""The ICDAR 2015 protocol on hand-made cases whose answers are known."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge.detection.evaluation import (
    GroundTruthError,
    Summary,
    Word,
    evaluate_image,
    find_ground_truth,
    intersection_area,
    iou,
    polygon_area,
    read_words,
)
from tests.conftest import SAMPLES
from tests.daemon_helpers import craft_edge


def box(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def word(x: float, y: float, w: float, h: float, ignore: bool = False) -> Word:
    return Word(box(x, y, w, h), ignore)


def test_geometry() -> None:
    assert polygon_area(box(0, 0, 10, 4)) == 40
    assert iou(box(0, 0, 10, 10), box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    concave = np.array([[0, 0], [10, 0], [10, 10], [5, 5], [0, 10]], dtype=np.float64)  # an arrow shape
    assert polygon_area(concave) == 75
    assert intersection_area(box(0, 0, 10, 10), concave) == pytest.approx(75)
    assert intersection_area(box(0, 6, 10, 4), concave) == pytest.approx(2 * 0.5 * 4 * 4)


def test_perfect() -> None:
    words = [word(0, 0, 50, 10), word(0, 20, 30, 10)]
    result = evaluate_image("a", words, [w.poly for w in words])
    assert (result.matched, result.words, result.detections) == (2, 2, 2)


def test_shifted_below_and_above_the_threshold() -> None:
    words = [word(0, 0, 100, 10)]
    assert evaluate_image("a", words, [box(30, 0, 100, 10)]).matched == 1  # IoU 70/130 = 0.54
    assert evaluate_image("a", words, [box(40, 0, 100, 10)]).matched == 0  # IoU 60/140 = 0.43


def test_split_word_gives_one_match_at_most() -> None:
    words = [word(0, 0, 100, 10)]
    halves = [box(0, 0, 48, 10), box(52, 0, 48, 10)]
    result = evaluate_image("a", words, halves)
    assert (result.matched, result.words, result.detections) == (0, 1, 2)  # each half has IoU 0.48
    assert evaluate_image("a", words, [box(0, 0, 60, 10), box(62, 0, 38, 10)]).matched == 1


def test_merged_words_match_one() -> None:
    words = [word(0, 0, 60, 10), word(64, 0, 36, 10)]
    result = evaluate_image("a", words, [box(0, 0, 100, 10)])
    assert (result.matched, result.words, result.detections) == (1, 2, 1)  # IoU 0.6 with the first only


def test_dont_care() -> None:
    words = [word(0, 0, 50, 10), word(0, 50, 50, 10, ignore=True)]
    inside = box(5, 50, 30, 10)  # entirely inside the don't-care word
    half = box(30, 50, 40, 10)  # 20/40 inside: not more than half, so it counts (as a false positive)
    result = evaluate_image("a", words, [words[0].poly, inside, half])
    assert (result.matched, result.words, result.detections, result.dropped) == (1, 1, 2, 1)


def test_one_to_one_in_reference_order() -> None:
    words = [word(0, 0, 100, 10), word(0, 0, 100, 10)]  # duplicated word
    result = evaluate_image("a", words, [box(0, 0, 100, 10)])
    assert result.matched == 1 and result.pairs == [(0, 0)]


def test_summary_sums_before_dividing() -> None:
    perfect = evaluate_image("a", [word(0, 0, 10, 10)], [box(0, 0, 10, 10)])
    missed = evaluate_image("b", [word(0, 0, 10, 10)] * 3, [])
    count = Summary([perfect, missed]).count
    assert count.precision == 1.0 and count.recall == 0.25
    assert count.hmean == pytest.approx(0.4)
    assert Summary([]).count.hmean == 0.0 and Summary([]).count.precision == 0.0


def test_ground_truth_formats(tmp_path: Path) -> None:
    (tmp_path / "gt_img_1.txt").write_text("\ufeff1,1,9,1,9,5,1,5,EXIT\n0,0,4,0,4,4,0,4,###\n2,2,8,2,8,8,2,8,a,b\n")
    words = read_words(find_ground_truth(tmp_path, "img_1.jpg"))
    assert [(w.text, w.ignore) for w in words] == [("EXIT", False), ("###", True), ("a,b", False)]
    (tmp_path / "img_2.json").write_text(json.dumps({"image": "img_2.jpg", "words": [
        {"poly": [[0, 0], [4, 0], [4, 4], [0, 4]], "text": "", "ignore": True}]}))
    assert read_words(find_ground_truth(tmp_path, "img_2.jpg"))[0].ignore
    assert find_ground_truth(tmp_path, "img_3.jpg") is None
    (tmp_path / "bad.txt").write_text("1,2,3,EXIT\n")
    with pytest.raises(GroundTruthError, match=r"bad\.txt:1: expected x1,y1"):
        read_words(tmp_path / "bad.txt")
    (tmp_path / "latin1.txt").write_bytes("1,1,9,1,9,5,1,5,CAFÉ\n".encode("latin-1"))
    with pytest.raises(GroundTruthError, match=r"latin1\.txt: not UTF-8 text \(byte 19\)"):
        read_words(tmp_path / "latin1.txt")  # was UnicodeDecodeError: a traceback
    square = [[0, 0], [4, 0], [4, 4], [0, 4]]
    (tmp_path / "null.json").write_text(json.dumps({"words": [{"poly": square, "text": None}]}))
    assert read_words(tmp_path / "null.json")[0].text == ""  # untranscribed, not the word "None"


def test_eval_json_that_cannot_be_written_is_one_line_before_the_work(tmp_path: Path) -> None:
    for out, expected in ((tmp_path / "missing" / "out.json", "the folder"), (tmp_path, "cannot be written"),
                          (Path("/dev/full"), "cannot write (No space left on device)")):
        result = craft_edge("eval", "--detections", str(SAMPLES), "--images", str(SAMPLES), "--gt", str(SAMPLES),
                            "--json", str(out))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"craft-edge: error: --json {out}: {expected}")


def test_eval_precomputed_detections(tmp_path: Path) -> None:
    """Ground truth given back as detections scores 1.0; dropping one word costs exactly its recall."""
    detections = tmp_path / "detections"
    detections.mkdir()
    for gt in SAMPLES.glob("*.json"):
        data = json.loads(gt.read_text())
        if gt.stem == "coffee_01":
            data["words"] = data["words"][1:]
        (detections / gt.name).write_text(json.dumps(data))
    total = sum(len(json.loads(p.read_text())["words"]) for p in SAMPLES.glob("*.json"))
    result = craft_edge("eval", "--detections", str(detections), "--images", str(SAMPLES), "--gt", str(SAMPLES),
                        "--json", str(tmp_path / "out.json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out.json").read_text())["variants"]["detections"]
    assert summary["precision"] == 1.0 and summary["matched"] == total - 1
    assert summary["recall"] == round((total - 1) / total, 4)
    assert "(1 images without ground truth skipped)" in result.stdout


@pytest.mark.conversion
def test_eval_every_variant_and_agreement(model_dir: Path, tmp_path: Path) -> None:
    result = craft_edge("eval", "--model", str(model_dir), "--all", "--images", str(SAMPLES), "--gt", str(SAMPLES),
                        "--json", str(tmp_path / "labelled.json"), "--state-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    variants = json.loads((tmp_path / "labelled.json").read_text())["variants"]
    assert set(variants) == {"fp32", "fp16", "dynamic", "int8", "int8-tpu"}
    assert variants["fp32"]["hmean"] > 0.5 and variants["fp32"]["words"] == 34
    agreement = craft_edge("eval", "--model", str(model_dir), "--variant", "int8", "--against", "fp32",
                           "--images", str(SAMPLES), "--json", str(tmp_path / "agree.json"),
                           "--state-dir", str(tmp_path))
    assert agreement.returncode == 0, agreement.stderr
    assert "agreement with fp32" in agreement.stdout
    assert json.loads((tmp_path / "agree.json").read_text())["variants"]["int8"]["hmean"] >= 0.9


def test_eval_needs_truth_or_a_reference(tmp_path: Path) -> None:
    result = craft_edge("eval", "--detections", str(tmp_path), "--images", str(SAMPLES))
    assert result.returncode == 2
    assert "give --gt DIR (labelled images) or --against VARIANT" in result.stderr


@pytest.mark.conversion
@pytest.mark.converter
def test_compare_with_pytorch(model_dir: Path, tmp_path: Path) -> None:
    from converter.compare import main

    assert main(["--model", str(model_dir), "--images", str(SAMPLES), "--variant", "int8",
                 "--json", str(tmp_path / "out.json")]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["against"] == "pytorch-fp32"
    assert result["variants"]["int8"]["hmean"] >= 0.9 and result["variants"]["int8"]["words"] > 20
    assert main(["--model", str(tmp_path / "none"), "--images", str(SAMPLES)]) == 2


@pytest.mark.parametrize(("content", "expected"), [
    ('{"words": [{"poly": [[0, 0], [1e308, 0], [1e308, 10], [0, 10]], "text": "far"}]}',
     r"word 1 has a corner that is not a pixel"),
    ('{"words": [{"poly": [[0, 0], [NaN, 0], [5, 10], [0, 10]], "text": "nan"}]}', r"word 1 has a corner"),
    # eval --read --json could not write its report after the whole run: a traceback
    ('{"words": [{"poly": [[0, 0], [5, 0], [5, 10], [0, 10]], "text": "Pizza\\ud800"}]}',
     r"word 1's text 'Pizza\\ud800' is not valid Unicode"),
])
def test_ground_truth_corners_that_are_not_pixels_or_text_not_unicode_are_one_line(tmp_path: Path, content: str,
                                                                                  expected: str) -> None:
    """1e308 passed, then overflowed cutting the word's crop (``eval --read``): a traceback."""
    path = tmp_path / "img.json"
    path.write_text(content)
    with pytest.raises(GroundTruthError, match=f"{path}: {expected}"):
        read_words(path)


def test_ground_truth_that_cannot_be_read_and_images_that_cannot_be_read_are_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file not ours to read escaped as PermissionError from ``read``, ``detect`` and ``eval``: a traceback."""
    from edge.sources.imageio import ImageError, read_rgb

    (tmp_path / "img.json").mkdir()
    with pytest.raises(GroundTruthError, match=r"img\.json: cannot read \(Is a directory\)"):
        read_words(tmp_path / "img.json")
    with pytest.raises(ImageError, match=r"img\.json: a folder, not an image"):
        read_rgb(tmp_path / "img.json")

    def denied(path: Path, dtype: type) -> np.ndarray:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(np, "fromfile", denied)
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"x\.png: cannot read \(Permission denied\)"):
        read_rgb(tmp_path / "x.png")
    os.mkfifo(tmp_path / "pipe.png")  # np.fromfile on it blocked for ever (a files source's capture thread too)
    with pytest.raises(ImageError, match=r"pipe\.png: not a regular file"):
        read_rgb(tmp_path / "pipe.png")


def test_eval_json_that_fails_to_write_keeps_the_last_results_whole(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk left the last run's file cut to 4,096 bytes: not JSON, and the old results gone."""
    import builtins

    from edge.commands.common import Fatal, write_output

    out = tmp_path / "out.json"
    out.write_text('{"last": "run"}')

    class FullDisk:  # takes 10 bytes, then the disk is full
        def __init__(self, path: Path, mode: str) -> None:
            self.handle = builtins.open(path, mode)  # noqa: SIM115 (closed by __exit__, as open's own)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[:10])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("edge.config.paths.open", FullDisk, raising=False)
    with pytest.raises(Fatal, match="cannot write \\(No space left on device\\)"):
        write_output(out, json.dumps({"new": "x" * 5000}), "--json")
    assert out.read_text() == '{"last": "run"}' and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_table_printed_into_a_full_disk_is_one_line(tmp_path: Path) -> None:
    """``craft-edge ... > out`` on a full disk ended in a traceback at the interpreter's last flush."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "edge.commands", "eval", "--detections", str(SAMPLES),
                                 "--images", str(SAMPLES), "--gt", str(SAMPLES)], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "craft-edge: error: cannot write the output (No space left on device)"


def test_eval_with_a_mistyped_folder_is_one_line_not_a_score_of_nothing(tmp_path: Path) -> None:
    """``eval --read --gt MISTYPED`` scored 0 images, H 0.000, and exited 0."""
    (tmp_path / "empty").mkdir()
    for args, expected in (
            (["--gt", str(tmp_path / "nope"), "--read"], f"--gt {tmp_path / 'nope'}: not a folder"),
            (["--gt", str(SAMPLES), "--images", str(tmp_path / "empty")],
             f"--images {tmp_path / 'empty'}: no images in it (.jpg, "),
            (["--gt", str(SAMPLES), "--detections", str(tmp_path / "nope")],
             f"--detections {tmp_path / 'nope'}: not a folder"),
            (["--gt", str(tmp_path / "empty"), "--read"],
             f"--gt {tmp_path / 'empty'}: no ground truth for any of the")):
        args = ["--images", str(SAMPLES), "--detections", str(SAMPLES), *args]
        result = craft_edge("eval", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"craft-edge: error: {expected}"), result.stderr


def test_a_command_started_with_stdout_closed_does_not_fail_on_it() -> None:
    """``sys.stdout`` is None then: the flush added for full disks raised AttributeError."""
    import subprocess
    import sys

    from tests.daemon_helpers import REPO

    result = subprocess.run(["sh", "-c", f"'{sys.executable}' -m edge.commands probe >&-"], capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
