"""At what height does reading fall off? Labelled word crops shrunk to a given height, then read.

    python bench/reading_height.py --model models [--eval-rec ../shared/eval-rec] [--heights 6,8,...]

The daemon cuts a word out of the source frame (``word_crop``: the box plus 0.1 of its height on every
side) and the reader scales that crop to the recognizer's 64 px. A word whose crop is H px tall in the
frame has only H px of detail, however it is scaled afterwards. So each labelled crop of ``--eval-rec``
(IIIT5K and SVT training crops, cut loosely around their word) is shrunk to H px tall (area
interpolation, aspect kept; crops already shorter are left out at that height) and read with the
bundle's recognizer, automatic variant, the device's Reader. Prints word accuracy (case-insensitive
letters and digits, eval-rec's protocol) per height, beside the crops' full-size accuracy. Crop height
is about 1.2 times the word's box height.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.commands.common import thread_count
from edge.config.paths import absolute
from edge.models.recognizer import load_reader
from edge.models.runtime import default_threads

REPO = Path(__file__).resolve().parent.parent


def alnum(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=absolute, required=True, help="convert-for-device's output (with a recognizer)")
    parser.add_argument("--eval-rec", type=absolute, default=REPO.parent / "shared" / "eval-rec")
    parser.add_argument("--heights", default="6,8,10,12,14,16,20,24,32")
    parser.add_argument("--threads", type=thread_count, default=2, help="0: one per core")
    args = parser.parse_args()
    reader = load_reader(args.model, None, args.threads or default_threads())
    if reader is None:
        print(f"reading_height: {args.model} has no text recognizer", file=sys.stderr)
        return 2
    heights = [int(h) for h in args.heights.split(",")]
    crops, labels = [], []
    for labels_file in sorted(args.eval_rec.glob("*/labels.json")):
        for name, label in json.loads(labels_file.read_text()).items():
            grey = cv2.imread(str(labels_file.parent / "images" / name), cv2.IMREAD_GRAYSCALE)
            if grey is not None and alnum(label):
                crops.append(grey)
                labels.append(alnum(label))
    full = [alnum(r.text) == label for r, label in zip(reader.read(crops), labels, strict=True)]
    print(f"{len(crops)} crops ({reader.variant}), full size: accuracy {sum(full) / len(full):.3f}")
    print("crop height px | crops | accuracy | accuracy of the crops read right at full size")
    for height in tqdm(heights, desc="heights", unit="height"):
        chosen = [i for i, crop in enumerate(crops) if crop.shape[0] > height]
        small = [cv2.resize(crops[i], (max(1, round(crops[i].shape[1] * height / crops[i].shape[0])), height),
                            interpolation=cv2.INTER_AREA) for i in chosen]
        right = [alnum(r.text) == labels[i] for r, i in zip(reader.read(small), chosen, strict=True)]
        kept = [ok for ok, i in zip(right, chosen, strict=True) if full[i]]
        tqdm.write(f"{height:14d} | {len(chosen):5d} | {sum(right) / max(1, len(right)):8.3f} | "
                   f"{sum(kept) / max(1, len(kept)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
