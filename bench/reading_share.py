"""What reading costs the daemon per frame: detection and recognition timed in one process, at the
shipped config.yaml's settings (tiling, scale, context, detection thresholds) with recognition on.

    python bench/reading_share.py --model models [--images ../shared/eval-ic15train/images] [--limit 50]
        [--threads 2]

Each image goes through the daemon's own parts: ``configured_detector`` (the detector as the daemon
builds it) and ``edge.service.reading`` (cut out every box, read them in one batch, the config's rules).
No gating: photos are unrelated frames, so every box is read (a camera with gating reads only what
changed). Prints per image median and total milliseconds of each, words per frame and the recognizer's
share of a frame's time. Figures are for the machine it runs on.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.commands.common import thread_count
from edge.config.paths import absolute
from edge.config.settings import load_config
from edge.detection.detector import configured_detector
from edge.models.inference import build_runners
from edge.service.reading import build_reading, read_frame
from edge.sources.imageio import read_rgb

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=absolute, required=True, help="convert-for-device's output (with a recognizer)")
    parser.add_argument("--images", type=absolute, default=REPO.parent / "shared" / "eval-ic15train" / "images")
    parser.add_argument("--limit", type=int, default=50, help="images at most (sorted by name)")
    parser.add_argument("--threads", type=thread_count, default=2, help="0: one per core")
    parser.add_argument("--state-dir", type=absolute, default=Path.home() / ".cache" / "craft-edge")
    args = parser.parse_args()
    config = load_config(REPO / "config.yaml")
    config.model = dataclasses.replace(config.model, dir=str(args.model), num_threads=args.threads)
    config.recognition.enabled = True
    runners = build_runners(config.model, args.state_dir, tile=config.model.tiling != "off")
    detector = configured_detector(config, runners.coarse, runners.tile)
    reading = build_reading(config)
    if reading.frames is None:
        print(f"reading_share: cannot read with {args.model}: {reading.state}", file=sys.stderr)
        return 2
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.limit]
    detect_ms, read_ms, words = [], [], []
    for image in tqdm(images, desc="frames", unit="frame"):
        rgb = read_rgb(image)
        detection = detector.detect(rgb)
        text, _ = read_frame(reading, rgb, detection, gated=False)
        assert text is not None
        detect_ms.append(detection.timing.total)
        read_ms.append(text.ms)
        words.append(text.read)
    share = sum(read_ms) / (sum(read_ms) + sum(detect_ms))
    print(f"{len(images)} frames, tiling {config.model.tiling} scale {config.model.scale}, detector "
          f"{runners.coarse.choice.variant if runners.coarse.choice else '?'}, recognizer {reading.frames.variant}, "
          f"{args.threads} threads")
    print(f"detection: median {statistics.median(detect_ms):.0f} ms/frame; reading: median "
          f"{statistics.median(read_ms):.0f} ms/frame, {statistics.median(words):.0f} words/frame (median), "
          f"{sum(read_ms) / max(1, sum(words)):.1f} ms/word")
    print(f"recognizer share of frame time: {share:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
