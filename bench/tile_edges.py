"""How far into a tile its scores differ from one pass over the whole frame: why tiles need context.

    python bench/tile_edges.py --native-model models/736x1280 --tile-model models/288x288 \\
        --variant fp32 IMAGE [IMAGE ...]

For each image (the native model's input must be the frame's size rounded up to 32, as CRAFT pads
it, so both passes end at the same edge), one pass of the native model over
the whole frame, then the tile model on tiles placed on CRAFT's 32 px grid every 96 rows and 160
columns. For every score-map pixel of a tile: the largest difference, region or affinity, from the
native pass at that pixel, binned by the pixel's distance (frame pixels) from the nearest tile edge
that lies inside the frame. Prints, per 16 px bin, the largest difference over all tiles and the
90th percentile of the tiles' largest differences. ``edge.detection.tiling`` keeps ``CONTEXT`` pixels of
picture around every pixel it keeps from a tile. Figures are for the model and images given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tiling import model_of
from edge.config.paths import absolute
from edge.detection import tiling
from edge.sources.imageio import read_rgb

BIN = 16
FARTHEST = 160


def edge_distance(tile: tiling.Tile, tile_hw: tuple[int, int], maps_hw: tuple[int, int]) -> np.ndarray:
    """Per score-map pixel of the tile: frame pixels to the nearest tile edge inside the frame."""
    rows, cols = np.mgrid[0:tile_hw[0] // 2, 0:tile_hw[1] // 2] * 2
    distance = np.full(rows.shape, np.iinfo(np.int32).max)
    top, bottom, left, right = tile.extent(tile_hw)
    if top > 0:
        distance = np.minimum(distance, rows)
    if left > 0:
        distance = np.minimum(distance, cols)
    if bottom < 2 * maps_hw[0]:
        distance = np.minimum(distance, tile_hw[0] - rows)
    if right < 2 * maps_hw[1]:
        distance = np.minimum(distance, tile_hw[1] - cols)
    return distance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--native-model", type=absolute, required=True, help="model folder that holds the frames")
    parser.add_argument("--tile-model", type=absolute, required=True)
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("images", type=absolute, nargs="+")
    args = parser.parse_args()

    native = model_of(args.native_model, args.variant, args.threads)
    tile_model = model_of(args.tile_model, args.variant, args.threads)
    tile_hw = tile_model.input_hw
    worst: dict[int, list[float]] = {}
    for image in args.images:
        rgb = read_rgb(image)
        padded_hw = tiling.padded(rgb.shape[:2])
        if native.input_hw != padded_hw:  # black beyond the frame is not the model's padding
            sys.exit(f"bench/tile_edges.py: {image.name} padded to 32 is {padded_hw}, HxW; "
                     f"the native model must take exactly that, not {native.input_hw}")
        if any(side > frame for side, frame in zip(tile_hw, padded_hw, strict=True)):
            sys.exit(f"bench/tile_edges.py: {image.name} is smaller than a tile")
        whole = tiling.plan(rgb.shape[:2], native.input_hw)[0]
        maps = tiling.empty_maps(rgb.shape[:2])
        tiling.paste_core(maps, whole, native(tiling.crop(rgb, whole, native.input_hw)))
        for top in range(0, 2 * maps.shape[0] - tile_hw[0] + 1, 3 * tiling.STRIDE):
            for left in range(0, 2 * maps.shape[1] - tile_hw[1] + 1, 5 * tiling.STRIDE):
                tile = tiling.Tile.window(top, left, tile_hw)
                scores = tile_model(tiling.crop(rgb, tile, tile_hw))
                reference = maps[top // 2:(top + tile_hw[0]) // 2, left // 2:(left + tile_hw[1]) // 2]
                difference = np.abs(scores - reference).max(axis=2)
                distance = edge_distance(tile, tile_hw, maps.shape[:2])
                for low in range(0, FARTHEST, BIN):
                    inside = (distance >= low) & (distance < low + BIN)
                    if inside.any():
                        worst.setdefault(low, []).append(float(difference[inside].max()))
    print(f"{args.variant}, native model {args.native_model.name}, tile model {args.tile_model.name}, "
          f"{len(args.images)} images; score difference from the native pass by distance from the tile's edge")
    print(f"{'distance':>10} {'largest':>8} {'p90 of tiles':>13}")
    for low in sorted(worst):
        values = np.array(worst[low])
        print(f"{low:>3}-{low + BIN:>3} px {values.max():>8.3f} {np.quantile(values, 0.9):>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
