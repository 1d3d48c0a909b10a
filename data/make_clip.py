"""Make ``data/clip/``: a short 1280x720 clip of a static scene whose words appear, move and vanish.

Run once on a workstation (scikit-image, Pillow, OpenCV, imageio-ffmpeg for its ffmpeg binary, the
DejaVu fonts); the outputs are committed:

    python data/make_clip.py

One photo, scaled to 1280x720, seen by a still camera: every frame gets fresh Gaussian sensor noise
and the light drifts slowly (a global gain of 1 +- 8 % over the clip). Words 14-32 px high are
painted on the scene at known frames. ``clip.avi`` (Motion-JPEG: every frame coded on its own, so each
keeps its own noise) holds the frames; ``clip.json``
holds, for every frame, the gain and the words present (quads in the project's ground-truth format),
and the ``events``: the frames where a word appears, moves (one event per frame its quad changes)
or vanishes. Deterministic: a fixed seed gives the same files.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
from make_images import PHOTOS
from make_smalltext import background
from textrender import blend, coverage, glyphs_of_height, ink_colour, placement, quad_of

PHOTO = "coffee"
SIZE = (1280, 720)  # width, height
FRAMES = 72
FPS = 12
NOISE_SIGMA = 4.0  # grey levels, per pixel and channel, before coding; about 1.7 remain after it
DRIFT = 0.08  # peak relative change of the global gain
SEED = 11
CODEC = "MJPG"
VIDEO = "clip.avi"
JPEG_QSCALE = 8  # ffmpeg's -q:v (2 = best): about 4 MB for the clip; OpenCV's own writer has no such knob


@dataclass(frozen=True)
class Word:
    text: str
    font: str
    height: float
    angle: float
    start: tuple[int, int]  # top-left of the unrotated ink box
    first: int = 0  # first frame it is present
    last: int = FRAMES - 1  # last frame it is present
    end: tuple[int, int] | None = None  # where it moves to, if it moves
    move: tuple[int, int] = (0, 0)  # it slides from start (at move[0]) to end (at move[1])
    low_contrast: bool = False

    def top_left(self, frame: int) -> tuple[float, float]:
        if self.end is None or frame <= self.move[0]:
            return self.start
        share = min(1.0, (frame - self.move[0]) / (self.move[1] - self.move[0]))
        return tuple(s + (e - s) * share for s, e in zip(self.start, self.end, strict=True))


WORDS = [
    Word("EXIT", "DejaVuSans-Bold.ttf", 28, 0.0, (90, 70)),  # present throughout
    Word("OPEN", "DejaVuSans.ttf", 20, 12.0, (960, 110)),  # present throughout, rotated
    Word("Platform", "DejaVuSerif.ttf", 18, 0.0, (520, 620), first=15),  # appears at 15
    Word("Tickets", "DejaVuSansCondensed-Bold.ttf", 22, 0.0, (110, 380), end=(400, 470), move=(29, 41)),
    Word("Bakery", "DejaVuSerif-Bold.ttf", 16, 0.0, (1010, 560), last=49),  # vanishes at 50
    Word("Taxi", "DejaVuSans.ttf", 14, -8.0, (760, 300), first=8, last=61, low_contrast=True),
]


def gain(frame: int) -> float:
    return 1.0 + DRIFT * math.sin(2 * math.pi * frame / (FRAMES - 1))


def label(word: Word, quad: np.ndarray, ink_height: int) -> dict:
    return {"poly": quad.round(2).tolist(), "text": word.text, "ignore": False, "height_px": ink_height,
            "angle_deg": word.angle}


def events_of(frames: list[list[dict]]) -> list[dict]:
    """Appearances, moves and disappearances between consecutive frames' word lists."""
    events = []
    for index in range(1, len(frames)):
        before = {w["text"]: w["poly"] for w in frames[index - 1]}
        now = {w["text"]: w["poly"] for w in frames[index]}
        for text in sorted(now.keys() - before.keys()):
            events.append({"frame": index, "kind": "appear", "text": text})
        for text in sorted(now.keys() & before.keys()):
            if now[text] != before[text]:
                events.append({"frame": index, "kind": "move", "text": text})
        for text in sorted(before.keys() - now.keys()):
            events.append({"frame": index, "kind": "vanish", "text": text})
    return events


def render(scene: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], list[list[dict]]]:
    height, width = scene.shape[:2]
    glyphs = {w.text: glyphs_of_height(w.text, w.font, w.height) for w in WORDS}
    picker = random.Random(SEED)
    inks = {}
    for word in WORDS:
        matrix = placement(glyphs[word.text].mask.shape, word.angle, word.start)
        alpha = coverage(glyphs[word.text].mask, matrix, (height, width), 0.0)
        under = (scene * alpha[..., None]).sum(axis=(0, 1)) / alpha.sum()
        inks[word.text] = ink_colour(under, word.low_contrast, picker)
    images, labels = [], []
    for index in range(FRAMES):
        frame = scene.copy()
        present = []
        for word in (w for w in WORDS if w.first <= index <= w.last):
            mask = glyphs[word.text].mask
            matrix = placement(mask.shape, word.angle, word.top_left(index))
            blend(frame, coverage(mask, matrix, (height, width), 0.0), inks[word.text])
            present.append(label(word, quad_of(mask.shape, matrix), mask.shape[0]))
        frame = frame * gain(index) + rng.normal(0.0, NOISE_SIGMA, frame.shape)
        images.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
        labels.append(present)
    return images, labels


def high_pass(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (grey - cv2.GaussianBlur(grey, (0, 0), 2.0)).ravel()


def write_video(path: Path, images: list[np.ndarray]) -> float:
    """Encode the frames; check that OpenCV reads back each of them, in order (each decoded frame's
    noise matches its own frame's best). Returns the sensor noise left after coding (grey levels, per
    pixel and channel, from the spread of the first frames, which show the same words)."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{SIZE[0]}x{SIZE[1]}", "-r", str(FPS), "-i", "-", "-fps_mode", "passthrough",
               "-c:v", "mjpeg", "-q:v", str(JPEG_QSCALE), "-pix_fmt", "yuvj420p", str(path)]
    subprocess.run(command, input=b"".join(image.tobytes() for image in images), check=True)
    capture = cv2.VideoCapture(str(path))
    decoded = []
    while (frame := capture.read())[0]:
        decoded.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    capture.release()
    if len(decoded) != len(images):
        raise RuntimeError(f"{path} reads back {len(decoded)} frames, wrote {len(images)}")
    for index, frame in enumerate(decoded):
        neighbours = range(max(0, index - 1), min(len(images), index + 2))
        match = {n: np.corrcoef(high_pass(frame), high_pass(images[n]))[0, 1] for n in neighbours}
        if max(match, key=match.get) != index:
            raise RuntimeError(f"{path}: decoded frame {index} looks like written frame {max(match, key=match.get)}")
    still = np.stack([frame / gain(index) for index, frame in enumerate(decoded[:8])])  # no word changes before 8
    return float(still.std(axis=0, ddof=1).mean())


def main() -> None:
    folder = Path(__file__).resolve().parent / "clip"
    folder.mkdir(exist_ok=True)
    scene = background(PHOTO, SIZE, random.Random(SEED))
    images, labels = render(scene, np.random.default_rng(SEED))
    for old in folder.glob("*.*"):
        old.unlink()
    decoded_noise = write_video(folder / VIDEO, images)
    record = {
        "video": VIDEO, "photo": PHOTO, "licence": PHOTOS[PHOTO][1], "width": SIZE[0], "height": SIZE[1],
        "fps": FPS, "codec": CODEC, "noise_sigma": NOISE_SIGMA,
        "decoded_noise_sigma": round(decoded_noise, 2), "drift": DRIFT,
        "frames": [{"frame": i, "gain": round(gain(i), 4), "words": words} for i, words in enumerate(labels)],
        "events": events_of(labels),
    }
    (folder / "clip.json").write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
