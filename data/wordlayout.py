"""What goes where in ``data/words/``: every frame's words, plates and seven-segment displays, their
texts, styles and exact ground-truth quads, from a seed alone.

No photo is needed (make_words.py paints the layout onto the photos), so ``tests/test_material.py`` can
regenerate the layout without scikit-image and compare it with the committed ground truth. Needs Pillow,
OpenCV, numpy and the DejaVu fonts of Debian's ``fonts-dejavu-core``.

An item is drawn as tile-sized masks (``ink``, and for plates and displays a ``panel``, a plate's
``border`` and a display's unlit ``ghost`` segments) placed in the frame by one affine map; each of its
words is a box of ink in tile pixels, mapped to the frame by the same map.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw
from textrender import bounds, box_quad, glyphs_of_height, ink_mask, overlaps, placement

FRAME = (1280, 720)  # width, height
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]
FRAMES = 14
SEED = 2027
EDGE_MARGIN = 8  # px between an item and the frame border
GAP = 8  # px between the boxes of two items
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"]
PLATE_FONTS = ["DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf"]
# ink heights of plain words: (low, high, share)
HEIGHT_BINS = [(10, 14, 0.25), (14, 24, 0.3), (24, 44, 0.25), (44, 80, 0.2)]
WORDS = [
    "Entrance", "Pharmacy", "Welcome", "Closed", "Delivery", "Warehouse", "Reception", "Parking", "Bakery",
    "Library", "Garden", "Station", "Museum", "Kitchen", "Office", "Private", "Caution", "Emergency", "Monday",
    "Friday", "Express", "Coffee", "Tickets", "Platform", "Airport", "Harbour", "Theatre", "Bicycle", "Laundry",
    "Pizzeria", "Bookshop", "Florist", "Market", "Danger", "Push", "Pull", "Exit", "Open", "Sale", "Hotel",
    "Taxi", "Police", "Toilets", "Quiet", "Please", "Cinema", "Gate", "North", "South", "West", "East", "Fresh",
    "Bread", "Milk", "Cheese", "Fruit", "Water", "Stairs", "Lift", "Level", "Arrivals", "Departures", "Bank",
    "School", "Hospital", "Garage", "Service", "Repair", "Storage", "Studio", "Gallery", "Dental", "Bistro",
]
# digits and punctuation, besides the generated prices, times and codes
FIXED_NUMBERS = ["A-113", "12:45", "€4.99", "50%", "-20%", "24/7", "#4521", "1,250", "3.5kg", "220V",
                 "555-0199", "2026-12-05", "No.7", "(B2)", "$7.25", "ID:4471", "v2.1", "x10"]


@dataclass
class Word:
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of its ink in tile pixels
    font: str
    font_size: int


@dataclass
class Item:
    """One thing drawn into a frame: a plain word, a plate or a seven-segment display."""

    kind: str  # "word", "number", "plate", "seven_segment"
    ink: np.ndarray  # uint8 tile mask, 255 = full ink
    words: list[Word]
    angle: float
    blur_sigma: float
    low_contrast: bool = False
    panel: np.ndarray | None = None
    border: np.ndarray | None = None
    ghost: np.ndarray | None = None
    style: dict = field(default_factory=dict)  # the display's or plate's look, for the painter
    matrix: np.ndarray | None = None  # tile -> frame, once placed

    def labels(self) -> list[dict]:
        """Ground truth of the placed item's words (the painter adds ``contrast``)."""
        return [{"poly": box_quad(w.box, self.matrix).round(2).tolist(), "text": w.text, "ignore": False,
                 "height_px": w.box[3] - w.box[1], "angle_deg": round(self.angle, 2),
                 "blur_sigma": self.blur_sigma, "font": w.font, "font_size": w.font_size, "kind": self.kind}
                for w in self.words]


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def number_text(rng: random.Random) -> str:
    kind = rng.choice(["price", "time", "code", "fixed", "fixed"])
    if kind == "price":
        return f"€{rng.randint(0, 99)}.{rng.randint(0, 99):02d}"
    if kind == "time":
        return f"{rng.randint(0, 23):02d}:{rng.choice(range(0, 60, 5)):02d}"
    if kind == "code":
        return f"{rng.choice('ABCDEFHKMRX')}-{rng.randint(10, 9999)}"
    return rng.choice(FIXED_NUMBERS)


def word_text(rng: random.Random) -> str:
    word = rng.choice(WORDS)
    return rng.choice([word, word, word.upper(), word.lower()])


def angle(rng: random.Random, share: float, largest: float) -> float:
    return rng.choice([-1, 1]) * rng.uniform(5, largest) if rng.random() < share else 0.0


def blur(rng: random.Random, share: float) -> float:
    return round(rng.uniform(0.7, 1.4), 2) if rng.random() < share else 0.0


def plain_item(rng: random.Random) -> Item | None:
    """A word, or (a third of the time) digits and punctuation, of ink height 10-80 px."""
    numeric = rng.random() < 0.33
    text = number_text(rng) if numeric else word_text(rng)
    low, high, _ = rng.choices(HEIGHT_BINS, weights=[b[2] for b in HEIGHT_BINS])[0]
    font = rng.choice(FONTS)
    glyphs = glyphs_of_height(text, font, rng.uniform(low, high))
    if not 10 <= glyphs.mask.shape[0] <= 80:
        return None
    word = Word(text, (0, 0, glyphs.mask.shape[1], glyphs.mask.shape[0]), font, glyphs.font_size)
    return Item("number" if numeric else "word", glyphs.mask, [word], angle(rng, 0.3, 30), blur(rng, 0.2),
                low_contrast=rng.random() < 0.2)


def plate_item(rng: random.Random) -> Item:
    """Dark characters on a light rectangle with a dark border: two groups (letters, digits), two words."""
    texts = ["".join(rng.choice("ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(rng.randint(2, 3))),
             "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 4)))]
    font = rng.choice(PLATE_FONTS)
    size = glyphs_of_height(texts[0], font, rng.uniform(16, 44)).font_size
    masks = [ink_mask(text, font, size) for text in texts]
    height = max(m.shape[0] for m in masks)
    pad, gap, line = round(0.45 * height), round(0.6 * height), max(2, round(0.09 * height))
    width = sum(m.shape[1] for m in masks) + gap + 2 * pad
    ink = np.zeros((height + 2 * pad, width), np.uint8)
    words, x = [], pad
    for text, mask in zip(texts, masks, strict=True):
        y = pad + (height - mask.shape[0]) // 2
        ink[y : y + mask.shape[0], x : x + mask.shape[1]] = mask
        words.append(Word(text, (x, y, x + mask.shape[1], y + mask.shape[0]), font, size))
        x += mask.shape[1] + gap
    panel = np.full(ink.shape, 255, np.uint8)
    border = np.zeros(ink.shape, np.uint8)
    cv2.rectangle(border, (0, 0), (width - 1, ink.shape[0] - 1), 255, line)
    style = {"plate": rng.choice([(238, 238, 232), (246, 200, 40)])}
    return Item("plate", ink, words, angle(rng, 0.5, 12), blur(rng, 0.2), panel=panel, border=border, style=style)


# segments lit per digit: a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle
SEGMENTS = {"0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc", "5": "afgcd", "6": "afgedc",
            "7": "abc", "8": "abcdefg", "9": "abcdfg"}
SUPERSAMPLE = 4


def segment_polygons(x: float, height: float) -> dict[str, list[tuple[float, float]]]:
    """The seven hexagonal segments of a digit cell at ``x`` (width 0.55 of ``height``)."""
    width, thick = 0.55 * height, 0.14 * height
    half, gap = thick / 2, 0.12 * thick

    def across(y: float) -> list[tuple[float, float]]:
        x0, x1 = x + half + gap, x + width - half - gap
        return [(x0, y), (x0 + half, y - half), (x1 - half, y - half), (x1, y), (x1 - half, y + half),
                (x0 + half, y + half)]

    def down(cx: float, y0: float, y1: float) -> list[tuple[float, float]]:
        return [(cx, y0), (cx + half, y0 + half), (cx + half, y1 - half), (cx, y1), (cx - half, y1 - half),
                (cx - half, y0 + half)]

    left, right, middle = x + half, x + width - half, height / 2
    return {"a": across(half), "g": across(middle), "d": across(height - half),
            "f": down(left, half + gap, middle - gap), "b": down(right, half + gap, middle - gap),
            "e": down(left, middle + gap, height - half - gap), "c": down(right, middle + gap, height - half - gap)}


def segment_masks(text: str, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Lit and unlit segments of ``text`` (digits, at most one '.'), antialiased uint8 masks."""
    scale = SUPERSAMPLE
    digits = text.replace(".", "")
    step = 0.75 * height
    size = (round((len(digits) * step + 0.1 * height) * scale), round(height * scale))
    lit, unlit = Image.new("L", size, 0), Image.new("L", size, 0)
    x = 0.0
    for char in text:
        if char == ".":
            dot = 0.14 * height
            ImageDraw.Draw(lit).rectangle([(x - 0.16 * height) * scale, (height - dot) * scale,
                                           (x - 0.16 * height + dot) * scale - 1, height * scale - 1], fill=255)
            continue
        for name, poly in segment_polygons(x, height).items():
            target = lit if name in SEGMENTS[char] else unlit
            ImageDraw.Draw(target).polygon([(px * scale, py * scale) for px, py in poly], fill=255)
        x += step
    shrink = (size[0] // scale, size[1] // scale)
    return tuple(cv2.resize(np.asarray(m), shrink, interpolation=cv2.INTER_AREA) for m in (lit, unlit))


def display_item(rng: random.Random) -> Item:
    """A meter reading in seven-segment digits on a dark (LED) or grey-green (LCD) panel; one word."""
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 6)))
    text = f"{digits[:-1]}.{digits[-1]}" if rng.random() < 0.4 else digits
    lit, unlit = segment_masks(text, rng.uniform(22, 60))
    x0, y0, x1, y1 = tight_box(np.maximum(lit, unlit))
    pad = round(0.35 * (y1 - y0))
    tile = (y1 - y0 + 2 * pad, x1 - x0 + 2 * pad)

    def framed(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(tile, np.uint8)
        out[pad : pad + y1 - y0, pad : pad + x1 - x0] = mask[y0:y1, x0:x1]
        return out

    ink, ghost = framed(lit), framed(unlit)
    word = Word(text, tight_box(ink), "seven-segment", 0)
    style = {"display": rng.choice(["led-red", "led-green", "lcd"])}
    return Item("seven_segment", ink, [word], angle(rng, 0.3, 8), blur(rng, 0.2),
                panel=np.full(tile, 255, np.uint8), ghost=ghost, style=style)


def place(item: Item, taken: list, rng: random.Random) -> bool:
    """Put the item where its whole tile is inside the frame and clear of the others; False if it fits nowhere."""
    height, width = item.ink.shape
    for _ in range(60):
        top_left = (rng.randint(0, max(0, FRAME[0] - width)), rng.randint(0, max(0, FRAME[1] - height)))
        matrix = placement(item.ink.shape, item.angle, top_left)
        quad = box_quad((0, 0, width, height), matrix)
        box = bounds(quad, GAP / 2)
        inside = quad.min() >= EDGE_MARGIN and quad[:, 0].max() <= FRAME[0] - EDGE_MARGIN \
            and quad[:, 1].max() <= FRAME[1] - EDGE_MARGIN
        if inside and not overlaps(box, taken):
            item.matrix = matrix
            taken.append(box)
            return True
    return False


def frame_layout(index: int, rng: random.Random) -> list[Item]:
    """Frame ``index``'s items: a display in every third frame, a plate in the next, then 9-13 plain words."""
    specials = [display_item(rng)] if index % 3 == 0 else [plate_item(rng)] if index % 3 == 1 else []
    taken: list = []
    items = [item for item in specials if place(item, taken, rng)]
    wanted, tries = rng.randint(9, 13), 0
    while sum(len(item.words) for item in items if item.kind in ("word", "number")) < wanted and tries < 200:
        tries += 1
        item = plain_item(rng)
        if item is not None and place(item, taken, rng):
            items.append(item)
    return items


def layouts() -> list[tuple[str, list[Item]]]:
    """(photo, items) of every frame, in order; deterministic."""
    rng = random.Random(SEED)
    return [(PHOTOS[index % len(PHOTOS)], frame_layout(index, rng)) for index in range(FRAMES)]
