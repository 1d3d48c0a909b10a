"""Make the scene-text images craft-edge ships: words rendered with real fonts onto free photos.

Run once on a workstation (needs scikit-image for its bundled public-domain/CC0 photos, Pillow,
and the DejaVu fonts from Debian's fonts-dejavu-core); the outputs are committed:

    python data/make_images.py

Writes ``edge/samples/`` (demo frames, validation set and test images, each with a ground-truth
JSON of its word quads in the format of ICDAR-style ``{"image", "words": [{"poly", "text",
"ignore"}]}``) and ``converter/calibration_frames/`` (int8 calibration frames: other words, and photos
that neither the samples nor ``data/smalltext/`` or ``data/clip/`` use, so calibration and validation never share a photo).
Deterministic: a fixed seed gives the same images.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = [
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Oblique.ttf",
]
WORDS = [
    "EXIT", "OPEN", "COFFEE", "PARKING", "Main", "Street", "SALE", "50%", "No", "Entry", "Platform",
    "Bakery", "Welcome", "STOP", "Pharmacy", "Room", "204", "Bus", "42", "Tickets", "Museum", "Hotel",
    "Station", "North", "Garden", "Fresh", "Bread", "Library", "Open", "24h", "Taxi", "Police", "Danger",
    "Keep", "Clear", "Quiet", "Please", "Market", "Books", "Pizza", "Cinema", "Gate", "B12", "Toilets",
]
# (scikit-image loader, licence as stated in scikit-image's data module)
PHOTOS = {
    "astronaut": (skdata.astronaut, "public domain (NASA)"),
    "coffee": (skdata.coffee, "CC0 (Rachel Michetti)"),
    "chelsea": (skdata.chelsea, "CC0 (Stefan van der Walt)"),
    "rocket": (skdata.rocket, "public domain (SpaceX)"),
    "brick": (skdata.brick, "CC0 (cc0textures.com)"),
    "grass": (skdata.grass, "CC0 (linolafett, DeviantArt)"),
    "gravel": (skdata.gravel, "CC0 (cc0textures.com)"),
    "camera": (skdata.camera, "CC0 (Lav Varshney)"),
    "clock": (skdata.clock, "public domain (Stefan van der Walt)"),
    "hubble_deep_field": (skdata.hubble_deep_field, "public domain (NASA)"),
    "retina": (skdata.retina, "CC0 (Mikael Häggström)"),
}
# Calibration photos: none of them is used by the samples, data/smalltext/ or data/clip/.
CALIBRATION_PHOTOS = ["camera", "brick", "hubble_deep_field", "grass", "retina", "gravel", "clock"]
SIZE = (640, 480)  # width, height


def _background(name: str, rng: random.Random) -> Image.Image:
    pixels = PHOTOS[name][0]()
    image = Image.fromarray(pixels).convert("RGB")
    width, height = image.size
    crop_w = rng.randint(int(width * 0.6), width)
    crop_h = min(height, int(crop_w * SIZE[1] / SIZE[0]))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    return image.crop((left, top, left + crop_w, top + crop_h)).resize(SIZE, Image.BILINEAR)


def _word_layer(text: str, font: ImageFont.FreeTypeFont, ink: tuple, plate: tuple | None):
    """The word on a transparent tile and the quad of its ink, in tile coordinates."""
    left, top, right, bottom = font.getbbox(text)
    pad = max(4, (bottom - top) // 3)
    tile = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(tile)
    if plate is not None:
        draw.rectangle((0, 0, tile.width - 1, tile.height - 1), fill=plate + (255,))
    draw.text((pad - left, pad - top), text, font=font, fill=ink + (255,))
    quad = np.array([[pad, pad], [pad + right - left, pad], [pad + right - left, pad + bottom - top],
                     [pad, pad + bottom - top]], dtype=np.float64)
    return tile, quad


def _rotate(tile: Image.Image, quad: np.ndarray, degrees: float):
    rotated = tile.rotate(degrees, resample=Image.BICUBIC, expand=True)
    theta = np.deg2rad(degrees)
    # PIL rotates counter-clockwise about the centre; image y points down.
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    centre_in = np.array([tile.width / 2, tile.height / 2])
    centre_out = np.array([rotated.width / 2, rotated.height / 2])
    return rotated, (quad - centre_in) @ rot.T + centre_out


def _overlaps(box: tuple, taken: list[tuple]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + 8 and b[0] - 8 < x1 and y0 < b[3] + 8 and b[1] - 8 < y1 for b in taken)


def _low_contrast(image: Image.Image, box: tuple, ink: tuple) -> bool:
    background = np.asarray(image.crop(box).convert("L"), dtype=np.float64).mean()
    return abs(background - float(np.mean(ink))) < 110


def make_image(photo: str, rng: random.Random, words: int) -> tuple[Image.Image, list[dict]]:
    image = _background(photo, rng)
    taken: list[tuple] = []
    labels = []
    for _ in range(words * 20):
        if len(labels) == words:
            break
        text = rng.choice(WORDS)
        font = ImageFont.truetype(str(FONT_DIR / rng.choice(FONTS)), rng.randint(20, 64))
        dark = rng.random() < 0.5
        ink = tuple(rng.randint(0, 60) for _ in range(3)) if dark else tuple(rng.randint(200, 255) for _ in range(3))
        plate = None
        if rng.random() < 0.6:
            plate = tuple(rng.randint(200, 255) for _ in range(3)) if dark else tuple(rng.randint(0, 90) for _ in range(3))
        tile, quad = _word_layer(text, font, ink, plate)
        tile, quad = _rotate(tile, quad, rng.uniform(-12, 12) if rng.random() < 0.4 else 0.0)
        if tile.width >= SIZE[0] - 10 or tile.height >= SIZE[1] - 10:
            continue
        x, y = rng.randint(5, SIZE[0] - tile.width - 5), rng.randint(5, SIZE[1] - tile.height - 5)
        box = (x, y, x + tile.width, y + tile.height)
        if _overlaps(box, taken) or (plate is None and _low_contrast(image, box, ink)):
            continue
        taken.append(box)
        image.paste(tile, (x, y), tile)
        poly = (quad + [x, y]).round(1).tolist()
        labels.append({"poly": poly, "text": text, "ignore": False})
    return image, labels


def write_set(folder: Path, photos: list[str], count: int, seed: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = []
    for index in range(count):
        photo = photos[index % len(photos)]
        image, labels = make_image(photo, rng, words=rng.randint(3, 7))
        name = f"{photo}_{index:02d}.jpg"
        image.save(folder / name, quality=90)
        (folder / f"{photo}_{index:02d}.json").write_text(json.dumps({"image": name, "words": labels}) + "\n")
        names.append(name)
    return names


def main() -> None:
    root = Path(__file__).resolve().parent
    write_set(root.parent / "edge" / "samples", ["astronaut", "coffee", "chelsea", "rocket"], count=8, seed=7)
    Image.fromarray(skdata.text()).convert("RGB").save(root.parent / "edge" / "samples" / "skimage_text.png")
    calibration = root.parent / "converter" / "calibration_frames"
    for old in calibration.glob("*.*"):
        old.unlink()
    write_set(calibration, CALIBRATION_PHOTOS, count=24, seed=11)


if __name__ == "__main__":
    main()
