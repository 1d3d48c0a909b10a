"""Why the dynamic variant drifts at large inputs: one part of the frame changes scores far away.

    python bench/dynamic_range.py --model models/736x1280 IMAGE [IMAGE ...]

Dynamic-range quantisation quantises each int8 matmul's float input with one scale computed at run
time over the whole tensor, so a bright, high-contrast part of the frame coarsens every other part.
For each image (letterboxed into the model) this paints a 200x200 checkerboard of 4 px squares into
the bottom-right corner and prints, per variant, the largest change of any region or affinity score
in the top-left corner (more than 700 px from the patch at 736x1280, beyond CRAFT's receptive
field): 0 for variants whose ranges are fixed (fp32, int8), not for dynamic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tiling import model_of
from edge.config.paths import absolute
from edge.detection.preprocess import letterbox
from edge.sources.imageio import read_rgb

PATCH = 200  # pixels of checkerboard, bottom right
SQUARE = 4
FAR = (slice(0, 75), slice(0, 150))  # score-map cells (half the input's pixels): the top-left corner


def with_checkerboard(pixels: np.ndarray) -> np.ndarray:
    painted = pixels.copy()
    rows, cols = np.mgrid[0:PATCH, 0:PATCH]
    board = (((rows // SQUARE + cols // SQUARE) % 2) * 255).astype(pixels.dtype)
    painted[-PATCH:, -PATCH:] = board[..., None]
    return painted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, required=True, help="a model folder (e.g. OUT/736x1280)")
    parser.add_argument("--variants", default="fp32,dynamic,int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("images", type=absolute, nargs="+")
    args = parser.parse_args()
    for variant in args.variants.split(","):
        model = model_of(args.model, variant, args.threads)
        changes = []
        for image in args.images:
            pixels = letterbox(read_rgb(image), model.input_hw).pixels
            changes.append(float(np.abs(model(pixels)[FAR] - model(with_checkerboard(pixels))[FAR]).max()))
        print(f"{variant:<8} largest score change far from the patch: {max(changes):.3f} "
              f"(per image: {', '.join(f'{c:.3f}' for c in changes)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
