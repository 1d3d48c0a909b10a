"""The reading side's pure parts: CTC decoding, word crops, fitting a crop to the model, the reader's
batching and contrast (with a sequence model written out here, so each rule can be seen to act)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge.recognition.crops import word_crop
from edge.recognition.ctc import confidence, greedy_decode, likeliest_accepted
from edge.recognition.preprocess import fit, stretch_contrast
from edge.recognition.reader import Reader
from edge.recognition.spotting import read_boxes

CHARSET = "abc"


def one_hot(classes: list[int], p: float = 0.9) -> np.ndarray:
    probs = np.full((len(classes), len(CHARSET) + 1), (1 - p) / len(CHARSET), dtype=np.float32)
    probs[np.arange(len(classes)), classes] = p
    return probs


def test_repeats_merge_and_blanks_separate() -> None:
    # a a _ a b b _ _ c -> "aabc": a blank between two a's keeps both
    text, _ = greedy_decode(one_hot([1, 1, 0, 1, 2, 2, 0, 0, 3]), CHARSET)
    assert text == "aabc"


def test_only_blanks_read_nothing_with_score_zero() -> None:
    assert greedy_decode(one_hot([0, 0, 0]), CHARSET) == ("", 0.0)


def test_score_is_easyocr_custom_mean_over_non_blank_steps() -> None:
    probs = one_hot([1, 1, 0, 2], p=0.9)
    probs[1, 1] = 0.5
    _, score = greedy_decode(probs, CHARSET)
    kept = np.array([0.9, 0.5, 0.9])  # every non-blank step, the repeat included
    assert score == pytest.approx(kept.prod() ** (2 / np.sqrt(3)))
    assert confidence(np.array([])) == 0.0


def test_a_charset_that_does_not_fit_the_classes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected \(T, 3\)"):
        greedy_decode(one_hot([1, 2]), "ab")


def test_a_pattern_finds_the_likeliest_reading_it_accepts_scored_as_greedy_would_score_it() -> None:
    # "ab_c": at step 1 "c" is second (0.3) to "b" (0.6); step 3 is "c" for sure
    probs = one_hot([1, 2, 0, 3], p=0.9)
    probs[1] = [0.05, 0.05, 0.6, 0.3]
    text, score = greedy_decode(probs, CHARSET)
    assert likeliest_accepted(probs, CHARSET, lambda text: True) == (text, pytest.approx(score))
    text, score = likeliest_accepted(probs, CHARSET, lambda text: "b" not in text)
    assert text == "acc" and score == pytest.approx(confidence(np.array([0.9, 0.3, 0.9])))
    assert likeliest_accepted(probs, CHARSET, lambda text: text == "aa") is None  # not among the likely
    assert likeliest_accepted(probs, CHARSET, lambda text: True, beam=1)[0] == "abc"


def test_steering_tries_ties_as_argmax_does_and_each_text_once() -> None:
    tied = np.full((1, 7), 1 / 7, dtype=np.float32)  # blank and six characters, all alike
    assert greedy_decode(tied, "abcdef")[0] == ""  # argmax: the lowest class, the blank
    assert likeliest_accepted(tied, "abcdef", lambda text: True)[0] == ""
    probs = np.array([[0.1, 0.9, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]], dtype=np.float32)  # "a" by three alignments
    tried: list[str] = []
    assert likeliest_accepted(probs, CHARSET, lambda text: tried.append(text) or False) is None
    assert sorted(tried) == ["", "a"]  # "a" ends in "a" or in a blank: two beam entries, tried once


def test_a_steered_repeat_needs_its_blank() -> None:
    # "a a" with a weak blank between them: greedy reads "a"; "aa" is the likeliest reading of two a's
    probs = one_hot([1, 1, 1], p=0.9)
    probs[1] = [0.4, 0.5, 0.05, 0.05]
    assert greedy_decode(probs, CHARSET)[0] == "a"
    text, score = likeliest_accepted(probs, CHARSET, lambda text: text == "aa")
    assert text == "aa" and score == pytest.approx(confidence(np.array([0.9, 0.9])))
    assert likeliest_accepted(np.full((3, 4), np.nan, np.float32), CHARSET, lambda text: True) is None


def striped(height: int, width: int) -> np.ndarray:
    """An RGB picture whose grey value says where a pixel came from (x and y ramps)."""
    x = np.tile(np.linspace(0, 250, width, dtype=np.float32), (height, 1))
    y = np.tile(np.linspace(0, 250, height, dtype=np.float32)[:, None], (1, width))
    return np.stack([x, y, np.zeros_like(x)], axis=2).astype(np.uint8)


def test_word_crop_keeps_the_quads_size_plus_margin_and_follows_its_first_edge() -> None:
    rgb = striped(200, 300)
    quad = np.array([[100, 50], [200, 50], [200, 90], [100, 90]], dtype=np.float32)
    crop = word_crop(rgb, quad, margin=0.0)
    assert crop.shape == (40, 100) and crop.dtype == np.uint8
    assert word_crop(rgb, quad, margin=0.25).shape == (60, 120)  # 10 px (a quarter of 40) on every side
    # the same quad starting from its bottom-right corner: the crop is the first one turned half round
    flipped = word_crop(rgb, np.roll(quad, -2, axis=0), margin=0.0)
    assert np.abs(flipped.astype(int) - crop[::-1, ::-1].astype(int)).max() <= 2


def test_word_crop_refuses_a_quad_not_of_this_picture() -> None:
    with pytest.raises(ValueError, match="not a number"):
        word_crop(striped(50, 50), np.array([[10, 10], [np.inf, 10], [40, 30], [10, 30]]))
    with pytest.raises(ValueError, match="far larger than the 50x50 picture"):
        word_crop(striped(50, 50), np.array([[0, 0], [1e9, 0], [1e9, 20], [0, 20]]))


def test_word_crop_refuses_a_degenerate_quad() -> None:
    with pytest.raises(ValueError, match="no area"):
        word_crop(striped(50, 50), np.array([[10, 10], [10, 10], [10, 10], [10, 10]]))


def test_fit_pads_by_repeating_the_last_column_and_squeezes_the_too_wide() -> None:
    crop = np.tile(np.arange(20, dtype=np.uint8) * 10, (8, 1))  # 8 x 20: 160 wide at height 64
    fitted = fit(crop, 64, (128, 256))
    assert fitted.shape == (64, 256)
    assert (fitted[:, 160:] == fitted[:, 159:160]).all()
    assert fit(crop, 64, (64, 128)).shape == (64, 128)  # wider than the widest: squeezed into it
    with pytest.raises(ValueError, match="grey uint8"):
        fit(np.zeros((8, 20, 3), np.uint8), 64, (128,))


def test_every_crop_is_stretched_but_a_flat_one_is_not_blown_up() -> None:
    faint = np.array([[100, 125] * 10] * 4, dtype=np.uint8)
    assert (int(stretch_contrast(faint).min()), int(stretch_contrast(faint).max())) == (25, 225)
    sharp = np.array([[0, 255] * 10] * 4, dtype=np.uint8)
    assert (int(stretch_contrast(sharp).min()), int(stretch_contrast(sharp).max())) == (25, 225)
    flat = np.array([[120, 122] * 10] * 4, dtype=np.uint8)  # sensor noise on a blank patch: at most 10-fold
    assert int(stretch_contrast(flat).max()) - int(stretch_contrast(flat).min()) == 20
    assert int(stretch_contrast(np.full((4, 20), 255, np.uint8)).mean()) == 125  # blank: mid-grey, not ink
    assert fit(faint, 4, (20,)).max() == 225  # what the model is given


def test_thin_ink_in_a_wide_crop_stays_dark_on_light() -> None:
    wide = np.full((20, 200), 230, np.uint8)
    wide[5:15, 100:108] = 40  # 2 % of the crop: the 10th and 90th percentiles are both background
    stretched = stretch_contrast(wide)
    assert int(stretched[10, 104]) <= 25 and int(stretched[0, 0]) >= 200


class Columns:
    """A sequence model reading each 4-pixel column group: dark (< 64) -> 'a', mid -> 'b', light -> blank.
    It records the batches it was given."""

    height = 16
    widths = (32, 64)
    lanes = 1

    def __init__(self) -> None:
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.batches.append(pixels.shape)
        steps = pixels.reshape(*pixels.shape[:2], -1, 4).mean(axis=(1, 3))  # (N, W/4)
        classes = np.where(steps < 64, 1, np.where(steps < 160, 2, 0))
        probs = np.full((*classes.shape, 4), 0.02, np.float32)
        np.put_along_axis(probs, classes[..., None], 0.94, axis=2)
        return probs


def test_reader_batches_by_width_and_keeps_the_crops_order() -> None:
    model = Columns()
    short = np.full((16, 16), 255, np.uint8)
    short[:, 4:8] = 0  # blank, a, blank, blank
    long = np.full((16, 48), 255, np.uint8)
    long[:, 0:8] = 0  # aa merge into one a
    long[:, 16:24] = 100  # stretched from 0..255 to 25..225, still mid: bb, one b
    readings = Reader(model, "ab?", "test").read([short, long, short])
    assert [r.text for r in readings] == ["a", "ab", "a"]
    assert sorted(model.batches) == [(1, 16, 64), (2, 16, 32)]
    # each keeps its own probabilities for steering: a copy, not a view that keeps its whole batch alive
    assert all(r.steps is not None and r.steps.base is None and r.steps.ndim == 2 for r in readings)


def test_reader_reads_a_faint_word_at_once_with_its_contrast_stretched() -> None:
    model = Columns()
    faint = np.full((16, 32), 200, np.uint8)
    faint[:, 0:8] = 170  # as it is, all light (blank); stretched, the left part turns dark
    (reading,) = Reader(model, "ab?", "test").read([faint])
    assert reading.text == "a" and reading.score > 0.8  # two steps of 0.94
    assert len(model.batches) == 1  # one look


class TwoAtOnce(Columns):
    """``Columns`` with two lanes whose calls wait for each other: a reader calling one at a time would
    stall (BrokenBarrierError) instead of reading."""

    lanes = 2

    def __init__(self) -> None:
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=5)
        self.threads: set[str] = set()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        self.meeting.wait()
        return super().__call__(pixels)


def test_reader_spreads_one_widths_words_over_the_models_lanes_and_keeps_their_order() -> None:
    model = TwoAtOnce()
    a, ab = np.full((16, 16), 255, np.uint8), np.full((16, 16), 255, np.uint8)
    a[:, 4:8] = 0
    ab[:, 0:4], ab[:, 4:12] = 0, 100
    readings = Reader(model, "ab?", "test").read([a, ab, a, a])
    assert [r.text for r in readings] == ["a", "ab", "a", "a"]
    assert sorted(model.batches) == [(2, 16, 32), (2, 16, 32)] and len(model.threads) == 2


def test_widths_with_no_more_than_a_lanes_share_of_words_are_not_split() -> None:
    model = TwoAtOnce()
    short, long = np.full((16, 16), 255, np.uint8), np.full((16, 48), 255, np.uint8)
    short[:, 4:8] = long[:, 4:8] = 0
    assert [r.text for r in Reader(model, "ab?", "test").read([short, long, long, short])] == ["a"] * 4
    assert sorted(model.batches) == [(2, 16, 32), (2, 16, 64)]  # one part a width: one resize each


class LeftEdge:
    """A sequence model reading 'a' when the crop's first column is much darker than the crop, else nothing."""

    height = 16
    widths = (32, 64)
    lanes = 1

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        probs = np.full((pixels.shape[0], 2, 4), 0.02, np.float32)
        probs[:, 0, 0] = 0.94  # a blank, then 'a' or another blank
        dark = pixels[:, :, 0].mean(axis=1) < pixels.mean(axis=(1, 2)) - 100
        probs[dark, 1, 1] = 0.94
        probs[~dark, 1, 0] = 0.94
        return probs


def test_boxes_are_cut_as_they_are_and_a_low_score_one_again_with_the_margin() -> None:
    rgb = np.full((200, 300, 3), 255, np.uint8)
    rgb[:, 40:50] = 0  # a dark stroke from x 40 to 49

    def quad(left: int) -> np.ndarray:
        return np.array([[left, 50], [left + 200, 50], [left + 200, 150], [left, 150]], np.float32)

    reader = Reader(LeftEdge(), "ab?", "test")
    # starts on the stroke: read at once (with the labels' margin of 10 px it would start left of it)
    # starts right of it: nothing at first, then cut again 10 px wider and read
    readings = read_boxes(reader, rgb, [quad(45), quad(50)])
    assert [r.text for r in readings] == ["a", "a"] and min(r.score for r in readings) > 0.8
    assert read_boxes(reader, rgb, []) == []


@pytest.mark.parametrize("degrees", [0, 30, 50, 60, 89, -50, -89])
def test_detector_boxes_of_tilted_words_are_cut_level(degrees: int) -> None:
    from edge.detection.postprocess import _oriented_box
    from edge.recognition.spotting import reading_way

    # a 100x20 word tilted by ``degrees`` (clockwise on screen), as the detector orders its corners
    angle = np.radians(degrees)
    along, down = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    centre = np.array([200.0, 200.0])
    corners = np.array([centre + sx * 50 * along + sy * 10 * down for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    box = _oriented_box(corners.astype(np.float32))
    crop = word_crop(np.zeros((400, 400, 3), np.uint8), reading_way(box), margin=0.0)
    assert crop.shape == pytest.approx((20, 100), abs=2)  # level, not stood on end
    quad = reading_way(box)
    assert quad[1, 0] >= quad[0, 0]  # reads left to right


def test_a_single_letter_box_is_read_as_it_stands() -> None:
    from edge.recognition.spotting import reading_way

    letter = np.array([[10, 10], [30, 10], [30, 50], [10, 50]], np.float64)  # 20 wide, 40 tall: "I", "l"
    assert (reading_way(letter) == letter).all()
