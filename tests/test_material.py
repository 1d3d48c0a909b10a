"""The project-made test material keeps its own promises (data/README.md): sizes, word heights, hard
cases present, exact event lists for the clip, and calibration photos no validation image uses."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from converter.calibration import DEFAULT_CALIBRATION_DIR, DEFAULT_VALIDATION_DIR
from edge.detection.evaluation import read_words
from tests.conftest import DATA, data_module

SMALLTEXT = DATA / "smalltext"
WORDS = DATA / "words"
CLIP = DATA / "clip"
FRAME_SIZES = {(1280, 720): 6, (1920, 1080): 4}
ROUNDING = 0.02  # quads are stored to 2 decimals
VISIBLE = 15  # grey levels


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def smalltext_records() -> list[dict]:
    return [load(path) for path in sorted(SMALLTEXT.glob("*.json"))]


def all_words(records: list[dict]) -> list[dict]:
    return [word for record in records for word in record["words"]]


def side_lengths(poly: list) -> tuple[float, float]:
    """Width (top edge) and height (left edge) of a quad given clockwise from its top-left."""
    quad = np.asarray(poly, dtype=np.float64)
    return float(np.linalg.norm(quad[1] - quad[0])), float(np.linalg.norm(quad[3] - quad[0]))


def angle_of(poly: list) -> float:
    """Counter-clockwise angle of the quad's top edge, in degrees (image y points down)."""
    quad = np.asarray(poly, dtype=np.float64)
    dx, dy = quad[1] - quad[0]
    return float(np.degrees(np.arctan2(-dy, dx)))


def photo_of(name: str) -> str:
    """Background photo of a make_images.py file name (``PHOTO_NN.jpg``)."""
    return Path(name).stem.rsplit("_", 1)[0]


def test_smalltext_frames_have_the_promised_sizes_and_word_counts() -> None:
    records = smalltext_records()
    sizes: dict[tuple[int, int], int] = {}
    for record in records:
        image = cv2.imread(str(SMALLTEXT / record["image"]))
        assert image is not None, record["image"]
        size = (image.shape[1], image.shape[0])
        sizes[size] = sizes.get(size, 0) + 1
        assert 8 <= len(record["words"]) <= 20, record["image"]
    assert sizes == FRAME_SIZES


def test_smalltext_word_quads_match_their_recorded_height_and_angle() -> None:
    for word in all_words(smalltext_records()):
        width, height = side_lengths(word["poly"])
        assert 8 - ROUNDING <= height <= 32 + ROUNDING and width > 0, word
        assert height == pytest.approx(word["height_px"], abs=ROUNDING), word
        assert angle_of(word["poly"]) == pytest.approx(word["angle_deg"], abs=0.05), word
        assert abs(word["angle_deg"]) <= 30, word


def test_smalltext_has_small_rotated_low_contrast_and_blurred_words() -> None:
    words = all_words(smalltext_records())
    share = {
        "under 16 px": sum(w["height_px"] < 16 for w in words) / len(words),
        "rotated": sum(abs(w["angle_deg"]) >= 5 for w in words) / len(words),
        "low contrast": sum(w["contrast"] < 50 for w in words) / len(words),
        "blurred": sum(0.7 <= w["blur_sigma"] <= 1.2 for w in words) / len(words),
    }
    assert share["under 16 px"] >= 0.4, share
    assert min(share["rotated"], share["low contrast"], share["blurred"]) >= 0.15, share


def test_smalltext_words_do_not_overlap_and_stay_inside_the_frame() -> None:
    for record in smalltext_records():
        height, width = cv2.imread(str(SMALLTEXT / record["image"])).shape[:2]
        quads = [np.asarray(w["poly"], dtype=np.float32) for w in record["words"]]
        for quad in quads:
            assert quad.min() >= 0 and quad[:, 0].max() <= width and quad[:, 1].max() <= height
        for index, quad in enumerate(quads):
            for other in quads[index + 1 :]:
                area, _ = cv2.intersectConvexConvex(quad, other)
                assert area == 0, record["image"]


def test_the_evaluation_loader_reads_the_material_ignoring_extra_keys() -> None:
    path = sorted(SMALLTEXT.glob("*.json"))[0]
    words = read_words(path)
    assert [w.text for w in words] == [w["text"] for w in load(path)["words"]]
    assert words[0].poly.shape == (4, 2)


def words_records() -> list[dict]:
    return [load(path) for path in sorted(WORDS.glob("*.json"))]


def test_words_frames_are_1280x720_with_known_text_of_10_to_80_px() -> None:
    records = words_records()
    assert 12 <= len(records) <= 16
    for record in records:
        image = cv2.imread(str(WORDS / record["image"]))
        assert image is not None and image.shape == (720, 1280, 3), record["image"]
        for word in record["words"]:
            width, height = side_lengths(word["poly"])
            assert 10 - ROUNDING <= height <= 80 + ROUNDING and width > 0, word
            assert height == pytest.approx(word["height_px"], abs=ROUNDING), word
            assert angle_of(word["poly"]) == pytest.approx(word["angle_deg"], abs=0.05), word
            assert abs(word["angle_deg"]) <= 30 and word["text"] and not word["ignore"], word
    assert sum(p.stat().st_size for p in WORDS.iterdir()) < 3_000_000


def test_words_have_every_promised_case() -> None:
    words = all_words(words_records())
    kinds = {kind: [w for w in words if w["kind"] == kind] for kind in ("word", "number", "plate", "seven_segment")}
    assert min(len(kinds["plate"]), len(kinds["seven_segment"])) >= 4
    assert len(kinds["number"]) >= 20
    texts = {w["text"] for w in words}
    assert {"A-113", "€4.99"} <= texts
    assert any(":" in t for t in texts) and any("-" in t for t in texts) and any("." in t for t in texts)
    assert all(w["text"].replace(".", "").isdigit() for w in kinds["seven_segment"])
    fonts = {w["font"] for w in words}
    assert {"DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"} <= fonts
    heights = [w["height_px"] for w in words]
    assert min(heights) <= 12 and max(heights) >= 70
    share = {
        "under 16 px": sum(h < 16 for h in heights) / len(words),
        "over 40 px": sum(h > 40 for h in heights) / len(words),
        "rotated": sum(abs(w["angle_deg"]) >= 5 for w in words) / len(words),
        "low contrast": sum(w["contrast"] < 50 for w in words) / len(words),
        "blurred": sum(w["blur_sigma"] >= 0.7 for w in words) / len(words),
    }
    assert min(share.values()) >= 0.12, share


def test_sharp_plain_words_stand_out_along_their_whole_length() -> None:
    """In every character of a sharp plain word, the ink (its exact glyph pixels, from the layout) differs
    from the pixels just around it by at least ``VISIBLE`` grey levels in the frame as committed. (Inks
    once chosen against the mean background left parts of words lying across a light and a dark patch
    invisible: Laundry's "ry", M-1638's "M-".)"""
    wordlayout, textrender = data_module("wordlayout"), data_module("textrender")
    records = sorted(words_records(), key=lambda r: int(r["image"][-6:-4]))
    faint = []
    for (_, items), record in zip(wordlayout.layouts(), records, strict=True):
        rgb = cv2.cvtColor(cv2.imread(str(WORDS / record["image"])), cv2.COLOR_BGR2RGB)
        grey = textrender.luma(rgb)
        for item in (i for i in items if i.kind in ("word", "number") and i.blur_sigma == 0):
            text = item.words[0].text
            edges = np.linspace(0, item.ink.shape[1], len(text) + 1).round().astype(int)
            for start, stop in itertools.pairwise(edges):
                stretch = np.zeros_like(item.ink)
                stretch[:, start:stop] = item.ink[:, start:stop]
                alpha = textrender.coverage(stretch, item.matrix, grey.shape, 0.0)
                ink, touched = alpha > 0.9, alpha > 0.05
                around = cv2.dilate(touched.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~touched
                if ink.sum() >= 3 and abs(np.median(grey[ink]) - np.median(grey[around])) < VISIBLE:
                    faint.append((record["image"], text, text[len(text) * start // item.ink.shape[1]]))
    assert not faint, faint


def test_words_regenerate_from_their_seed() -> None:
    """wordlayout.py (no photos needed) gives exactly the committed texts, quads and styles."""
    layouts = data_module("wordlayout").layouts()
    records = words_records()
    assert len(layouts) == len(records)
    for (photo, items), record in zip(layouts, sorted(records, key=lambda r: int(r["image"][-6:-4])), strict=True):
        assert record["photo"] == photo
        expected = [label for item in items for label in item.labels()]
        assert [{k: v for k, v in w.items() if k != "contrast"} for w in record["words"]] == expected


def clip_record() -> dict:
    return load(CLIP / "clip.json")


def test_the_clip_reads_back_with_opencv_frame_for_frame() -> None:
    record = clip_record()
    capture = cv2.VideoCapture(str(CLIP / record["video"]))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (record["height"], record["width"], 3)
        count += 1
    capture.release()
    assert (record["width"], record["height"]) == (1280, 720)
    assert count == len(record["frames"]) >= 60
    assert [f["frame"] for f in record["frames"]] == list(range(count))


def changes(frames: list[dict]) -> list[dict]:
    """Appear, move and vanish events derived from consecutive frames' word lists."""
    events = []
    for before, now in itertools.pairwise(frames):
        old = {w["text"]: w["poly"] for w in before["words"]}
        new = {w["text"]: w["poly"] for w in now["words"]}
        events += [{"frame": now["frame"], "kind": "appear", "text": t} for t in sorted(new.keys() - old.keys())]
        events += [{"frame": now["frame"], "kind": "move", "text": t}
                   for t in sorted(new.keys() & old.keys()) if new[t] != old[t]]
        events += [{"frame": now["frame"], "kind": "vanish", "text": t} for t in sorted(old.keys() - new.keys())]
    return events


def test_the_clip_events_are_exactly_the_changes_between_frames() -> None:
    record = clip_record()
    assert record["events"] == changes(record["frames"])
    kinds = {event["kind"] for event in record["events"]}
    assert kinds == {"appear", "move", "vanish"}
    present = [{w["text"] for w in f["words"]} for f in record["frames"]]
    assert set.intersection(*present), "no word is present throughout"
    for frame in record["frames"]:
        for word in frame["words"]:
            assert 14 - ROUNDING <= side_lengths(word["poly"])[1] <= 32 + ROUNDING, (frame["frame"], word)


def test_the_clip_light_drifts_slowly() -> None:
    gains = [f["gain"] for f in clip_record()["frames"]]
    assert 0.05 <= max(abs(g - 1) for g in gains) <= 0.1
    assert max(abs(b - a) for a, b in itertools.pairwise(gains)) < 0.01


def test_calibration_photos_are_not_used_by_any_validation_material() -> None:
    calibration = {photo_of(p.name) for p in DEFAULT_CALIBRATION_DIR.glob("*.jpg")}
    validation = {photo_of(p.name) for p in DEFAULT_VALIDATION_DIR.glob("*.jpg")}
    validation |= {record["photo"] for record in smalltext_records() + words_records()} | {clip_record()["photo"]}
    assert len(list(DEFAULT_CALIBRATION_DIR.glob("*.jpg"))) == 24
    assert len(calibration) >= 5
    assert not calibration & validation, calibration & validation
